import { DynamicModule, Module } from '@nestjs/common';
import { ConfigModule } from '@nestjs/config';
import { ScheduleModule } from '@nestjs/schedule';
import { poolEnvConfig, PoolEnvConfig, resolvePoolOptions } from './container-pool.config';
import { CONTAINER_DRIVER, CONTAINER_POOL_RESOLVED_OPTIONS } from './container-pool.constants';
import {
  ASYNC_OPTIONS_TYPE,
  CONTAINER_POOL_MODULE_OPTIONS,
  ConfigurableModuleClass,
  OPTIONS_TYPE,
} from './container-pool.module-definition';
import { ContainerPoolService } from './container-pool.service';
import { DockerDriver } from './driver/docker.driver';
import type {
  ContainerPoolModuleOptions,
  ResolvedContainerPoolOptions,
} from './interfaces/container-pool-options.interface';

/**
 * ContainerPoolModule.forRoot(options?) / forRootAsync({ imports, inject, useFactory }).
 * Brings its own scheduling and reads `POOL_*` settings through @nestjs/config without loading any `.env` file.
 */
@Module({
  imports: [ScheduleModule.forRoot(), ConfigModule.forFeature(poolEnvConfig)],
  providers: [
    {
      provide: CONTAINER_POOL_RESOLVED_OPTIONS,
      inject: [CONTAINER_POOL_MODULE_OPTIONS, poolEnvConfig.KEY],
      useFactory: (explicit: ContainerPoolModuleOptions, env: PoolEnvConfig) =>
        resolvePoolOptions(explicit, env),
    },
    {
      provide: CONTAINER_DRIVER,
      inject: [CONTAINER_POOL_RESOLVED_OPTIONS],
      useFactory: (o: ResolvedContainerPoolOptions) => new DockerDriver(o.docker),
    },
    ContainerPoolService,
  ],
  exports: [ContainerPoolService, CONTAINER_POOL_RESOLVED_OPTIONS, CONTAINER_DRIVER],
})
export class ContainerPoolModule extends ConfigurableModuleClass {
  /** The pool with these options over `POOL_*` settings over defaults; every option is optional. */
  static forRoot(options: typeof OPTIONS_TYPE = {}): DynamicModule {
    return super.forRoot(options);
  }

  /** Options from a factory: `{ imports, inject, useFactory }` (or useClass/useExisting). */
  static forRootAsync(options: typeof ASYNC_OPTIONS_TYPE): DynamicModule {
    return super.forRootAsync(options);
  }
}

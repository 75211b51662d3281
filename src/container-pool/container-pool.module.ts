import { DynamicModule, Inject, MiddlewareConsumer, Module, NestModule } from '@nestjs/common';
import { ConfigModule } from '@nestjs/config';
import { ScheduleModule } from '@nestjs/schedule';
import { TerminusModule } from '@nestjs/terminus';
import { v4 as uuidv4 } from 'uuid';
import { poolEnvConfig, PoolEnvConfig, resolvePoolOptions } from './config';
import {
  CONTAINER_DRIVER,
  CONTAINER_POOL_HTTP_SETTINGS,
  CONTAINER_POOL_INSTANCE_ID,
  CONTAINER_POOL_RESOLVED_OPTIONS,
} from './container-pool.constants';
import type { ContainerPoolHttpSettings } from './interfaces/http-settings.interface';
import {
  ASYNC_OPTIONS_TYPE,
  CONTAINER_POOL_MODULE_OPTIONS,
  ConfigurableModuleClass,
  OPTIONS_TYPE,
} from './container-pool.module-definition';
import { ContainerPoolService } from './container-pool.service';
import { DockerDriver } from './engine/docker/docker.driver';
import { ContainerPoolHealthIndicator } from './health/container-pool.health';
import { ContainerPoolMetrics } from './metrics/container-pool.metrics';
import { JsonBodyMiddleware } from './http/middleware/json-body.middleware';
import type {
  ContainerPoolModuleOptions,
  ResolvedContainerPoolOptions,
} from './interfaces/container-pool-options.interface';

/**
 * ContainerPoolModule.forRoot(options?) / forRootAsync({ imports, inject, useFactory }).
 * Brings its own scheduling and reads `POOL_*` settings through @nestjs/config without loading any `.env` file.
 * Serves the admin API (default /admin/pool, bearer token), /health/live, /health/ready and /metrics with their
 * own guard, validation and error mapping; the extras adminApi/adminPrefix/healthPath/metricsPath move or
 * switch them off.
 */
@Module({
  imports: [
    ScheduleModule.forRoot(),
    ConfigModule.forFeature(poolEnvConfig),
    TerminusModule.forRoot({ logger: false }),
  ],
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
    { provide: CONTAINER_POOL_INSTANCE_ID, useFactory: () => uuidv4() },
    ContainerPoolService,
    ContainerPoolMetrics,
    ContainerPoolHealthIndicator,
  ],
  exports: [
    ContainerPoolService,
    CONTAINER_POOL_RESOLVED_OPTIONS,
    CONTAINER_DRIVER,
    ContainerPoolMetrics,
    ContainerPoolHealthIndicator,
  ],
})
export class ContainerPoolModule extends ConfigurableModuleClass implements NestModule {
  constructor(
    @Inject(CONTAINER_POOL_HTTP_SETTINGS) private readonly http: ContainerPoolHttpSettings,
  ) {
    super();
  }

  /** The admin routes parse their JSON bodies themselves, with the pool's limit (see JsonBodyMiddleware). */
  configure(consumer: MiddlewareConsumer): void {
    if (this.http.adminControllers.length)
      consumer.apply(JsonBodyMiddleware).forRoutes(...this.http.adminControllers);
  }

  /** The pool with these options over `POOL_*` settings over defaults; every option is optional. */
  static forRoot(options: typeof OPTIONS_TYPE = {}): DynamicModule {
    return super.forRoot(options);
  }

  /** Options from a factory: `{ imports, inject, useFactory }` (or useClass/useExisting). */
  static forRootAsync(options: typeof ASYNC_OPTIONS_TYPE): DynamicModule {
    return super.forRootAsync(options);
  }
}

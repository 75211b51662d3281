import { DynamicModule, Inject, MiddlewareConsumer, Module, NestModule } from '@nestjs/common';
import { ScheduleModule } from '@nestjs/schedule';
import { TerminusModule } from '@nestjs/terminus';
import { v4 as uuidv4 } from 'uuid';
import { resolveModuleOptions } from './config';
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
import { applyJsonBodies } from './http/container-pool-http';
import type {
  ContainerPoolModuleOptions,
  ResolvedContainerPoolOptions,
} from './interfaces/container-pool-options.interface';

/**
 * ContainerPoolModule.forRoot(options?) / forRootAsync({ imports, inject, useFactory }).
 * Brings its own scheduling; reads `POOL_*` settings only with `readEnv` (it never loads a `.env` file). Adds no
 * route unless asked: with the `http` extra (`true` or `{ prefix, healthPath, metricsPath, adminApi }`) it
 * serves the admin API and executions under one prefix (default /admin/pool, bearer tokens by scope),
 * /health/live, /health/ready and /metrics, with their own guard, validation and error mapping.
 */
@Module({
  imports: [ScheduleModule.forRoot(), TerminusModule.forRoot({ logger: false })],
  providers: [
    {
      provide: CONTAINER_POOL_RESOLVED_OPTIONS,
      inject: [CONTAINER_POOL_MODULE_OPTIONS],
      useFactory: (explicit: ContainerPoolModuleOptions) => resolveModuleOptions(explicit),
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
    applyJsonBodies(consumer, this.http);
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

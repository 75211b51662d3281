import {
  DynamicModule,
  Inject,
  Logger,
  MiddlewareConsumer,
  Module,
  NestModule,
  Provider,
} from '@nestjs/common';
import { ScheduleModule } from '@nestjs/schedule';
import { TerminusModule } from '@nestjs/terminus';
import { v4 as uuidv4 } from 'uuid';
import { resolveModuleOptions } from './config';
import {
  CONTAINER_DRIVER,
  CONTAINER_POOL_HTTP_SETTINGS,
  CONTAINER_POOL_INSTANCE_ID,
  CONTAINER_POOL_RESOLVED_OPTIONS,
  getContainerPoolToken,
} from './container-pool.constants';
import type { ContainerPoolHttpSettings } from './interfaces/http-settings.interface';
import {
  ASYNC_OPTIONS_TYPE,
  CONTAINER_POOL_MODULE_OPTIONS,
  ConfigurableModuleClass,
  MODULE_EXTRAS,
  OPTIONS_TYPE,
} from './container-pool.module-definition';
import { ContainerPoolService } from './container-pool.service';
import { DockerDriver } from './engine/docker/docker.driver';
import { InvalidPoolConfigError } from './errors/container-pool.errors';
import { ContainerPoolHealthIndicator } from './health/container-pool.health';
import { ContainerPoolMetrics } from './metrics/container-pool.metrics';
import { applyJsonBodies } from './http/container-pool-http';
import type {
  ContainerPoolModuleOptions,
  ResolvedContainerPoolOptions,
} from './interfaces/container-pool-options.interface';

/** The profile names forRoot() can see now (in code, or from the environment with readEnv); [] if invalid. */
function profileNamesOf(options: ContainerPoolModuleOptions): string[] {
  try {
    return resolveModuleOptions(options, process.env, () => undefined).profiles.map(
      (p) => p.profile,
    );
  } catch {
    return []; // the options provider fails the start with the problems
  }
}

/** A ContainerPool token per profile name and one for the default profile, each exported. */
function withProfileTokens(definition: DynamicModule, names: string[]): DynamicModule {
  if (!Array.isArray(names) || names.some((n) => typeof n !== 'string')) {
    throw new InvalidPoolConfigError([
      `profileNames must be an array of profile names, got ${JSON.stringify(names)}`,
    ]);
  }
  const token = (name?: string): Provider => ({
    provide: getContainerPoolToken(name),
    inject: [ContainerPoolService],
    useFactory: (svc: ContainerPoolService) => svc.pool(name),
  });
  const providers = [token(), ...[...new Set(names)].map(token)];
  return {
    ...definition,
    providers: [...(definition.providers ?? []), ...providers],
    exports: [
      ...(definition.exports ?? []),
      ...providers.map((p) => (p as { provide: string }).provide),
    ],
  };
}

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
      useFactory: (o: ResolvedContainerPoolOptions) =>
        new DockerDriver(o.docker, {
          directChannel: o.directChannel,
          log: (m) => new Logger(`ContainerPool:${o.name}`).warn(m),
        }),
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
    const pool = Object.fromEntries(
      Object.entries(options ?? {}).filter(([key]) => !MODULE_EXTRAS.has(key)),
    ) as ContainerPoolModuleOptions;
    return withProfileTokens(super.forRoot(options), options?.profileNames ?? profileNamesOf(pool));
  }

  /** Options from a factory: `{ imports, inject, useFactory }` (or useClass/useExisting). */
  static forRootAsync(options: typeof ASYNC_OPTIONS_TYPE): DynamicModule {
    return withProfileTokens(super.forRootAsync(options), options.profileNames ?? []);
  }
}

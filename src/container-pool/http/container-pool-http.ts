import {
  Controller,
  DynamicModule,
  Inject,
  MiddlewareConsumer,
  Module,
  NestModule,
  Provider,
  Type,
} from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { TerminusModule } from '@nestjs/terminus';
import { CONTAINER_POOL_HTTP_SETTINGS } from '../container-pool.constants';
import type { ContainerPoolHttpSettings } from '../interfaces/http-settings.interface';
import { ContainerPoolController } from './admin.controller';
import { ContainerPoolExecutionsController } from './executions.controller';
import { ContainerPoolHealthController } from './health.controller';
import { ContainerPoolMetricsController } from './metrics.controller';
import { JsonBodyMiddleware } from './middleware/json-body.middleware';
import { PROFILE_ROUTES_SEGMENT, profileRoutes } from './profile-route';
import { ContainerPoolProfilesController } from './profiles.controller';
import { RouteCollisionCheck } from './route-collisions';

/** Which routes the module adds, and where. */
export interface ContainerPoolHttpOptions {
  /**
   * The one prefix of every route the module adds but health and metrics (the admin API, executions, and the
   * routes later features add). Default `admin/pool`. (`adminPrefix` is the same.)
   */
  prefix?: string;
  adminPrefix?: string;
  /** Serve the routes under the prefix. Default true. */
  adminApi?: boolean;
  /** Path of the liveness/readiness routes (`<path>/live`, `<path>/ready`), or false for none. Default `health`. */
  healthPath?: string | false;
  /** Path of the Prometheus route, or false for none. Default `metrics`. */
  metricsPath?: string | false;
}

/** The HTTP part of forRoot()/forRootAsync() extras. */
export interface ContainerPoolHttpExtras extends Omit<ContainerPoolHttpOptions, 'prefix'> {
  /**
   * Add the module's routes to the host app. Default false: like the official modules, importing the pool adds
   * no route. `true` serves them with the defaults (or the `adminPrefix`/`healthPath`/`metricsPath`/`adminApi`
   * extras); an object says which and where.
   */
  http?: boolean | ContainerPoolHttpOptions;
}

export const DEFAULT_HTTP_OPTIONS = {
  adminApi: true,
  prefix: 'admin/pool',
  healthPath: 'health',
  metricsPath: 'metrics',
} as const;

/** No route at all. */
const NO_HTTP: ContainerPoolHttpSettings = {
  adminPrefix: null,
  healthPath: null,
  metricsPath: null,
  adminControllers: [],
  controllers: [],
};

function normalizePath(option: string, value: unknown): string {
  if (typeof value !== 'string' || !/^\/?[a-zA-Z0-9._~-]+(\/[a-zA-Z0-9._~-]+)*\/?$/.test(value)) {
    throw new Error(
      `ContainerPoolModule: ${option} must be a URL path such as "admin/pool", got ${JSON.stringify(value)}`,
    );
  }
  return value.replace(/^\/+|\/+$/g, '');
}

/**
 * A subclass of `base` routed at `path`. Each module instance gets its own, so two pools (or two apps) with
 * different paths never share or overwrite the decorator metadata of the base class.
 */
function routedAt<T extends Type>(base: T, path: string, decorators: ClassDecorator[] = []): T {
  const routed = { [base.name]: class extends base {} }[base.name];
  Controller(path)(routed);
  for (const decorate of decorators) decorate(routed);
  return routed;
}

/** The routes of these options: the per-path controller classes and what they are. */
export function httpSettingsOf(options: ContainerPoolHttpOptions): ContainerPoolHttpSettings {
  const adminPrefix =
    options.adminApi === false
      ? null
      : normalizePath(
          options.prefix !== undefined ? 'prefix' : 'adminPrefix',
          options.prefix ?? options.adminPrefix ?? DEFAULT_HTTP_OPTIONS.prefix,
        );
  const path = (option: 'healthPath' | 'metricsPath') => {
    const value = options[option];
    if (value === false) return null;
    return normalizePath(option, value ?? DEFAULT_HTTP_OPTIONS[option]);
  };
  const healthPath = path('healthPath');
  const metricsPath = path('metricsPath');
  const perPool = [ContainerPoolController, ContainerPoolExecutionsController];
  const adminControllers =
    adminPrefix === null
      ? []
      : [
          ...perPool.map((c) => routedAt(c, adminPrefix)),
          routedAt(ContainerPoolProfilesController, adminPrefix),
          // Every profile's copy of the routes: <prefix>/profiles/<name>/...
          ...perPool.map((c) =>
            routedAt(c, `${adminPrefix}/${PROFILE_ROUTES_SEGMENT}`, [profileRoutes]),
          ),
        ];
  const controllers: Type[] = [
    ...adminControllers,
    ...(healthPath === null ? [] : [routedAt(ContainerPoolHealthController, healthPath)]),
    ...(metricsPath === null ? [] : [routedAt(ContainerPoolMetricsController, metricsPath)]),
  ];
  return { adminPrefix, healthPath, metricsPath, adminControllers, controllers };
}

/** The extras' HTTP options, or null when the module adds no route. */
function httpOptionsOf(extras: ContainerPoolHttpExtras): ContainerPoolHttpOptions | null {
  const { http, adminApi, adminPrefix, healthPath, metricsPath } = extras;
  if (http === undefined || http === false) return null;
  const legacy = { adminApi, adminPrefix, healthPath, metricsPath };
  if (http === true) return legacy;
  if (typeof http !== 'object' || http === null) {
    throw new Error(
      `ContainerPoolModule: http must be true, false or { prefix, healthPath, metricsPath, adminApi }, got ${JSON.stringify(http)}`,
    );
  }
  return { ...legacy, ...http };
}

/** The providers that serve the routes of `settings` (the settings themselves, the collision check). */
function httpProviders(settings: ContainerPoolHttpSettings): Provider[] {
  return [
    { provide: CONTAINER_POOL_HTTP_SETTINGS, useValue: settings },
    ...(settings.controllers.length ? [RouteCollisionCheck] : []),
  ];
}

/** Adds the pool's controllers and HTTP settings to the module definition, when the extras ask for routes. */
export function withHttp(
  definition: DynamicModule,
  extras: ContainerPoolHttpExtras,
): DynamicModule {
  const options = httpOptionsOf(extras);
  const settings = options ? httpSettingsOf(options) : NO_HTTP;
  return {
    ...definition,
    imports: [
      ...(definition.imports ?? []),
      ...(settings.controllers.length ? [DiscoveryModule] : []),
    ],
    controllers: [...(definition.controllers ?? []), ...settings.controllers],
    providers: [...(definition.providers ?? []), ...httpProviders(settings)],
  };
}

/** The pool's own routes parse their JSON bodies themselves, with the pool's limit (see JsonBodyMiddleware). */
export function applyJsonBodies(consumer: MiddlewareConsumer, settings: ContainerPoolHttpSettings) {
  if (settings.adminControllers.length) {
    consumer.apply(JsonBodyMiddleware).forRoutes(...settings.adminControllers);
  }
}

/**
 * The module's routes for a host that registers the pool globally (`ContainerPoolModule.forRoot({ isGlobal:
 * true })`) and wants them served: `ContainerPoolHttpModule.register({ prefix, healthPath, metricsPath })`.
 * Equivalent to `forRoot({ http: { ... } })`.
 */
@Module({})
export class ContainerPoolHttpModule implements NestModule {
  constructor(
    @Inject(CONTAINER_POOL_HTTP_SETTINGS) private readonly settings: ContainerPoolHttpSettings,
  ) {}

  static register(options: ContainerPoolHttpOptions = {}): DynamicModule {
    const settings = httpSettingsOf(options);
    return {
      module: ContainerPoolHttpModule,
      imports: [TerminusModule.forRoot({ logger: false }), DiscoveryModule],
      controllers: settings.controllers,
      providers: httpProviders(settings),
    };
  }

  configure(consumer: MiddlewareConsumer): void {
    applyJsonBodies(consumer, this.settings);
  }
}

import {
  Controller,
  DynamicModule,
  Inject,
  Injectable,
  Logger,
  MiddlewareConsumer,
  Module,
  NestModule,
  OnModuleInit,
  Optional,
  Provider,
  Type,
} from '@nestjs/common';
import { DiscoveryModule, ModulesContainer } from '@nestjs/core';
import { TerminusModule } from '@nestjs/terminus';
import { DEFAULT_OPTIONS } from '../config/settings';
import {
  CONTAINER_POOL_HTTP_SETTINGS,
  CONTAINER_POOL_RESOLVED_OPTIONS,
} from '../container-pool.constants';
import { InvalidPoolConfigError } from '../errors/container-pool.errors';
import type { ResolvedContainerPoolOptions } from '../interfaces/container-pool-options.interface';
import type { ContainerPoolHttpSettings } from '../interfaces/http-settings.interface';
import { ContainerPoolController } from './admin.controller';
import { ContainerPoolExecutionsController } from './executions.controller';
import { ContainerPoolHealthController } from './health.controller';
import { ContainerPoolMetricsController } from './metrics.controller';
import { JsonBodyMiddleware } from './middleware/json-body.middleware';
import { OctetBodyMiddleware } from './middleware/octet-body.middleware';
import { PrefixNotFoundHandler } from './not-found';
import { PROFILE_ROUTES_SEGMENT, profileRoutes } from './profile-route';
import { ContainerPoolProfilesController } from './profiles.controller';
import { RouteCollisionCheck } from './route-collisions';
import { ContainerPoolSessionFilesController, RAW_BODY_ROUTES } from './session-files.controller';
import { ContainerPoolSessionsController } from './sessions.controller';
import { collisionOf, POOL_ROUTE_SETTING, routesOf } from './route-paths';

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

/** The options of ContainerPoolHttpOptions, as a setting is checked and named. */
const HTTP_KEYS = ['prefix', 'adminPrefix', 'adminApi', 'healthPath', 'metricsPath'] as const;
type HttpKey = (typeof HTTP_KEYS)[number];

/**
 * How a setting is named in errors and warnings, as the host wrote it: `http.prefix` in forRoot's `http` object,
 * `adminPrefix` as a forRoot extra, `ContainerPoolHttpModule.register({ prefix })`.
 */
export type HttpSettingLabel = (key: HttpKey) => string;

const SEGMENT = /^[a-zA-Z0-9._~-]+$/;

/** The path of a setting without its slashes, or null after pushing the problem (naming the setting). */
function normalizePath(label: string, value: unknown, problems: string[]): string | null {
  const trimmed = typeof value === 'string' ? value.replace(/^\/+|\/+$/g, '') : null;
  const segments = trimmed === null ? [] : trimmed.split('/');
  if (
    trimmed === null ||
    !trimmed ||
    !segments.every((s) => SEGMENT.test(s) && s !== '.' && s !== '..')
  ) {
    problems.push(
      `${label} must be a URL path of segments of [a-zA-Z0-9._~-] (not "." or "..") such as "admin/pool", ` +
        `got ${JSON.stringify(value)}`,
    );
    return null;
  }
  return trimmed;
}

/**
 * A subclass of `base` routed at `path`. Each module instance gets its own, so two pools (or two apps) with
 * different paths never share or overwrite the decorator metadata of the base class. `setting` names what
 * places it (the collision check and the config errors say it; every routed class carries one: it marks the
 * class as a pool's).
 */
function routedAt<T extends Type>(
  base: T,
  path: string,
  setting = 'its http options',
  decorators: ClassDecorator[] = [],
): T {
  const routed = { [base.name]: class extends base {} }[base.name];
  Controller(path)(routed);
  Reflect.defineMetadata(POOL_ROUTE_SETTING, setting, routed);
  for (const decorate of decorators) decorate(routed);
  return routed;
}

/** Two routes of one pool that answer the same request: which settings put them there. */
function ownCollisions(controllers: Type[]): string[] {
  const routes = controllers.map((c) => ({
    setting: Reflect.getMetadata(POOL_ROUTE_SETTING, c) as string,
    routes: routesOf(c),
  }));
  const problems: string[] = [];
  routes.forEach((a, i) =>
    routes.slice(i + 1).forEach((b) => {
      if (a.setting === b.setting) return;
      for (const ra of a.routes) {
        for (const rb of b.routes) {
          const request = collisionOf(ra, rb);
          if (request) {
            problems.push(
              `${b.setting} puts ${rb.where} on ${request}, which ${ra.where} of ${a.setting} answers: ` +
                'give them different paths',
            );
          }
        }
      }
    }),
  );
  return problems;
}

/**
 * The routes of these options: the per-path controller classes and what they are. Every invalid setting (named
 * by `label`) is reported at once in one InvalidPoolConfigError.
 */
export function httpSettingsOf(
  options: ContainerPoolHttpOptions,
  label: HttpSettingLabel = (key) => key,
): ContainerPoolHttpSettings {
  const problems: string[] = [];
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new InvalidPoolConfigError([
      `the HTTP options must be an object of { ${HTTP_KEYS.join(', ')} }, got ${JSON.stringify(options)}`,
    ]);
  }
  for (const key of Object.keys(options)) {
    if (!(HTTP_KEYS as readonly string[]).includes(key)) {
      problems.push(
        `unknown HTTP option ${label(key as HttpKey)}: the options are ${HTTP_KEYS.join(', ')}`,
      );
    }
  }
  const { adminApi } = options;
  if (adminApi !== undefined && typeof adminApi !== 'boolean') {
    problems.push(`${label('adminApi')} must be a boolean, got ${JSON.stringify(adminApi)}`);
  }
  if (
    options.prefix !== undefined &&
    options.adminPrefix !== undefined &&
    options.prefix !== options.adminPrefix
  ) {
    problems.push(
      `${label('prefix')} and ${label('adminPrefix')} name the same setting: give one of them`,
    );
  }
  const prefixKey: HttpKey =
    options.prefix === undefined && options.adminPrefix !== undefined ? 'adminPrefix' : 'prefix';
  const adminPrefix =
    adminApi === false
      ? null
      : normalizePath(
          label(prefixKey),
          options.prefix ?? options.adminPrefix ?? DEFAULT_HTTP_OPTIONS.prefix,
          problems,
        );
  const path = (option: 'healthPath' | 'metricsPath') => {
    const value = options[option];
    if (value === false) return null;
    return normalizePath(label(option), value ?? DEFAULT_HTTP_OPTIONS[option], problems);
  };
  const healthPath = path('healthPath');
  const metricsPath = path('metricsPath');
  if (problems.length) throw new InvalidPoolConfigError(problems);
  const perPool = [ContainerPoolController, ContainerPoolExecutionsController];
  const prefixLabel = label(prefixKey);
  const adminControllers =
    adminPrefix === null
      ? []
      : [
          ...perPool.map((c) => routedAt(c, adminPrefix, prefixLabel)),
          routedAt(ContainerPoolProfilesController, adminPrefix, prefixLabel),
          // Sessions (<prefix>/sessions/...): by id, so not copied under each profile (the body names one).
          routedAt(ContainerPoolSessionsController, adminPrefix, prefixLabel),
          routedAt(ContainerPoolSessionFilesController, adminPrefix, prefixLabel),
          // Every profile's copy of the routes: <prefix>/profiles/<name>/...
          ...perPool.map((c) =>
            routedAt(c, `${adminPrefix}/${PROFILE_ROUTES_SEGMENT}`, prefixLabel, [profileRoutes]),
          ),
        ];
  const controllers: Type[] = [
    ...adminControllers,
    ...(healthPath === null
      ? []
      : [routedAt(ContainerPoolHealthController, healthPath, label('healthPath'))]),
    ...(metricsPath === null
      ? []
      : [routedAt(ContainerPoolMetricsController, metricsPath, label('metricsPath'))]),
  ];
  const collisions = ownCollisions(controllers);
  if (collisions.length) throw new InvalidPoolConfigError(collisions);
  return { adminPrefix, healthPath, metricsPath, adminControllers, controllers };
}

const LEGACY_KEYS = ['adminApi', 'adminPrefix', 'healthPath', 'metricsPath'] as const;

/**
 * The extras' HTTP options, or null when the module adds no route, with how each setting is named: `http.<key>`
 * for a key of the `http` object (and for the defaults), `<key>` for a forRoot extra of that name.
 */
function httpOptionsOf(
  extras: ContainerPoolHttpExtras,
): { options: ContainerPoolHttpOptions; label: HttpSettingLabel } | null {
  const { http } = extras;
  if (http === undefined || http === false) return null;
  if (http !== true && (typeof http !== 'object' || http === null || Array.isArray(http))) {
    throw new InvalidPoolConfigError([
      `http must be true, false or { ${HTTP_KEYS.join(', ')} }, got ${JSON.stringify(http)}`,
    ]);
  }
  const own = http === true ? {} : http;
  const legacy = Object.fromEntries(
    LEGACY_KEYS.filter((k) => extras[k] !== undefined).map((k) => [k, extras[k]]),
  );
  const label: HttpSettingLabel = (key) => (key in own || !(key in legacy) ? `http.${key}` : key);
  return { options: { ...legacy, ...own }, label };
}

/** The providers that serve the routes of `settings` (the settings themselves, the collision check). */
function httpProviders(settings: ContainerPoolHttpSettings): Provider[] {
  return [
    { provide: CONTAINER_POOL_HTTP_SETTINGS, useValue: settings },
    ...(settings.controllers.length ? [RouteCollisionCheck] : []),
    ...(settings.adminControllers.length ? [PrefixNotFoundHandler] : []),
  ];
}

/** What a module without routes (`http` off) was given that only its routes would use. */
interface HttpOff {
  /** The HTTP extras given (adminPrefix, healthPath, metricsPath, adminApi). */
  extras: string[];
  isGlobal: boolean;
}

const HTTP_OFF = Symbol('container-pool:http-off');

/** The settings that only the module's HTTP routes use (their guards, body parser and metrics access). */
const HTTP_ONLY_SETTINGS = [
  'adminToken',
  'execToken',
  'readToken',
  'metricsPublic',
  'maxBodyBytes',
] as const;

/**
 * At start, with `http` off: a warning naming the HTTP extras given to forRoot (they place routes the module
 * does not serve, so they are ignored), and one naming the token, metrics and body settings when no
 * ContainerPoolHttpModule serves the pool either (they only guard routes).
 */
@Injectable()
export class HttpOffWarning implements OnModuleInit {
  private readonly logger = new Logger('ContainerPoolHttp');

  constructor(
    @Inject(HTTP_OFF) private readonly off: HttpOff,
    @Inject(CONTAINER_POOL_RESOLVED_OPTIONS) private readonly options: ResolvedContainerPoolOptions,
    @Optional() private readonly modules?: ModulesContainer,
  ) {}

  onModuleInit(): void {
    for (const message of this.warnings()) this.logger.warn(message);
  }

  warnings(): string[] {
    const served =
      this.off.isGlobal &&
      [...(this.modules?.values() ?? [])].some((m) => m.metatype === ContainerPoolHttpModule);
    const list = (names: string[]) =>
      names.length > 1 ? `${names.slice(0, -1).join(', ')} and ${names.at(-1)}` : names[0];
    const warnings: string[] = [];
    const { extras } = this.off;
    if (extras.length) {
      warnings.push(
        `${list(extras)} of forRoot ${extras.length > 1 ? 'are' : 'is'} ignored: ${extras.length > 1 ? 'they place' : 'it places'} the ` +
          `module's HTTP routes, and http is off, so the module serves none. Add http: true to forRoot to serve ` +
          'them there' +
          (served
            ? `; ContainerPoolHttpModule.register() takes its own (register({ ${extras.map((e) => (e === 'adminPrefix' ? 'prefix' : e)).join(', ')} }))`
            : '') +
          ', or drop them.',
      );
    }
    if (!served) {
      const o = this.options as unknown as Record<string, unknown>;
      const given = HTTP_ONLY_SETTINGS.filter((key) => {
        const value = o[key];
        return Array.isArray(value) ? value.length > 0 : value !== DEFAULT_OPTIONS[key];
      });
      if (given.length) {
        warnings.push(
          `${list(given)} only ${given.length > 1 ? 'apply' : 'applies'} to the module's HTTP routes, and it serves none: http is off in forRoot and ` +
            'no ContainerPoolHttpModule serves this pool. Add http: true to forRoot (or register the pool ' +
            'with isGlobal: true and import ContainerPoolHttpModule.register()) to serve the routes, or ' +
            'drop these settings.',
        );
      }
    }
    return warnings;
  }
}

/** The providers of a module without routes: what warns about the HTTP settings it was given anyway. */
function httpOffProviders(extras: ContainerPoolHttpExtras & { isGlobal?: boolean }): Provider[] {
  const off: HttpOff = {
    extras: LEGACY_KEYS.filter((k) => extras[k] !== undefined),
    isGlobal: !!extras.isGlobal,
  };
  return [{ provide: HTTP_OFF, useValue: off }, HttpOffWarning];
}

/** Adds the pool's controllers and HTTP settings to the module definition, when the extras ask for routes. */
export function withHttp(
  definition: DynamicModule,
  extras: ContainerPoolHttpExtras & { isGlobal?: boolean },
): DynamicModule {
  const http = httpOptionsOf(extras);
  const settings = http ? httpSettingsOf(http.options, http.label) : NO_HTTP;
  return {
    ...definition,
    imports: [
      ...(definition.imports ?? []),
      ...(settings.controllers.length ? [DiscoveryModule] : []),
    ],
    controllers: [...(definition.controllers ?? []), ...settings.controllers],
    providers: [
      ...(definition.providers ?? []),
      ...httpProviders(settings),
      ...(http ? [] : httpOffProviders(extras)),
    ],
  };
}

/**
 * The pool's own routes parse their bodies themselves, with the pool's limit: JSON (JsonBodyMiddleware), and
 * bytes on the routes that take files (OctetBodyMiddleware).
 */
export function applyJsonBodies(consumer: MiddlewareConsumer, settings: ContainerPoolHttpSettings) {
  const raw = (c: Type) => Boolean((c as Type & { [RAW_BODY_ROUTES]?: boolean })[RAW_BODY_ROUTES]);
  const json = settings.adminControllers.filter((c) => !raw(c));
  const bytes = settings.adminControllers.filter(raw);
  if (json.length) consumer.apply(JsonBodyMiddleware).forRoutes(...json);
  if (bytes.length) consumer.apply(OctetBodyMiddleware).forRoutes(...bytes);
}

/** The problem of a ContainerPoolHttpModule in an app without a global pool. */
export const NO_GLOBAL_POOL =
  'ContainerPoolHttpModule serves the routes of a pool registered globally, and this app has none: register ' +
  'the pool with ContainerPoolModule.forRoot({ isGlobal: true, ... }) (or forRootAsync({ isGlobal: true, ... })), ' +
  'or drop ContainerPoolHttpModule and give forRoot the http option (http: true or { prefix, ... }) instead';

/** Fails the start with an InvalidPoolConfigError saying so when no global pool is there to serve. */
const GLOBAL_POOL_CHECK: Provider = {
  provide: Symbol('container-pool:global-pool-check'),
  inject: [{ token: CONTAINER_POOL_RESOLVED_OPTIONS, optional: true }],
  useFactory: (options?: ResolvedContainerPoolOptions) => {
    if (!options) throw new InvalidPoolConfigError([NO_GLOBAL_POOL]);
    return true;
  },
};

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
    const settings = httpSettingsOf(
      options,
      (key) => `ContainerPoolHttpModule.register({ ${key} })`,
    );
    return {
      module: ContainerPoolHttpModule,
      imports: [TerminusModule.forRoot({ logger: false }), DiscoveryModule],
      controllers: settings.controllers,
      // The check first: without a global pool, its error comes before Nest's about the controllers' injections.
      providers: [GLOBAL_POOL_CHECK, ...httpProviders(settings)],
    };
  }

  configure(consumer: MiddlewareConsumer): void {
    applyJsonBodies(consumer, this.settings);
  }
}

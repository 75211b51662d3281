import {
  Inject,
  Injectable,
  Logger,
  OnApplicationBootstrap,
  Optional,
  RequestMethod,
  Type,
} from '@nestjs/common';
import {
  ApplicationConfig,
  DiscoveryService,
  HttpAdapterHost,
  ModulesContainer,
} from '@nestjs/core';
import {
  CONTAINER_POOL_HTTP_SETTINGS,
  CONTAINER_POOL_RESOLVED_OPTIONS,
} from '../container-pool.constants';
import type { ContainerPoolHttpSettings } from '../interfaces/http-settings.interface';
import { AppRoute, appRouting, collisionOf, POOL_ROUTE_SETTING, routesOf } from './route-paths';

/** A controller of the app, with where Nest registered it among the others (the first answers). */
interface Registered {
  order: number;
  routes: AppRoute[];
  /** For a controller a container pool module routed: the setting that places it. */
  setting?: string;
  /** The pool of such a controller, when its module knows it. */
  pool?: string;
}

/**
 * At bootstrap: a route the pool adds that another route of the app can answer too is a warning naming both
 * routes, which one answers, and the setting that moves the pool's. Paths are compared as the router matches
 * them: with the global prefix and URI versions, case-insensitively unless the app turned on `case sensitive
 * routing`, a parameter or wildcard meeting a literal segment (`/pool/:id` answers `/pool/containers`). The other
 * route is the host's, or another pool module's (two pools, or the same pool served twice): such a pair is
 * reported once, by the pool registered first.
 */
@Injectable()
export class RouteCollisionCheck implements OnApplicationBootstrap {
  private readonly logger = new Logger('ContainerPoolHttp');

  constructor(
    private readonly discovery: DiscoveryService,
    @Inject(CONTAINER_POOL_HTTP_SETTINGS) private readonly settings: ContainerPoolHttpSettings,
    @Optional() private readonly config?: ApplicationConfig,
    @Optional() private readonly adapterHost?: HttpAdapterHost,
    @Optional() private readonly modules?: ModulesContainer,
    @Optional()
    @Inject(CONTAINER_POOL_RESOLVED_OPTIONS)
    private readonly options?: { name?: string },
  ) {}

  onApplicationBootstrap(): void {
    for (const message of this.collisions()) this.logger.warn(message);
  }

  /** The warnings: one per pair of colliding routes. */
  collisions(): string[] {
    const routing = appRouting(this.config, this.adapterHost, this.modules);
    const ours = new Set<Type>(this.settings.controllers);
    const mine: Registered[] = [];
    const others: Registered[] = [];
    this.discovery.getControllers().forEach((wrapper, order) => {
      const type = wrapper.metatype as Type | null;
      if (!type) return;
      const host = wrapper.host as
        { metatype?: Type; providers?: Map<unknown, { instance?: unknown }> } | undefined;
      const entry: Registered = {
        order,
        routes: routesOf(type, routing.contextOf(host?.metatype)),
        setting: Reflect.getMetadata(POOL_ROUTE_SETTING, type) as string | undefined,
        pool: (
          host?.providers?.get(CONTAINER_POOL_RESOLVED_OPTIONS)?.instance as
            { name?: string } | undefined
        )?.name,
      };
      (ours.has(type) ? mine : others).push(entry);
    });
    const self = this.options?.name
      ? `the container pool "${this.options.name}"`
      : 'the container pool';
    const messages: string[] = [];
    for (const m of mine) {
      for (const t of others) {
        // Two pool modules: the one registered first reports the pair.
        if (t.setting && t.order < m.order) continue;
        for (const mr of m.routes) {
          for (const tr of t.routes) {
            const request = collisionOf(mr, tr, routing.caseSensitive);
            if (!request) continue;
            const route = (r: AppRoute) => `${RequestMethod[r.method]} ${r.path}`;
            const theirs = t.setting
              ? `another container pool's route ${tr.where}${t.pool ? ` (pool "${t.pool}")` : ''}`
              : `the host's ${tr.where}`;
            const first =
              m.order < t.order ? 'this pool' : t.setting ? 'the other pool' : 'the host';
            const same = route(mr).toLowerCase() === route(tr).toLowerCase();
            const fix = t.setting
              ? `Give each pool its own paths: change ${m.setting ?? 'the prefix'} of this pool or ` +
                `${t.setting} of the other.`
              : `Move the pool's route with ${m.setting ?? 'its http options'} or change the host's.`;
            messages.push(
              `route ${route(mr)} of ${self} ${same ? 'is also served by' : 'overlaps'} ${theirs} ` +
                `(${route(tr)})` +
                (same ? '' : `: a request such as ${request} matches both`) +
                `; only the one registered first (${first}'s) answers it. ${fix}`,
            );
          }
        }
      }
    }
    return messages;
  }
}

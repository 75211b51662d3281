import {
  Inject,
  Injectable,
  Logger,
  OnApplicationBootstrap,
  RequestMethod,
  Type,
} from '@nestjs/common';
import { METHOD_METADATA, PATH_METADATA } from '@nestjs/common/constants';
import { DiscoveryService, MetadataScanner } from '@nestjs/core';
import { CONTAINER_POOL_HTTP_SETTINGS } from '../container-pool.constants';
import type { ContainerPoolHttpSettings } from '../interfaces/http-settings.interface';

interface Route {
  method: RequestMethod;
  /** `/a/:/b`: the path with every parameter written `:`. */
  key: string;
  path: string;
  where: string;
}

const asList = (v: unknown): string[] =>
  Array.isArray(v) ? v.map((x) => `${x as string}`) : [typeof v === 'string' ? v : ''];

function join(...parts: string[]): string {
  return (
    '/' +
    parts
      .flatMap((p) => p.split('/'))
      .filter(Boolean)
      .join('/')
  );
}

/** Every route a controller class declares. */
export function routesOf(controller: Type): Route[] {
  const routes: Route[] = [];
  const prefixes = asList(Reflect.getMetadata(PATH_METADATA, controller));
  const proto = controller.prototype as Record<string, unknown>;
  for (const name of new MetadataScanner().getAllMethodNames(proto)) {
    const handler = proto[name];
    if (typeof handler !== 'function') continue;
    const method = Reflect.getMetadata(METHOD_METADATA, handler) as RequestMethod | undefined;
    if (method === undefined) continue;
    for (const prefix of prefixes) {
      for (const sub of asList(Reflect.getMetadata(PATH_METADATA, handler))) {
        const path = join(prefix, sub);
        routes.push({
          method,
          path,
          key: path.replace(/\/:[^/]+/g, '/:').replace(/\/\*[^/]*/g, '/*'),
          where: `${controller.name}.${name}`,
        });
      }
    }
  }
  return routes;
}

/**
 * At bootstrap: a route the pool adds that the host app serves too (same method and path) is a warning naming
 * both, since only the one registered first answers.
 */
@Injectable()
export class RouteCollisionCheck implements OnApplicationBootstrap {
  private readonly logger = new Logger('ContainerPoolHttp');

  constructor(
    private readonly discovery: DiscoveryService,
    @Inject(CONTAINER_POOL_HTTP_SETTINGS) private readonly settings: ContainerPoolHttpSettings,
  ) {}

  onApplicationBootstrap(): void {
    const ours = new Set<Type>(this.settings.controllers);
    const mine = this.settings.controllers.flatMap(routesOf);
    const theirs = this.discovery
      .getControllers()
      .map((w) => w.metatype as Type | null)
      .filter((t): t is Type => !!t && !ours.has(t))
      .flatMap(routesOf);
    for (const m of mine) {
      for (const t of theirs) {
        const sameMethod =
          m.method === t.method || m.method === RequestMethod.ALL || t.method === RequestMethod.ALL;
        if (!sameMethod || m.key !== t.key) continue;
        this.logger.warn(
          `route ${RequestMethod[m.method]} ${m.path} of the container pool is also served by the host's ` +
            `${t.where} (${RequestMethod[t.method]} ${t.path}); only the one registered first answers. Move ` +
            "the pool's routes with the http options (prefix, healthPath, metricsPath) or rename the host's.",
        );
      }
    }
  }
}

import type { IncomingMessage, ServerResponse } from 'node:http';
import { Inject, Injectable, OnModuleInit, Optional, RequestMethod, Type } from '@nestjs/common';
import {
  ApplicationConfig,
  DiscoveryService,
  HttpAdapterHost,
  ModulesContainer,
} from '@nestjs/core';
import { CONTAINER_POOL_HTTP_SETTINGS } from '../container-pool.constants';
import type { ContainerPoolHttpSettings } from '../interfaces/http-settings.interface';
import { errorResponseOf } from './filters/container-pool-error.filter';
import { httpError } from './http-errors';
import {
  AppRoute,
  appRouting,
  basePathsOf,
  literalSegments,
  overlapOf,
  routesOf,
} from './route-paths';

type Next = (err?: unknown) => void;

/** What the answer says of the request path: without its query, not too long. */
const shown = (url: string) => {
  const path = url.split('?')[0];
  return path.length > 200 ? `${path.slice(0, 200)}...` : path;
};

/**
 * A request under the module's prefix that no route answers gets a 404 (or a 405 naming the methods of its
 * path) in the module's one error shape, not the host's. Mounted on the HTTP adapter once every controller's
 * routes are registered (at onModuleInit, before Nest's own not-found handler), at the paths the prefix has in
 * the app (global prefix, URI version, RouterModule path): every route registered by then, the host's under the
 * prefix included, answers first. OPTIONS requests are passed on (CORS and Express answer them). Express only.
 */
@Injectable()
export class PrefixNotFoundHandler implements OnModuleInit {
  constructor(
    @Inject(CONTAINER_POOL_HTTP_SETTINGS) private readonly settings: ContainerPoolHttpSettings,
    private readonly discovery: DiscoveryService,
    @Optional() private readonly adapterHost?: HttpAdapterHost,
    @Optional() private readonly config?: ApplicationConfig,
    @Optional() private readonly modules?: ModulesContainer,
  ) {}

  onModuleInit(): void {
    const adapter = this.adapterHost?.httpAdapter;
    if (!adapter || !this.settings.adminControllers.length || adapter.getType() !== 'express') {
      return;
    }
    const routing = appRouting(this.config, this.adapterHost, this.modules);
    const ours = new Set<Type>(this.settings.adminControllers);
    const mounts = new Set<string>();
    const routes: AppRoute[] = [];
    for (const wrapper of this.discovery.getControllers()) {
      const type = wrapper.metatype as Type | null;
      if (!type || !ours.has(type)) continue;
      const context = routing.contextOf(
        (wrapper.host as { metatype?: Type } | undefined)?.metatype,
      );
      basePathsOf(type, context).forEach((p) => mounts.add(p));
      routes.push(...routesOf(type, context));
    }
    const handler = (req: IncomingMessage, res: ServerResponse, next: Next) => {
      if (req.method === 'OPTIONS' || res.headersSent) return next();
      const url = (req as { originalUrl?: string }).originalUrl ?? req.url ?? '/';
      const path = shown(url);
      const segments = literalSegments(url.split('?')[0]);
      const allowed = new Set<string>();
      for (const r of routes) {
        if (overlapOf(r.path, segments, routing.caseSensitive) === null) continue;
        const method = RequestMethod[r.method];
        allowed.add(method);
        if (method === 'GET') allowed.add('HEAD');
      }
      const err = allowed.size
        ? httpError(
            405,
            'METHOD_NOT_ALLOWED',
            `${req.method} is not a method of ${path} in the container pool's API: use ${[...allowed].join(', ')}.`,
          )
        : httpError(
            404,
            'NOT_FOUND',
            `No route ${req.method} ${path} in the container pool's API (its routes are in its OpenAPI ` +
              'document and the README).',
          );
      const { status, body } = errorResponseOf(err);
      if (allowed.size) adapter.setHeader(res, 'Allow', [...allowed].join(', '));
      adapter.reply(res, body, status);
    };
    for (const mount of mounts) adapter.use(mount, handler);
  }
}

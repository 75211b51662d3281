import { createParamDecorator, ExecutionContext } from '@nestjs/common';
import { METHOD_METADATA } from '@nestjs/common/constants';
import type { ContainerPoolService } from '../container-pool.service';
import { UnknownProfileError } from '../errors/container-pool.errors';
import type { ContainerPool } from '../profiles/container-pool';
import { httpError } from './http-errors';
import { ApiParam } from './openapi/swagger';

/** The path segment under the prefix where one profile's copy of the routes lives. */
export const PROFILE_ROUTES_SEGMENT = 'profiles/:profile';

/**
 * The `:profile` of a profile route (`<prefix>/profiles/:profile/...`), undefined on the default routes. A
 * custom decorator rather than @Param so that the default routes' OpenAPI operations get no path parameter.
 */
export const ProfileName = createParamDecorator(
  (_: unknown, ctx: ExecutionContext): string | undefined =>
    ctx.switchToHttp().getRequest<{ params?: Record<string, string> }>().params?.profile,
);

/** The pool a route serves: its path's profile, or the default one. An unknown profile is a 404. */
export function poolOfRoute(svc: ContainerPoolService, profile: string | undefined): ContainerPool {
  try {
    return svc.pool(profile);
  } catch (err) {
    if (err instanceof UnknownProfileError) throw httpError(404, err.code, err.message);
    throw err;
  }
}

/** Marks the per-profile copy of a controller (its start-up notices are the default copy's). */
export const PROFILE_ROUTES = Symbol('container-pool:profile-routes');

/** Whether `instance` is a controller routed under `<prefix>/profiles/:profile`. */
export function isProfileRoutes(instance: object): boolean {
  return Boolean((instance.constructor as { [PROFILE_ROUTES]?: boolean })[PROFILE_ROUTES]);
}

/**
 * Gives `target` (a routed subclass) its own copy of every route method of its base, with the same metadata,
 * so that decorators applied to `target` alone (the profile path parameter) do not reach the base's routes.
 */
function ownRouteMethods(target: { prototype: object }): void {
  const base = Object.getPrototypeOf(target) as { prototype: object };
  for (const key of Object.getOwnPropertyNames(base.prototype)) {
    const descriptor = Object.getOwnPropertyDescriptor(base.prototype, key);
    const original: unknown = descriptor?.value;
    if (key === 'constructor' || typeof original !== 'function') continue;
    if (!Reflect.hasMetadata(METHOD_METADATA, original)) continue;
    const own = {
      [key](this: unknown, ...args: unknown[]): unknown {
        return (original as (...a: unknown[]) => unknown).apply(this, args);
      },
    }[key];
    for (const k of Reflect.getMetadataKeys(original)) {
      Reflect.defineMetadata(k, Reflect.getMetadata(k, original), own);
    }
    Object.defineProperty(target.prototype, key, { ...descriptor, value: own });
  }
}

/** The decorator of a controller's per-profile copy: the marker and the OpenAPI path parameter. */
export const profileRoutes: ClassDecorator = (target) => {
  Object.defineProperty(target, PROFILE_ROUTES, { value: true });
  ownRouteMethods(target);
  ApiParam({ name: 'profile', description: 'Profile name (GET .../profiles lists them).' })(target);
};

import {
  RequestMethod,
  Type,
  VERSION_NEUTRAL,
  VersioningOptions,
  VersioningType,
} from '@nestjs/common';
import {
  METHOD_METADATA,
  MODULE_PATH,
  PATH_METADATA,
  VERSION_METADATA,
} from '@nestjs/common/constants';
import type { ApplicationConfig, HttpAdapterHost, ModulesContainer } from '@nestjs/core';
import { MetadataScanner } from '@nestjs/core';

/**
 * Metadata of a controller class the module routed (see routedAt): how the host names the setting that places
 * it, e.g. `http.prefix` or `ContainerPoolHttpModule.register({ healthPath })`.
 */
export const POOL_ROUTE_SETTING = 'container-pool:route-setting';

type VersionValue = string | typeof VERSION_NEUTRAL | (string | typeof VERSION_NEUTRAL)[];

/** Where the app puts a controller's routes besides their own paths (as Nest's RoutePathFactory does). */
export interface RouteContext {
  /** `app.setGlobalPrefix()`. */
  globalPrefix?: string;
  /** Whether the global prefix's `exclude` keeps this path (without its version) of this method out of it. */
  excludedFromPrefix?: (path: string, method: RequestMethod) => boolean;
  /** `app.enableVersioning()`. */
  versioning?: VersioningOptions;
  /** The path of the controller's module under a RouterModule. */
  modulePath?: string;
}

/** What the app's configuration does to a controller's paths (global prefix, versioning, RouterModule path). */
export interface AppRouting {
  /** The route context of a controller of `moduleClass`. */
  contextOf(moduleClass?: Type): RouteContext;
  /** Whether the router compares paths case-sensitively (Express's `case sensitive routing`; default off). */
  caseSensitive: boolean;
}

interface ExcludedRoute {
  requestMethod?: RequestMethod | -1;
  pathRegex?: RegExp;
}

/** The app's routing as Nest applies it when it registers the routes (see Nest's RoutePathFactory). */
export function appRouting(
  config?: ApplicationConfig,
  adapterHost?: HttpAdapterHost,
  modules?: ModulesContainer,
): AppRouting {
  const globalPrefix = config?.getGlobalPrefix() || undefined;
  const exclude = (config?.getGlobalPrefixOptions()?.exclude ?? []) as ExcludedRoute[];
  const versioning = config?.getVersioning();
  const instance: { enabled?: (setting: string) => boolean } | undefined =
    adapterHost?.httpAdapter?.getInstance?.();
  const caseSensitive =
    typeof instance?.enabled === 'function' ? !!instance.enabled('case sensitive routing') : false;
  const excludedFromPrefix = (path: string, method: RequestMethod) =>
    exclude.some(
      (r) =>
        (r.requestMethod === undefined ||
          r.requestMethod === RequestMethod.ALL ||
          r.requestMethod === -1 ||
          r.requestMethod === method) &&
        r.pathRegex instanceof RegExp &&
        r.pathRegex.test(path),
    );
  return {
    caseSensitive,
    contextOf: (moduleClass) => {
      const modulePath = moduleClass
        ? ((Reflect.getMetadata(`${MODULE_PATH}${modules?.applicationId ?? ''}`, moduleClass) ??
            Reflect.getMetadata(MODULE_PATH, moduleClass)) as string | undefined)
        : undefined;
      return { globalPrefix, excludedFromPrefix, versioning, modulePath };
    },
  };
}

/** One route as a client reaches it. */
export interface AppRoute {
  method: RequestMethod;
  /** The full path, with the global prefix, the URI version and the module path: `/api/v1/health/ready`. */
  path: string;
  /** Its versions under header, media-type or custom versioning (the path carries none); absent: any. */
  versions?: string[];
  /** `Class.method`. */
  where: string;
}

const asList = <T>(v: T | T[] | undefined): T[] =>
  v === undefined ? [] : Array.isArray(v) ? v : [v];

const pathsOf = (v: unknown): string[] => {
  const list = asList(v as string | string[] | undefined).map((p) => `${p}`);
  return list.length ? list : ['/'];
};

/** `/a/b` of the fragments, one slash between each, none at the end. */
export function joinPath(...parts: (string | undefined)[]): string {
  return (
    '/' +
    parts
      .flatMap((p) => (p ?? '').split('/'))
      .filter(Boolean)
      .join('/')
  );
}

const NEUTRAL = 'VERSION_NEUTRAL';
const versionName = (v: string | typeof VERSION_NEUTRAL): string =>
  v === VERSION_NEUTRAL ? NEUTRAL : String(v);

/**
 * Every route a controller class declares, at the paths Nest registers them: the global prefix (unless
 * excluded), the URI version (`/v1`, from the method, the controller or the default version), the module path,
 * the controller path and the method path.
 */
export function routesOf(controller: Type, context: RouteContext = {}): AppRoute[] {
  const routes: AppRoute[] = [];
  const { versioning } = context;
  const controllerVersion =
    (Reflect.getMetadata(VERSION_METADATA, controller) as VersionValue | undefined) ??
    (versioning ? versioning.defaultVersion : undefined);
  const proto = controller.prototype as Record<string, unknown>;
  for (const name of new MetadataScanner().getAllMethodNames(proto)) {
    const handler = proto[name];
    if (typeof handler !== 'function') continue;
    const method = Reflect.getMetadata(METHOD_METADATA, handler) as RequestMethod | undefined;
    if (method === undefined) continue;
    const version =
      (Reflect.getMetadata(VERSION_METADATA, handler) as VersionValue | undefined) ??
      controllerVersion;
    const versions = version === undefined ? undefined : asList(version);
    const uri = versioning?.type === VersioningType.URI;
    const versionPrefix =
      versioning?.type === VersioningType.URI
        ? versioning.prefix === false
          ? ''
          : (versioning.prefix ?? 'v')
        : 'v';
    for (const ctrlPath of pathsOf(Reflect.getMetadata(PATH_METADATA, controller))) {
      for (const methodPath of pathsOf(Reflect.getMetadata(PATH_METADATA, handler))) {
        const bare = joinPath(context.modulePath, ctrlPath, methodPath);
        const prefixed = (path: string) =>
          context.globalPrefix && !context.excludedFromPrefix?.(bare, method)
            ? joinPath(context.globalPrefix, path)
            : path;
        const where = `${controller.name}.${name}`;
        if (uri && versions) {
          for (const v of versions) {
            const path = v === VERSION_NEUTRAL ? bare : joinPath(`${versionPrefix}${v}`, bare);
            routes.push({ method, path: prefixed(path), where });
          }
        } else {
          routes.push({
            method,
            path: prefixed(bare),
            where,
            ...(versions ? { versions: versions.map(versionName) } : {}),
          });
        }
      }
    }
  }
  return routes;
}

/**
 * Where Nest mounts a controller: the paths its routes start with (global prefix, URI version of the controller
 * or the default one, module path, controller path), e.g. `/api/v1/admin/pool`.
 */
export function basePathsOf(controller: Type, context: RouteContext = {}): string[] {
  const { versioning } = context;
  const version =
    (Reflect.getMetadata(VERSION_METADATA, controller) as VersionValue | undefined) ??
    (versioning ? versioning.defaultVersion : undefined);
  const versionPrefix =
    versioning?.type === VersioningType.URI
      ? versioning.prefix === false
        ? ''
        : (versioning.prefix ?? 'v')
      : null;
  const paths = new Set<string>();
  for (const ctrlPath of pathsOf(Reflect.getMetadata(PATH_METADATA, controller))) {
    const bare = joinPath(context.modulePath, ctrlPath);
    const prefixed = (path: string) =>
      context.globalPrefix && !context.excludedFromPrefix?.(bare, RequestMethod.ALL)
        ? joinPath(context.globalPrefix, path)
        : path;
    const versions =
      versionPrefix === null || version === undefined ? [undefined] : asList(version);
    for (const v of versions) {
      paths.add(
        prefixed(
          v === undefined || v === VERSION_NEUTRAL ? bare : joinPath(`${versionPrefix}${v}`, bare),
        ),
      );
    }
  }
  return [...paths];
}

/** A segment of a route path, as far as which request paths it matches. */
export type Segment =
  | { kind: 'literal'; text: string }
  /** Exactly one segment (`:id`, or a segment with a parameter inside, e.g. `file.:ext`). */
  | { kind: 'one' }
  /** One segment or none (`:id?`, `{/:id}`). */
  | { kind: 'optional' }
  /** Any number of segments, none included (`*`, `{*path}`, `(.*)`). */
  | { kind: 'rest' };

function segmentsOfPart(part: string): Segment[] {
  if (!part) return [];
  // A wildcard: `*`, `*name` (one or more), `{*name}`, `(.*)`, `:name(.*)`, `:name*`, `:name+`.
  if (/^(\*|\{\*\w*\}|\(\.\*\)|:\w+\(\.\*\)|:\w+\*)$/.test(part)) return [{ kind: 'rest' }];
  if (/^(\*\w+|:\w+\+)$/.test(part)) return [{ kind: 'one' }, { kind: 'rest' }];
  if (/^:\w+\?$/.test(part)) return [{ kind: 'optional' }];
  if (/[:*(){}]/.test(part)) return [{ kind: 'one' }];
  return [{ kind: 'literal', text: part.replace(/\\(.)/g, '$1') }];
}

/** The segments of an Express route path (path-to-regexp 8 syntax, and Nest's legacy `*`, `(.*)`, `:id?`). */
export function segmentsOf(path: string): Segment[] {
  const out: Segment[] = [];
  let i = 0;
  let part = '';
  const flush = () => {
    out.push(...segmentsOfPart(part));
    part = '';
  };
  while (i < path.length) {
    const c = path[i];
    if (c === '\\') {
      part += path.slice(i, i + 2);
      i += 2;
    } else if (c === '{' && path[i + 1] === '/') {
      // An optional group of whole segments: each of them may be absent.
      let depth = 0;
      let j = i;
      for (; j < path.length; j++) {
        if (path[j] === '{') depth++;
        else if (path[j] === '}' && --depth === 0) break;
      }
      flush();
      for (const s of segmentsOf(path.slice(i + 1, j))) {
        out.push(s.kind === 'rest' ? s : { kind: 'optional' });
      }
      i = j + 1;
    } else if (c === '/') {
      flush();
      i++;
    } else {
      part += c;
      i++;
    }
  }
  flush();
  return out;
}

/** The segments of a request path: every one literal, whatever its characters. */
export function literalSegments(path: string): Segment[] {
  return path
    .split('/')
    .filter(Boolean)
    .map((text) => ({ kind: 'literal', text }));
}

/**
 * A request path that both route paths match (e.g. `/pool/containers` for `/pool/:id` and `/pool/containers`),
 * or null when none does. Literal segments compare case-insensitively unless `caseSensitive` (Express's
 * default: `case sensitive routing` off).
 */
export function overlapOf(
  a: string | Segment[],
  b: string | Segment[],
  caseSensitive = false,
): string | null {
  const x = typeof a === 'string' ? segmentsOf(a) : a;
  const y = typeof b === 'string' ? segmentsOf(b) : b;
  const same = (p: string, q: string) =>
    caseSensitive ? p === q : p.toLowerCase() === q.toLowerCase();
  const memo = new Map<number, string[] | null>();
  const skippable = (s: Segment | undefined) => s?.kind === 'optional' || s?.kind === 'rest';
  const go = (i: number, j: number): string[] | null => {
    const key = i * (y.length + 1) + j;
    if (memo.has(key)) return memo.get(key)!;
    memo.set(key, null);
    let found: string[] | null = i === x.length && j === y.length ? [] : null;
    if (!found && skippable(x[i])) found = go(i + 1, j);
    if (!found && skippable(y[j])) found = go(i, j + 1);
    if (!found && i < x.length && j < y.length) {
      const s = x[i];
      const t = y[j];
      const segment =
        s.kind === 'literal' && t.kind === 'literal'
          ? same(s.text, t.text)
            ? s.text
            : null
          : s.kind === 'literal'
            ? s.text
            : t.kind === 'literal'
              ? t.text
              : 'x';
      if (segment !== null) {
        // A wildcard may go on matching after this segment.
        const nextI = s.kind === 'rest' ? [i, i + 1] : [i + 1];
        const nextJ = t.kind === 'rest' ? [j, j + 1] : [j + 1];
        for (const p of nextI) {
          for (const q of nextJ) {
            if (found || (p === i && q === j)) continue;
            const rest = go(p, q);
            if (rest) found = [segment, ...rest];
          }
        }
      }
    }
    memo.set(key, found);
    return found;
  };
  const found = go(0, 0);
  return found && `/${found.join('/')}`;
}

/** Whether one request method can reach both routes (ALL reaches every one; Express answers HEAD with GET). */
export function methodsMeet(a: RequestMethod, b: RequestMethod): boolean {
  if (a === b || a === RequestMethod.ALL || b === RequestMethod.ALL) return true;
  const pair = new Set([a, b]);
  return pair.has(RequestMethod.GET) && pair.has(RequestMethod.HEAD);
}

/** Whether one request can be of a version both routes serve (header, media-type or custom versioning). */
export function versionsMeet(a?: string[], b?: string[]): boolean {
  if (!a || !b || a.includes(NEUTRAL) || b.includes(NEUTRAL)) return true;
  return a.some((v) => b.includes(v));
}

/** A request both routes can answer, as `GET /path`, or null. */
export function collisionOf(a: AppRoute, b: AppRoute, caseSensitive = false): string | null {
  if (!methodsMeet(a.method, b.method) || !versionsMeet(a.versions, b.versions)) return null;
  const path = overlapOf(a.path, b.path, caseSensitive);
  if (path === null) return null;
  const method =
    a.method === RequestMethod.ALL
      ? b.method
      : b.method === RequestMethod.ALL || a.method === b.method
        ? a.method
        : RequestMethod.HEAD;
  return `${method === RequestMethod.ALL ? 'GET' : RequestMethod[method]} ${path}`;
}

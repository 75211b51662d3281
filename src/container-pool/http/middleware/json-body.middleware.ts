import { bodyLimit, readBody } from './read-body';
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  BadRequestException,
  CanActivate,
  ExecutionContext,
  Inject,
  Injectable,
  NestMiddleware,
  UnsupportedMediaTypeException,
} from '@nestjs/common';
import { CONTAINER_POOL_RESOLVED_OPTIONS } from '../../container-pool.constants';
import { checkScopedBearer } from '../guards/admin-token.guard';
import type { ResolvedContainerPoolOptions } from '../../interfaces/container-pool-options.interface';

/** Deepest nesting a request body may have (the pool's requests are two levels deep). */
const MAX_BODY_DEPTH = 32;
const FORBIDDEN_KEYS = new Set(['__proto__']);

/**
 * What is wrong with the shape of a parsed body, or null: nesting deeper than MAX_BODY_DEPTH (validation
 * recurses, and a deep enough body would exhaust its stack) or a key that names an object's prototype.
 * Iterative, so the check itself cannot run out of stack.
 */
export function shapeProblem(body: unknown): string | null {
  const stack: [unknown, number][] = [[body, 1]];
  while (stack.length) {
    const [value, depth] = stack.pop()!;
    if (typeof value !== 'object' || value === null) continue;
    if (depth > MAX_BODY_DEPTH) return `is nested deeper than ${MAX_BODY_DEPTH} levels`;
    for (const [key, child] of Object.entries(value)) {
      if (FORBIDDEN_KEYS.has(key)) return `must not have a key named "${key}"`;
      stack.push([child, depth + 1]);
    }
  }
  return null;
}

/** Where the middleware leaves a body it refused, for BodyErrorGuard. */
export const BODY_ERROR = Symbol('container-pool:body-error');

type Request = IncomingMessage & { body?: unknown; rawBody?: Buffer; [BODY_ERROR]?: unknown };

/** Throws, inside the route (so its filter answers), the error JsonBodyMiddleware found in the body. */
@Injectable()
export class BodyErrorGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    const error = context.switchToHttp().getRequest<Request>()[BODY_ERROR];
    if (error !== undefined) throw error as Error;
    return true;
  }
}

function hasBody(req: IncomingMessage): boolean {
  return (
    req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0
  );
}

/**
 * Parses the JSON bodies of the pool's own routes with the pool's limit (`maxBodyBytes`), so they do not depend
 * on the host app's body parser:
 * - over the limit (declared or read): 413 naming the limit;
 * - not JSON: 415; malformed JSON: 400 saying so.
 * When the host app's parser already read the body (Nest's default, 100 kB, applies first), this only
 * enforces the declared Content-Length against the limit. Requests without a valid admin token are passed on
 * unread: the guard refuses them, and nobody unauthenticated makes the service buffer a large body.
 */
@Injectable()
export class JsonBodyMiddleware implements NestMiddleware {
  constructor(
    @Inject(CONTAINER_POOL_RESOLVED_OPTIONS) private readonly options: ResolvedContainerPoolOptions,
  ) {}

  use(req: Request, _res: ServerResponse, next: (error?: unknown) => void): void {
    if (!checkScopedBearer(req.headers.authorization, this.options).ok) return next();
    // Errors go to the route (BodyErrorGuard throws them there), so its error filter answers in the one shape.
    const fail = (error: unknown) => {
      req[BODY_ERROR] = error;
      next();
    };
    const { limit, tooLarge, declaredOver } = bodyLimit(req, this.options.maxBodyBytes);
    if (declaredOver) return fail(tooLarge());
    // Read by the host's parser with `rawBody: true`: its size is known even when it came chunked.
    if (req.rawBody && req.rawBody.length > limit) return fail(tooLarge());
    if (req.body !== undefined || req.readableEnded || !hasBody(req)) return next();

    const type = (req.headers['content-type'] ?? '').toLowerCase();
    const [mime, ...params] = type.split(';').map((s) => s.trim());
    if (mime !== 'application/json' && !/^application\/[a-z0-9.+-]+\+json$/.test(mime)) {
      return fail(
        new UnsupportedMediaTypeException(
          `Request body must be JSON: send "Content-Type: application/json" (got "${mime || 'none'}").`,
        ),
      );
    }
    const charset = params
      .find((p) => p.startsWith('charset='))
      ?.slice(8)
      .replace(/"/g, '');
    if (charset && charset !== 'utf-8' && charset !== 'utf8') {
      return fail(
        new UnsupportedMediaTypeException(
          `Request body must be UTF-8 JSON (got charset ${charset}).`,
        ),
      );
    }
    const encoding = (req.headers['content-encoding'] ?? 'identity').toLowerCase();
    if (encoding !== 'identity') {
      return fail(
        new UnsupportedMediaTypeException(`Content-Encoding ${encoding} is not supported.`),
      );
    }

    readBody(
      req,
      limit,
      tooLarge,
      (bytes) => {
        try {
          req.body = JSON.parse(bytes.toString('utf8'));
        } catch (err) {
          return new BadRequestException(
            `Request body is not valid JSON: ${err instanceof Error ? err.message : String(err)}`,
          );
        }
        const problem = shapeProblem(req.body);
        return problem ? new BadRequestException(`Request body ${problem}.`) : undefined;
      },
      next,
      fail,
    );
  }
}

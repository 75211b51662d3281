import { bodyLimit, readBody } from './read-body';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Inject, Injectable, NestMiddleware, UnsupportedMediaTypeException } from '@nestjs/common';
import { CONTAINER_POOL_RESOLVED_OPTIONS } from '../../container-pool.constants';
import type { ResolvedContainerPoolOptions } from '../../interfaces/container-pool-options.interface';
import { checkScopedBearer } from '../guards/admin-token.guard';
import { BODY_ERROR } from './json-body.middleware';

export const OCTET_STREAM = 'application/octet-stream';

type Request = IncomingMessage & { body?: unknown; [BODY_ERROR]?: unknown };

/**
 * Reads the raw bodies of the routes that take bytes (PUT .../sessions/:id/files/*path) into a Buffer
 * (`req.body`), with the pool's limit (`maxBodyBytes`), as JsonBodyMiddleware does for JSON:
 * - over the limit (declared or read): 413 naming the limit;
 * - another Content-Type than application/octet-stream, or a Content-Encoding: 415;
 * - no body: an empty Buffer (an empty file).
 * A Buffer the host's raw parser already read is kept (its size checked). Requests without a valid token are
 * passed on unread: the guard refuses them. Errors are thrown inside the route by BodyErrorGuard, so that the
 * route's filter answers them in the one error shape.
 */
@Injectable()
export class OctetBodyMiddleware implements NestMiddleware {
  constructor(
    @Inject(CONTAINER_POOL_RESOLVED_OPTIONS) private readonly options: ResolvedContainerPoolOptions,
  ) {}

  use(req: Request, _res: ServerResponse, next: (error?: unknown) => void): void {
    if (req.method !== 'PUT' && req.method !== 'POST') return next();
    if (!checkScopedBearer(req.headers.authorization, this.options).ok) return next();
    const fail = (error: unknown) => {
      req[BODY_ERROR] = error;
      next();
    };
    const { limit, tooLarge, declaredOver } = bodyLimit(req, this.options.maxBodyBytes);
    if (declaredOver) return fail(tooLarge());
    if (Buffer.isBuffer(req.body)) {
      return req.body.length > limit ? fail(tooLarge()) : next();
    }
    const hasBody =
      req.headers['transfer-encoding'] !== undefined ||
      Number(req.headers['content-length'] ?? 0) > 0;
    const mime = (req.headers['content-type'] ?? '').toLowerCase().split(';')[0].trim();
    if (hasBody && mime !== OCTET_STREAM) {
      return fail(
        new UnsupportedMediaTypeException(
          `Request body must be the file's bytes: send "Content-Type: ${OCTET_STREAM}" (got "${mime || 'none'}").`,
        ),
      );
    }
    const encoding = (req.headers['content-encoding'] ?? 'identity').toLowerCase();
    if (encoding !== 'identity') {
      return fail(
        new UnsupportedMediaTypeException(`Content-Encoding ${encoding} is not supported.`),
      );
    }
    if (req.readableEnded || !hasBody) {
      req.body = Buffer.alloc(0);
      return next();
    }

    readBody(
      req,
      limit,
      tooLarge,
      (bytes) => {
        req.body = bytes;
      },
      next,
      fail,
    );
  }
}

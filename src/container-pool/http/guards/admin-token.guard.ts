import { createHash, timingSafeEqual } from 'node:crypto';
import {
  CanActivate,
  ExecutionContext,
  ForbiddenException,
  Inject,
  Injectable,
  Logger,
  UnauthorizedException,
} from '@nestjs/common';
import { CONTAINER_POOL_RESOLVED_OPTIONS } from '../../container-pool.constants';
import type { ResolvedContainerPoolOptions } from '../../interfaces/container-pool-options.interface';

/** Who made an admin request, as the guard left it on the request. Never the token itself. */
export interface AdminIdentity {
  /** First 8 hex digits of the token's SHA-256: tells rotated tokens apart in logs. */
  tokenFingerprint: string;
}

/** Property of the request under which the guard leaves the AdminIdentity. */
export const ADMIN_IDENTITY = 'containerPoolAdmin';

const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest();

/** `ab12cd34`: safe to log, enough to tell tokens apart. */
export function tokenFingerprint(token: string): string {
  return sha256(token).toString('hex').slice(0, 8);
}

interface HttpRequest {
  headers: Record<string, string | string[] | undefined>;
  method?: string;
  originalUrl?: string;
  url?: string;
  ip?: string;
  socket?: { remoteAddress?: string };
  [ADMIN_IDENTITY]?: AdminIdentity;
}

interface HttpResponse {
  setHeader(name: string, value: string): unknown;
}

export type TokenCheck =
  | { ok: true; fingerprint: string }
  | { ok: false; reason: 'disabled' | 'missing' | 'malformed' | 'invalid' };

/**
 * Checks an Authorization header against the configured tokens in constant time: both sides are hashed with
 * SHA-256 first, so neither a token's content nor its length leaks through timing, and every configured
 * token is compared (no early exit) so the position of a match does not leak either.
 */
export function checkBearer(
  header: string | string[] | undefined,
  tokens: readonly string[],
): TokenCheck {
  if (!tokens.length) return { ok: false, reason: 'disabled' };
  if (header === undefined || header === '') return { ok: false, reason: 'missing' };
  const m = typeof header === 'string' ? /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header) : null;
  if (!m) return { ok: false, reason: 'malformed' };
  const presented = sha256(m[1]);
  let matched = -1;
  tokens.forEach((token, i) => {
    if (timingSafeEqual(sha256(token), presented) && matched < 0) matched = i;
  });
  if (matched < 0) return { ok: false, reason: 'invalid' };
  return { ok: true, fingerprint: tokenFingerprint(tokens[matched]) };
}

const REALM = 'Bearer realm="container-pool"';

/**
 * Requires `Authorization: Bearer <token>` with one of `adminToken` (`POOL_ADMIN_TOKEN`, comma separated for
 * rotation). No token configured: 403 on every route it guards, so the admin API is never open by default.
 */
@Injectable()
export class AdminTokenGuard implements CanActivate {
  protected readonly logger = new Logger('ContainerPoolAuth');

  constructor(
    @Inject(CONTAINER_POOL_RESOLVED_OPTIONS)
    protected readonly options: ResolvedContainerPoolOptions,
  ) {}

  canActivate(context: ExecutionContext): boolean {
    const http = context.switchToHttp();
    const req = http.getRequest<HttpRequest>();
    const res = http.getResponse<HttpResponse>();
    const check = checkBearer(req.headers.authorization, this.options.adminToken);
    if (check.ok) {
      req[ADMIN_IDENTITY] = { tokenFingerprint: check.fingerprint };
      return true;
    }
    if (check.reason === 'disabled') throw new ForbiddenException(this.disabledMessage());
    const where = `${req.method} ${req.originalUrl ?? req.url} from ${req.ip ?? req.socket?.remoteAddress ?? '?'}`;
    this.logger.warn(`rejected ${where}: ${check.reason} bearer token`);
    if (check.reason === 'invalid') {
      res.setHeader('WWW-Authenticate', `${REALM}, error="invalid_token"`);
      throw new UnauthorizedException('Invalid bearer token.');
    }
    res.setHeader('WWW-Authenticate', REALM);
    throw new UnauthorizedException(
      check.reason === 'missing'
        ? 'Missing bearer token: send the header "Authorization: Bearer <token>" with a token of POOL_ADMIN_TOKEN.'
        : 'Malformed Authorization header: expected "Bearer <token>".',
    );
  }

  protected disabledMessage(): string {
    return (
      'The pool admin API is disabled because no admin token is configured. Set POOL_ADMIN_TOKEN (or the ' +
      'adminToken option; comma separated to allow several during a rotation) to enable it.'
    );
  }
}

/** Guards the metrics route: open when `metricsPublic` (`POOL_METRICS_PUBLIC=true`), else as the admin API. */
@Injectable()
export class MetricsAccessGuard extends AdminTokenGuard {
  override canActivate(context: ExecutionContext): boolean {
    if (this.options.metricsPublic) return true;
    return super.canActivate(context);
  }

  protected override disabledMessage(): string {
    return (
      'Metrics need a bearer token and none is configured: set POOL_ADMIN_TOKEN (or the adminToken option), ' +
      'or make them public with POOL_METRICS_PUBLIC=true (option metricsPublic).'
    );
  }
}

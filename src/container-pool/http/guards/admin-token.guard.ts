import { createHash, timingSafeEqual } from 'node:crypto';
import {
  CanActivate,
  ExecutionContext,
  Inject,
  Injectable,
  Logger,
  Optional,
  SetMetadata,
} from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { CONTAINER_POOL_RESOLVED_OPTIONS } from '../../container-pool.constants';
import type { ResolvedContainerPoolOptions } from '../../interfaces/container-pool-options.interface';
import { AUDIT_RECORD, AuditRecord } from '../audit-record';
import { httpError } from '../http-errors';

/** Who made an admin request, as the guard left it on the request. Never the token itself. */
export interface AdminIdentity {
  /** First 8 hex digits of the token's SHA-256: tells rotated tokens apart in logs (and owners apart). */
  tokenFingerprint: string;
  /** The scope of the token. */
  scope: TokenScope;
}

/**
 * What a token may call: `admin` everything; `exec` the execution routes; `read` the GET routes (stats,
 * containers) and the metrics.
 */
export type TokenScope = 'admin' | 'exec' | 'read';

const SCOPE_OPTION: Record<TokenScope, string> = {
  admin: 'adminToken (POOL_ADMIN_TOKEN)',
  exec: 'execToken (POOL_EXEC_TOKEN)',
  read: 'readToken (POOL_READ_TOKEN)',
};

const REQUIRED_SCOPE = Symbol('container-pool:scope');

/** The scope a route needs (the guard's default is `admin`). */
export const RequireScope = (scope: TokenScope) => SetMetadata(REQUIRED_SCOPE, scope);

/** Whether a token of scope `has` may call a route that needs `needs`. */
export function scopeAllows(has: TokenScope, needs: TokenScope): boolean {
  return has === 'admin' || has === needs;
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
  [AUDIT_RECORD]?: AuditRecord;
}

interface HttpResponse {
  setHeader(name: string, value: string): unknown;
}

export type TokenCheck =
  | { ok: true; fingerprint: string }
  | { ok: false; reason: 'disabled' | 'missing' | 'malformed' | 'invalid' };

/**
 * Finds the configured token an Authorization header presents, in constant time: both sides are hashed with
 * SHA-256 first, so neither a token's content nor its length leaks through timing, and every configured token is
 * compared (no early exit) so the position of a match does not leak either.
 */
function matchBearer(
  header: string | string[] | undefined,
  tokens: readonly string[],
):
  | { ok: true; index: number }
  | { ok: false; reason: 'disabled' | 'missing' | 'malformed' | 'invalid' } {
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
  return { ok: true, index: matched };
}

/** Checks an Authorization header against the configured tokens in constant time (see matchBearer). */
export function checkBearer(
  header: string | string[] | undefined,
  tokens: readonly string[],
): TokenCheck {
  const m = matchBearer(header, tokens);
  return m.ok ? { ok: true, fingerprint: tokenFingerprint(tokens[m.index]) } : m;
}

export type ScopedCheck =
  | { ok: true; fingerprint: string; scope: TokenScope }
  | { ok: false; reason: 'disabled' | 'missing' | 'malformed' | 'invalid' };

/** checkBearer over the tokens of every scope at once (constant time over all of them), with the scope found. */
export function checkScopedBearer(
  header: string | string[] | undefined,
  options: Pick<ResolvedContainerPoolOptions, 'adminToken' | 'execToken' | 'readToken'>,
): ScopedCheck {
  const scoped: [TokenScope, string][] = [
    ...options.adminToken.map((t): [TokenScope, string] => ['admin', t]),
    ...(options.execToken ?? []).map((t): [TokenScope, string] => ['exec', t]),
    ...(options.readToken ?? []).map((t): [TokenScope, string] => ['read', t]),
  ];
  const m = matchBearer(
    header,
    scoped.map(([, t]) => t),
  );
  if (!m.ok) return m;
  const [scope, token] = scoped[m.index];
  return { ok: true, fingerprint: tokenFingerprint(token), scope };
}

const REALM = 'Bearer realm="container-pool"';

/**
 * Requires `Authorization: Bearer <token>` with a token whose scope allows the route (`@RequireScope`, default
 * admin). Tokens come from `adminToken`, `execToken` and `readToken` (`POOL_ADMIN_TOKEN`, `POOL_EXEC_TOKEN`,
 * `POOL_READ_TOKEN`, comma separated for rotation). No token of any scope configured: 403 on every route it
 * guards, so the API is never open by default. A token of another scope: 403 with code FORBIDDEN_SCOPE.
 */
@Injectable()
export class AdminTokenGuard implements CanActivate {
  protected readonly logger = new Logger('ContainerPoolAuth');

  constructor(
    @Inject(CONTAINER_POOL_RESOLVED_OPTIONS)
    protected readonly options: ResolvedContainerPoolOptions,
    @Optional() private readonly reflector?: Reflector,
  ) {}

  canActivate(context: ExecutionContext): boolean {
    const http = context.switchToHttp();
    const req = http.getRequest<HttpRequest>();
    const res = http.getResponse<HttpResponse>();
    const needs =
      this.reflector?.getAllAndOverride<TokenScope | undefined>(REQUIRED_SCOPE, [
        context.getHandler(),
        context.getClass(),
      ]) ?? this.defaultScope();
    const check = checkScopedBearer(req.headers.authorization, this.options);
    const where = `${req.method} ${req.originalUrl ?? req.url} from ${req.ip ?? req.socket?.remoteAddress ?? '?'}`;
    // An audited route's refusal is its audit line (written by the error filter), not a second one here.
    const warn = (line: string) => {
      if (!req[AUDIT_RECORD]) this.logger.warn(line);
    };
    if (check.ok) {
      // Who it is, also when refused: the refusal's audit line names the token.
      req[ADMIN_IDENTITY] = { tokenFingerprint: check.fingerprint, scope: check.scope };
      if (!scopeAllows(check.scope, needs)) {
        warn(`rejected ${where}: a ${check.scope} token on a ${needs} route`);
        throw httpError(
          403,
          'FORBIDDEN_SCOPE',
          `This route needs a token of the ${needs} scope (${SCOPE_OPTION[needs]}` +
            `${needs === 'admin' ? '' : ' or adminToken'}); the token given is of the ${check.scope} scope.`,
        );
      }
      return true;
    }
    if (check.reason === 'disabled') throw httpError(403, 'API_DISABLED', this.disabledMessage());
    warn(`rejected ${where}: ${check.reason} bearer token`);
    if (check.reason === 'invalid') {
      res.setHeader('WWW-Authenticate', `${REALM}, error="invalid_token"`);
      throw httpError(401, 'UNAUTHORIZED', 'Invalid bearer token.');
    }
    res.setHeader('WWW-Authenticate', REALM);
    throw httpError(
      401,
      'UNAUTHORIZED',
      check.reason === 'missing'
        ? 'Missing bearer token: send the header "Authorization: Bearer <token>" with a token of ' +
            "POOL_ADMIN_TOKEN (or of the route's scope: POOL_EXEC_TOKEN, POOL_READ_TOKEN)."
        : 'Malformed Authorization header: expected "Bearer <token>".',
    );
  }

  /** The scope of a route without @RequireScope. */
  protected defaultScope(): TokenScope {
    return 'admin';
  }

  protected disabledMessage(): string {
    return (
      "The pool's HTTP API is disabled because no token is configured. Set POOL_ADMIN_TOKEN (or the " +
      'adminToken option; comma separated to allow several during a rotation), or POOL_EXEC_TOKEN / ' +
      'POOL_READ_TOKEN for narrower scopes, to enable it.'
    );
  }
}

/** Guards the metrics route: open when `metricsPublic` (`POOL_METRICS_PUBLIC=true`), else the read scope. */
@Injectable()
export class MetricsAccessGuard extends AdminTokenGuard {
  override canActivate(context: ExecutionContext): boolean {
    if (this.options.metricsPublic) return true;
    return super.canActivate(context);
  }

  protected override defaultScope(): TokenScope {
    return 'read';
  }

  protected override disabledMessage(): string {
    return (
      'Metrics need a bearer token and none is configured: set POOL_READ_TOKEN or POOL_ADMIN_TOKEN (or the ' +
      'readToken/adminToken option), or make them public with POOL_METRICS_PUBLIC=true (option metricsPublic).'
    );
  }
}

import type { IncomingMessage } from 'node:http';
import {
  CallHandler,
  CanActivate,
  ExecutionContext,
  Inject,
  Injectable,
  Logger,
  NestInterceptor,
  SetMetadata,
} from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { Observable, tap } from 'rxjs';
import { CONTAINER_POOL_RESOLVED_OPTIONS } from '../container-pool.constants';
import type { ResolvedContainerPoolOptions } from '../interfaces/container-pool-options.interface';
import { AUDIT_RECORD, AuditRecord, AuditSpec } from './audit-record';
import { ADMIN_IDENTITY, AdminIdentity } from './guards/admin-token.guard';

export type { AuditSpec } from './audit-record';

/** A request as the audit sees it: the guard's identity, the parsed body and the route parameters. */
export type AuditedRequest = IncomingMessage & {
  [ADMIN_IDENTITY]?: AdminIdentity;
  [AUDIT_RECORD]?: AuditRecord;
  body?: unknown;
  params?: Record<string, string>;
  ip?: string;
};

const AUDIT = Symbol('container-pool:audit');

/** Marks a route as audited: one log line per call says who did what with which result. */
export const Audit = (spec: AuditSpec) => SetMetadata(AUDIT, spec);

const loggerOf = (options: ResolvedContainerPoolOptions) =>
  new Logger(`ContainerPoolAdmin:${options.name}`);

/**
 * `token=ab12cd34 profile=gpu action=resize size=2` (the profile of a `<prefix>/profiles/:profile/...` route, or
 * for a route with its own line, an execution, the body's: `token=ab12cd34 profile=gpu cmd="python3"`).
 */
function head(spec: AuditSpec, req: AuditedRequest): string {
  const token = `token=${req[ADMIN_IDENTITY]?.tokenFingerprint ?? '?'}`;
  const bodyProfile = (req.body as { profile?: unknown } | undefined)?.profile;
  const raw =
    req.params?.profile ??
    (spec.ownLine && typeof bodyProfile === 'string' ? bodyProfile : undefined);
  // The caller's text: quoted unless it is a plain name, so that it cannot forge a log line.
  const profile =
    raw === undefined || /^[A-Za-z0-9_.-]{1,63}$/.test(raw) ? raw : JSON.stringify(raw);
  const who = `${token}${profile === undefined ? '' : ` profile=${profile}`}`;
  const what = spec.what?.(req) ?? '';
  return spec.ownLine
    ? `${who}${what ? ` ${what}` : ''}`
    : `${who} action=${spec.action}${what ? ` ${what}` : ''}`;
}

/**
 * The first guard of an audited route: notes on the request that it is audited, and since when, so that a
 * request refused before the handler (a guard's 401/403, a body's 400/413/415, the validation pipe's 400) still
 * gets its one line, from the error filter (see auditError).
 */
@Injectable()
export class AuditStartGuard implements CanActivate {
  private readonly logger: Logger;

  constructor(
    private readonly reflector: Reflector,
    @Inject(CONTAINER_POOL_RESOLVED_OPTIONS) options: ResolvedContainerPoolOptions,
  ) {
    this.logger = loggerOf(options);
  }

  canActivate(context: ExecutionContext): boolean {
    const spec = this.reflector.get<AuditSpec | undefined>(AUDIT, context.getHandler());
    if (spec) {
      const req = context.switchToHttp().getRequest<AuditedRequest>();
      req[AUDIT_RECORD] = { spec, started: performance.now(), logged: false, logger: this.logger };
    }
    return true;
  }
}

/**
 * One log line per audited call: the token's fingerprint (never the token), the action, what was asked, the
 * result (ok with the route's summary, or the error's code and message) and the time taken. This writes the
 * line of a call that succeeded; the error filter that of a call that failed (auditError), wherever it failed.
 * A route with its own line (`ownLine`) is left to write it.
 */
@Injectable()
export class AuditInterceptor implements NestInterceptor {
  private readonly logger: Logger;

  constructor(
    private readonly reflector: Reflector,
    @Inject(CONTAINER_POOL_RESOLVED_OPTIONS) options: ResolvedContainerPoolOptions,
  ) {
    this.logger = loggerOf(options);
  }

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const spec = this.reflector.get<AuditSpec | undefined>(AUDIT, context.getHandler());
    if (!spec) return next.handle();
    const req = context.switchToHttp().getRequest<AuditedRequest>();
    const record = (req[AUDIT_RECORD] ??= {
      spec,
      started: performance.now(),
      logged: false,
      logger: this.logger,
    });
    if (spec.ownLine) return next.handle();
    // An error's line is the error filter's (auditError): it sees every refusal, also those before this.
    return next.handle().pipe(
      tap((result) => {
        record.logged = true;
        const ms = Math.round(performance.now() - record.started);
        this.logger.log(`${head(spec, req)} result=ok${spec.summary?.(result) ?? ''} ms=${ms}`);
      }),
    );
  }
}

/**
 * The one line of an audited request that ends in an error with no line written yet (refused by a guard, the
 * body parser or a pipe, or failed in the handler): the audit's `result=error` line, or an execution's
 * `exec refused` line (unless the executor logged it), with the answer's code and message; refused for its
 * token, where it came from.
 */
export function auditError(
  req: AuditedRequest,
  answer: { status: number; code: string; message: string },
): void {
  const record = req[AUDIT_RECORD];
  if (!record || record.logged) return;
  record.logged = true;
  const error = `${answer.code}: ${answer.message}`;
  const from =
    answer.status === 401 || answer.status === 403
      ? ` from=${req.ip ?? req.socket?.remoteAddress ?? '?'}`
      : '';
  const ms = Math.round(performance.now() - record.started);
  record.logger.warn(
    record.spec.ownLine
      ? `exec refused ${head(record.spec, req)}${from}: ${error}`
      : `${head(record.spec, req)} result=error ${error}${from} ms=${ms}`,
  );
}

import type { IncomingMessage } from 'node:http';
import {
  CallHandler,
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
import { ADMIN_IDENTITY, AdminIdentity } from './guards/admin-token.guard';

/** A request as the audit sees it: the guard's identity, the parsed body and the route parameters. */
export type AuditedRequest = IncomingMessage & {
  [ADMIN_IDENTITY]?: AdminIdentity;
  body?: unknown;
  params?: Record<string, string>;
};

/** How a state-changing route is audited: its action, what it was asked, and what to say of its result. */
export interface AuditSpec {
  action: string;
  /** What the call asks for, e.g. `size=2` (never secrets, never code). */
  what?: (req: AuditedRequest) => string;
  /** What to say of its result, e.g. ` idle=2 leased=0` (with a leading space). */
  summary?: (result: any) => string;
}

const AUDIT = Symbol('container-pool:audit');

/** `CODE: message` of an error, for a log line. */
export function describeError(err: unknown): string {
  return err instanceof Error
    ? `${(err as { code?: string }).code ?? err.name}: ${err.message}`
    : String(err);
}

/** Marks a route as state-changing: AuditInterceptor logs who did what with which result. */
export const Audit = (spec: AuditSpec) => SetMetadata(AUDIT, spec);

/**
 * One log line per audited call: the token's fingerprint (never the token), the action, what was asked, the
 * result (ok with the route's summary, or the error's code and message) and the time taken.
 */
@Injectable()
export class AuditInterceptor implements NestInterceptor {
  private readonly logger: Logger;

  constructor(
    private readonly reflector: Reflector,
    @Inject(CONTAINER_POOL_RESOLVED_OPTIONS) options: ResolvedContainerPoolOptions,
  ) {
    this.logger = new Logger(`ContainerPoolAdmin:${options.name}`);
  }

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const spec = this.reflector.get<AuditSpec | undefined>(AUDIT, context.getHandler());
    if (!spec) return next.handle();
    const req = context.switchToHttp().getRequest<AuditedRequest>();
    const token = req[ADMIN_IDENTITY]?.tokenFingerprint ?? '?';
    const what = spec.what?.(req) ?? '';
    // A path parameter is the caller's text: quoted unless it is a plain name, so it cannot forge a log line.
    const raw = req.params?.profile;
    const profile =
      raw === undefined || /^[A-Za-z0-9_.-]{1,63}$/.test(raw) ? raw : JSON.stringify(raw);
    const head =
      `token=${token}${profile === undefined ? '' : ` profile=${profile}`} ` +
      `action=${spec.action}${what ? ` ${what}` : ''}`;
    const started = performance.now();
    const ms = () => Math.round(performance.now() - started);
    return next.handle().pipe(
      tap({
        next: (result) =>
          this.logger.log(`${head} result=ok${spec.summary?.(result) ?? ''} ms=${ms()}`),
        error: (err: unknown) =>
          this.logger.warn(`${head} result=error ${describeError(err)} ms=${ms()}`),
      }),
    );
  }
}

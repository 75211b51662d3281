import { STATUS_CODES } from 'node:http';
import {
  ArgumentsHost,
  Catch,
  ExceptionFilter,
  HttpException,
  HttpStatus,
  Injectable,
  Logger,
} from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import {
  AcquireTimeoutError,
  ContainerCreateError,
  ContainerExpiredError,
  ContainerLostError,
  RunnerProtocolError,
  ContainerPoolError,
  EngineUnavailableError,
  ExecutionAbortedError,
  ImageUnavailableError,
  InvalidPoolConfigError,
  InvalidRequestError,
  PoolDrainedError,
  PoolShuttingDownError,
  SandboxUnsupportedError,
  TooManyWaitersError,
  UnknownProfileError,
} from '../../errors/container-pool.errors';
import { RolloutFailedError, RolloutSupersededError } from '../../errors/rollout.errors';
import {
  SessionBusyError,
  SessionClosedError,
  SessionLostError,
  SessionNotFoundError,
  TooManySessionsError,
} from '../../errors/session.errors';
import { AuditedRequest, auditError } from '../audit.interceptor';

/** Status used when the client went away before the answer (nginx's "client closed request"). */
export const CLIENT_CLOSED_REQUEST = 499;

/** Retry-After of TOO_MANY_SESSIONS: sessions close by their own idle timeout, or their owner's DELETE. */
export const TOO_MANY_SESSIONS_RETRY_AFTER_SECONDS = 5;

/** Retry-After of SESSION_BUSY: the queue drains as the running call ends. */
export const SESSION_BUSY_RETRY_AFTER_SECONDS = 1;

/** The JSON body of every error the pool's routes answer: one shape for all of them. */
export interface ContainerPoolErrorBody {
  statusCode: number;
  /** The status's reason phrase, e.g. `Bad Request`. */
  error: string;
  /** Stable code for programs, e.g. INVALID_REQUEST, ACQUIRE_TIMEOUT, FORBIDDEN_SCOPE. */
  code: string;
  /** What went wrong and what to do (for an invalid request: its first problem). */
  message: string;
  /** The field an invalid request got wrong (the first one). */
  field?: string;
  /** Whether trying again later may succeed. */
  retryable: boolean;
  /** More about the error: for an invalid request, every problem as `{ field, message }`. */
  details?: unknown;
}

const CODE_OF_STATUS: Record<number, string> = {
  400: 'INVALID_REQUEST',
  401: 'UNAUTHORIZED',
  403: 'FORBIDDEN',
  404: 'NOT_FOUND',
  405: 'METHOD_NOT_ALLOWED',
  406: 'NOT_ACCEPTABLE',
  409: 'CONFLICT',
  410: 'GONE',
  413: 'PAYLOAD_TOO_LARGE',
  415: 'UNSUPPORTED_MEDIA_TYPE',
  429: 'TOO_MANY_REQUESTS',
  499: 'CLIENT_CLOSED_REQUEST',
  500: 'INTERNAL',
  502: 'BAD_GATEWAY',
  503: 'SERVICE_UNAVAILABLE',
};

/** The code of an HTTP status that carries none of its own. */
export function codeOfStatus(status: number): string {
  return CODE_OF_STATUS[status] ?? (status >= 500 ? 'INTERNAL' : 'HTTP_ERROR');
}

export interface HttpMapping {
  status: number;
  /** Seconds for the Retry-After header, when a retry later is expected to work. */
  retryAfterSeconds?: number;
}

/**
 * The one place where pool errors become HTTP statuses.
 * - invalid request, unknown profile in a request: 400 (names the field; a profile route answers 404 itself)
 * - no container now (acquire timeout, too many waiters), drained: 503 + Retry-After
 * - engine, image or sandbox unavailable, creates failing: 503 (+ Retry-After when it recovers by itself)
 * - shutting down: 503 without Retry-After (send the work to another instance)
 * - container lost mid-execution: 502 — the sandbox (the upstream of this request) died under it; the
 *   execution may be retried at once, unlike a 503, which asks the client to back off
 * - aborted by the client: 499 (nobody reads it)
 * - a rollout superseded by a newer update, or failed (the profile reverted): 409
 * - sessions: not found (never opened, or another caller's: existence is not leaked) 404; closed or expired
 *   410 (its state is gone: open a new one); its call queue full 429 + Retry-After 1; maxSessions (in all or
 *   per owner) open 429 + Retry-After 5; its container lost 502, as a container lost mid-execution
 * - any other pool error: 500 with its message (pool messages carry no internals)
 */
export function httpMappingOf(err: ContainerPoolError): HttpMapping {
  if (err instanceof InvalidRequestError || err instanceof UnknownProfileError) {
    return { status: HttpStatus.BAD_REQUEST };
  }
  if (err instanceof AcquireTimeoutError || err instanceof TooManyWaitersError) {
    return { status: HttpStatus.SERVICE_UNAVAILABLE, retryAfterSeconds: 1 };
  }
  if (err instanceof PoolDrainedError) {
    return { status: HttpStatus.SERVICE_UNAVAILABLE, retryAfterSeconds: 30 };
  }
  if (err instanceof EngineUnavailableError || err instanceof ContainerCreateError) {
    return { status: HttpStatus.SERVICE_UNAVAILABLE, retryAfterSeconds: 5 };
  }
  if (err instanceof ImageUnavailableError) {
    // Missing with pullPolicy never: only an operator can fix it, so no Retry-After.
    return err.retryable
      ? { status: HttpStatus.SERVICE_UNAVAILABLE, retryAfterSeconds: 30 }
      : { status: HttpStatus.SERVICE_UNAVAILABLE };
  }
  if (err instanceof SandboxUnsupportedError || err instanceof PoolShuttingDownError) {
    return { status: HttpStatus.SERVICE_UNAVAILABLE };
  }
  if (err instanceof ContainerExpiredError) {
    return { status: HttpStatus.SERVICE_UNAVAILABLE, retryAfterSeconds: 1 };
  }
  if (
    err instanceof ContainerLostError ||
    err instanceof RunnerProtocolError ||
    err instanceof SessionLostError
  ) {
    return { status: HttpStatus.BAD_GATEWAY };
  }
  if (err instanceof SessionNotFoundError) return { status: HttpStatus.NOT_FOUND };
  if (err instanceof SessionClosedError) return { status: HttpStatus.GONE };
  if (err instanceof SessionBusyError) {
    return {
      status: HttpStatus.TOO_MANY_REQUESTS,
      retryAfterSeconds: SESSION_BUSY_RETRY_AFTER_SECONDS,
    };
  }
  if (err instanceof TooManySessionsError) {
    // Sessions off (maxSessions 0): only an operator changes that; no retry.
    if (!err.retryable) return { status: HttpStatus.SERVICE_UNAVAILABLE };
    return {
      status: HttpStatus.TOO_MANY_REQUESTS,
      retryAfterSeconds: TOO_MANY_SESSIONS_RETRY_AFTER_SECONDS,
    };
  }
  if (err instanceof RolloutSupersededError || err instanceof RolloutFailedError) {
    return { status: HttpStatus.CONFLICT };
  }
  if (err instanceof ExecutionAbortedError) return { status: CLIENT_CLOSED_REQUEST };
  return { status: HttpStatus.INTERNAL_SERVER_ERROR };
}

function reason(status: number): string {
  if (status === CLIENT_CLOSED_REQUEST) return 'Client Closed Request';
  return STATUS_CODES[status] ?? 'Error';
}

/** The answer to any error thrown by a pool route. Never exposes a stack or an unknown error's message. */
export function errorResponseOf(err: unknown): {
  status: number;
  body: ContainerPoolErrorBody;
  headers: Record<string, string>;
} {
  if (err instanceof HttpException) {
    const status = err.getStatus();
    const res = err.getResponse() as
      string | { message?: unknown; code?: string; field?: string; details?: unknown };
    const given = typeof res === 'object' && res !== null ? res : { message: res };
    const messages = ([] as unknown[]).concat(given.message ?? err.message).map(String);
    const body: ContainerPoolErrorBody = {
      statusCode: status,
      error: reason(status),
      code: given.code ?? codeOfStatus(status),
      message: messages[0] ?? reason(status),
      retryable: status === 429 || status === 503,
    };
    if (given.field !== undefined) body.field = given.field;
    if (given.details !== undefined) body.details = given.details;
    else if (messages.length > 1) body.details = messages.map((message) => ({ message }));
    return { status, body, headers: {} };
  }
  if (err instanceof ContainerPoolError) {
    const { status, retryAfterSeconds } = httpMappingOf(err);
    const body: ContainerPoolErrorBody = {
      statusCode: status,
      error: reason(status),
      code: err.code,
      message: err.message,
      retryable: err.retryable,
    };
    if (err instanceof InvalidRequestError || err instanceof UnknownProfileError) {
      body.field = err.field;
      body.details = [{ field: err.field, message: err.message }];
    }
    if (err instanceof InvalidPoolConfigError) body.details = err.problems;
    const headers: Record<string, string> = {};
    if (retryAfterSeconds !== undefined) headers['Retry-After'] = String(retryAfterSeconds);
    return { status, body, headers };
  }
  const status = HttpStatus.INTERNAL_SERVER_ERROR;
  return {
    status,
    body: {
      statusCode: status,
      error: reason(status),
      code: 'INTERNAL',
      message: 'Internal error of the container pool; the server log has the details.',
      retryable: false,
    },
    headers: {},
  };
}

/**
 * Bound to the pool's controllers (not global): maps ContainerPoolError subclasses to HTTP (see
 * httpMappingOf), keeps HttpExceptions (validation, auth) as they are, and answers anything else with a
 * generic 500 while logging it with its stack. The one place every refusal of an audited route passes, so it
 * writes the audit line of those refused before the interceptor or the executor wrote one (auditError).
 */
@Catch()
@Injectable()
export class ContainerPoolErrorFilter implements ExceptionFilter {
  private readonly logger = new Logger('ContainerPoolHttp');

  constructor(private readonly adapterHost: HttpAdapterHost) {}

  catch(err: unknown, host: ArgumentsHost): void {
    const ctx = host.switchToHttp();
    const res = ctx.getResponse<{
      headersSent?: boolean;
      writableEnded?: boolean;
      destroyed?: boolean;
    }>();
    const req = ctx.getRequest<AuditedRequest & { originalUrl?: string }>();
    const { status, body, headers } = errorResponseOf(err);
    // An audited request's error line (refused by a guard, the body or a pipe, or failed in the handler).
    auditError(req, { status, code: body.code, message: body.message });
    if (!(err instanceof HttpException) && !(err instanceof ContainerPoolError)) {
      this.logger.error(
        `${req.method} ${req.originalUrl ?? req.url} failed: ${err instanceof Error ? err.message : String(err)}`,
        err instanceof Error ? err.stack : undefined,
      );
    } else if (status >= 500 && status !== 503 && !(err instanceof ContainerPoolError)) {
      // A pool error is logged where it happens (an execution's one line); an HTTP one only here.
      this.logger.warn(
        `${req.method} ${req.originalUrl ?? req.url}: ${status} ${body.code ?? ''} ${String(body.message)}`,
      );
    }
    if (res.headersSent || res.writableEnded || res.destroyed) return;
    const adapter = this.adapterHost.httpAdapter;
    for (const [k, v] of Object.entries(headers)) adapter.setHeader(res, k, v);
    adapter.reply(res, body, status);
  }
}

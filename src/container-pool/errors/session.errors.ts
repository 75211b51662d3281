import { ContainerPoolError } from './container-pool.errors';

/** No session of this id is visible to the caller (never opened, or another owner's). HTTP 404. */
export class SessionNotFoundError extends ContainerPoolError {
  readonly code = 'SESSION_NOT_FOUND';
  constructor(readonly sessionId: string) {
    super(
      `No session ${JSON.stringify(sessionId)}: it was never opened, or it belongs to another caller. Open one ` +
        'with openSession() (POST .../sessions).',
    );
  }
}

/** The session was closed (by close(), its idle timeout, its max lifetime, a loss or the shutdown). HTTP 410. */
export class SessionClosedError extends ContainerPoolError {
  readonly code = 'SESSION_CLOSED';
  constructor(
    readonly sessionId: string,
    readonly reason: string,
  ) {
    super(
      `Session ${sessionId} is closed (${reason}); its state is gone. Open a new session and run the setup ` +
        'again.',
    );
  }
}

/** The session already has maxQueuedCalls calls waiting behind the running one. HTTP 429. */
export class SessionBusyError extends ContainerPoolError {
  readonly code = 'SESSION_BUSY';
  override readonly retryable = true;
  constructor(
    readonly sessionId: string,
    readonly maxQueuedCalls: number,
  ) {
    super(
      `Session ${sessionId} already has ${maxQueuedCalls} calls queued behind the running one; wait for ` +
        'results before sending more, or interrupt() the running call.',
    );
  }
}

/** maxSessions (in all, or per owner) are open. HTTP 429 with Retry-After. */
export class TooManySessionsError extends ContainerPoolError {
  readonly code = 'TOO_MANY_SESSIONS';
  /** Not when sessions are off (maxSessions 0): waiting does not help. */
  override readonly retryable: boolean;
  constructor(
    readonly scope: 'module' | 'owner',
    readonly limit: number,
  ) {
    super(
      scope === 'owner'
        ? `This caller already has ${limit} open sessions (maxSessionsPerOwner): close one (DELETE ` +
            '.../sessions/:id) before opening another.'
        : limit === 0
          ? 'Sessions are off in this module (maxSessions 0): set maxSessions (POOL_MAX_SESSIONS) to open them.'
          : `${limit} sessions are open (maxSessions): try again when one closes, or raise maxSessions.`,
    );
    this.retryable = limit > 0;
  }
}

/**
 * The session's container was lost (it died, the ladder's last step recycled it, the runner broke the protocol):
 * the session is closed and its state gone. Retryable in a new session.
 */
export class SessionLostError extends ContainerPoolError {
  readonly code = 'SESSION_LOST';
  override readonly retryable = true;
  constructor(
    readonly sessionId: string,
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(
      `Session ${sessionId} was lost: ${reason}. It is closed and its state is gone; open a new session.`,
      options,
    );
  }
}

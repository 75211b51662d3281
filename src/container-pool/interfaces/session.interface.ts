import type { ExecResult } from './exec-result.interface';
import type { ContainerFiles } from './files.interface';
import type { CodeOutput } from './outputs.interface';
import type { CommandRunRequest, ExecOptions } from './run-request.interface';

/** Options of openSession() (the service's, or one profile's ContainerPool's). */
export interface OpenSessionOptions {
  /** The profile whose container the session holds (service only; default `defaultProfile`). */
  profile?: string;
  /** The session is closed after this long without a call; default the profile's `sessionIdleTimeoutMs`. */
  idleTimeoutMs?: number;
  /**
   * The session is closed this long after it opened, whatever it is doing; default and at most the profile's
   * `sessionMaxLifetimeMs` (a larger one is an InvalidRequestError naming `maxLifetimeMs`).
   */
  maxLifetimeMs?: number;
  /**
   * Who the session belongs to (opaque; HTTP sets the fingerprint of the caller's token): counted against
   * `maxSessionsPerOwner`, shown in sessions(). Default `'local'`.
   */
  owner?: string;
}

/** Options of one runCode() call. */
export type RunCodeOptions = Pick<
  ExecOptions,
  'timeoutMs' | 'maxOutputBytes' | 'signal' | 'onOutput' | 'stdin'
> & {
  /**
   * Most rich outputs this call keeps (`outputs`); default and at most the profile's `maxOutputs` (a larger one
   * is an InvalidRequestError naming `maxOutputs`); 0: none. Their bytes in all are capped by `maxOutputBytes`.
   */
  maxOutputs?: number;
};

/** A session's `run()`: `cmd` only, in the interpreter's current cwd and environment. */
export type SessionRunRequest = Pick<
  CommandRunRequest,
  'cmd' | 'stdin' | 'timeoutMs' | 'maxOutputBytes' | 'signal' | 'onOutput'
> & {
  /** Extra variables for this command, over the interpreter's environment. */
  env?: Record<string, string>;
};

/** An exception the user's code raised (reported, never thrown). The user code's own word. */
export interface CodeError {
  /** The exception type's name, e.g. `ZeroDivisionError`, `KeyboardInterrupt`. */
  name: string;
  /** `str()` of the exception. */
  value: string;
  /** The traceback as Python prints it, with the user's frames only (cells are `<cell-N>`). */
  traceback: string;
}

/** What a session call reports beyond an ExecResult (decided by the host, never by the user's code). */
export interface SessionCallFlags {
  /** The call was interrupted (its timeout, or interrupt()) before it returned by itself. */
  interrupted: boolean;
  /**
   * The interpreter's state (names, imports, os.environ, cwd) did not survive this call: the interpreter was
   * restarted (timeout ladder step 2, restart()), or it died (OOM, os._exit, a crash), or it had died since the
   * previous call. The next call starts from a fresh interpreter.
   */
  stateLost: boolean;
}

/** The result of Session.runCode(). */
export interface CodeResult extends ExecResult, SessionCallFlags {
  /** The exception that ended the code, when one did. */
  error?: CodeError;
  /** The number of this call among the calls of the current interpreter (1 after each restart). */
  executionCount: number;
  /**
   * The call's rich outputs in order ([] when none): each `display(...)` object and each matplotlib figure
   * (`display`, a figure as `image/png`), and the value of a trailing expression (`result`), as a notebook shows
   * them. At most `maxOutputs` of at most `maxOutputBytes` bytes in all (text as UTF-8, images decoded, JSON
   * serialized): the outputs are kept in order up to the first that does not fit. The user code's own word.
   */
  outputs: CodeOutput[];
  /** Outputs were dropped: beyond maxOutputs or maxOutputBytes (by the interpreter, the runner or the host). */
  outputsTruncated: boolean;
}

/** The result of Session.run() (a command). */
export interface SessionExecResult extends ExecResult, SessionCallFlags {}

export type SessionState = 'open' | 'closed';

/** A session as sessions() and getSession() describe it. */
export interface SessionInfo {
  id: string;
  profile: string;
  owner: string;
  containerId: string;
  createdAt: Date;
  /** When it is closed at the latest (its max lifetime). */
  expiresAt: Date;
  /** The last call's end (or the opening). */
  lastUsedAt: Date;
  /** Since it opened, in ms. */
  ageMs: number;
  /** Since its last call ended, in ms (0 while a call runs). */
  idleMs: number;
  idleTimeoutMs: number;
  /** Calls so far (both kinds). */
  calls: number;
  /** A call is running now. */
  busy: boolean;
  /** Calls waiting behind the running one. */
  queued: number;
  state: SessionState;
  /** Why it closed (`closed`, `idle`, `lifetime`, `shutdown`, `lost: ...`); null while open. */
  closedReason: string | null;
}

/**
 * A code-interpreter session: one warm container of its profile (runner transport) for its whole life, a
 * persistent Python interpreter in it, calls run one at a time in FIFO order. Never reused after close.
 */
export interface Session {
  readonly id: string;
  readonly profile: string;
  readonly owner: string;
  readonly createdAt: Date;
  readonly expiresAt: Date;
  /** Runs Python in the session's interpreter; names, imports, os.environ and cwd persist between calls. */
  runCode(code: string, opts?: RunCodeOptions): Promise<CodeResult>;
  /** Runs a command (argv, no shell) in the interpreter's cwd and environment. */
  run(request: SessionRunRequest): Promise<SessionExecResult>;
  /** The session container's files (the work dir and /tmp), as the sandbox user. */
  readonly files: ContainerFiles;
  /** Interrupts the running call (KeyboardInterrupt, then the ladder); a no-op when nothing runs. */
  interrupt(): Promise<void>;
  /** Kills every process of the session but the runner and starts a fresh interpreter: the state is gone. */
  restart(): Promise<void>;
  /** Ends the session and removes its container; queued calls reject with SessionClosedError. */
  close(): Promise<void>;
  info(): SessionInfo;
}

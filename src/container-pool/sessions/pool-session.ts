import { v4 as uuidv4 } from 'uuid';
import type { DriverContainer } from '../engine/container-driver.interface';
import {
  ContainerLostError,
  ExecutionAbortedError,
  InvalidRequestError,
  PoolShuttingDownError,
  RunnerProtocolError,
} from '../errors/container-pool.errors';
import { SessionBusyError, SessionClosedError, SessionLostError } from '../errors/session.errors';
import {
  checkStdinSize,
  normalizeMaxOutputs,
  normalizeRunRequest,
} from '../execution/exec-request';
import { CappedSink, outputFields } from '../execution/output-sink';
import type { ResolvedContainerPoolOptions } from '../interfaces/container-pool-options.interface';
import type { ExecResult } from '../interfaces/exec-result.interface';
import type { ContainerFiles } from '../interfaces/files.interface';
import type { OnOutput } from '../interfaces/output-event.interface';
import type {
  CodeError,
  CodeResult,
  RunCodeOptions,
  Session,
  SessionExecResult,
  SessionInfo,
  SessionRunRequest,
} from '../interfaces/session.interface';
import type { PoolLog } from '../pool/container-source';
import type { ActiveExecution, PooledContainer } from '../pool/pooled-container';
import type { WarmPool } from '../pool/warm-pool';
import type {
  JobControl,
  RunnerConnection,
  RunnerJobOutcome,
} from '../transport/runner/runner-connection';
import { OutputCollector } from './output-collector';
import { countedOomKill } from '../transport/oom-verdict';
import type { JobHeader } from '../transport/runner/runner-protocol';
import { mergeEnv } from '../transport/runner/runner.transport';

/** The longest delay setTimeout honours: Node runs a longer one after 1 ms. */
const MAX_TIMER_MS = 2 ** 31 - 1;

interface LongTimer {
  clear(): void;
}

/**
 * An unref'd timer for any delay: idleTimeoutMs is the caller's (any positive integer), sessionMaxLifetimeMs has
 * no upper bound; above MAX_TIMER_MS it is re-armed for the rest.
 */
function setLongTimeout(fn: () => void, ms: number): LongTimer {
  let timer: NodeJS.Timeout | undefined;
  const arm = (remaining: number) => {
    const step = Math.min(remaining, MAX_TIMER_MS);
    timer = setTimeout(() => (remaining > step ? arm(remaining - step) : fn()), step);
    timer.unref?.();
  };
  arm(ms);
  return { clear: () => clearTimeout(timer) };
}

const round2 = (ms: number) => Math.round(ms * 100) / 100;
/** The largest `outputs.maxBytes` a cell header may carry (docs/runner-protocol.md, protocol 3). */
const MAX_HEADER_OUTPUT_BYTES = 2 ** 31;
/** How long a result waits for its streamed output to reach the caller's onOutput. */
const FLUSH_WAIT_MS = 5_000;

/** What each profile counts of its sessions (stats().sessions, the metrics). */
export interface SessionTotals {
  opened: number;
  closed: number;
  calls: number;
  /** Timeout ladder steps taken: 1 interrupt, 2 kill and restart, 3 recycle. */
  interrupts: number;
  kills: number;
  recycles: number;
}

export function emptySessionTotals(): SessionTotals {
  return { opened: 0, closed: 0, calls: 0, interrupts: 0, kills: 0, recycles: 0 };
}

export type SessionOptions = Pick<
  ResolvedContainerPoolOptions,
  | 'profile'
  | 'workdir'
  | 'execTimeoutMs'
  | 'maxExecTimeoutMs'
  | 'maxOutputBytes'
  | 'maxOutputs'
  | 'maxStdinBytes'
  | 'maxQueuedCalls'
  | 'interruptGraceMs'
  | 'killGraceMs'
>;

export interface PoolSessionDeps {
  id?: string;
  owner: string;
  entry: PooledContainer;
  channel: RunnerConnection;
  warm: Pick<WarmPool, 'destroy' | 'executionStarted' | 'executionEnded' | 'isShuttingDown'>;
  options: SessionOptions;
  files: ContainerFiles;
  /** The container's environment (PATH, HOME): the interpreter starts from it. */
  baseEnv: string[];
  idleTimeoutMs: number;
  maxLifetimeMs: number;
  totals: SessionTotals;
  log: PoolLog;
  /** Called once, when the session closes (for whatever reason). */
  onClosed(session: PoolSession, reason: string): void;
}

interface QueuedCall {
  run(queuedMs: number): Promise<unknown>;
  resolve(value: unknown): void;
  reject(err: Error): void;
  enqueuedAt: number;
}

/** Where a running call stands on the timeout ladder. */
interface Ladder {
  jobId: number;
  step: 0 | 1 | 2 | 3;
  timedOut: boolean;
  /** The call's processes were killed (step 2 or restart()): the interpreter's state is gone. */
  reset: boolean;
  ended: boolean;
  graceTimer?: NodeJS.Timeout;
  /** Ends the consumer's pacing of the call's output (climb() calls it). */
  unpace(): void;
}

/**
 * One session: a leased runner container, a persistent interpreter in it (docs/runner-protocol.md, Sessions),
 * calls one at a time in FIFO order, the timeout ladder, idle and max-lifetime closing. Everything it reports
 * about a call (timedOut, interrupted, stateLost, oomKilled, the truncation, durationMs) is decided here or by
 * the runner, never by the user's code.
 */
export class PoolSession implements Session {
  readonly id: string;
  readonly createdAt = new Date();
  readonly expiresAt: Date;
  private lastUsed = Date.now();
  private calls = 0;
  private readonly queue: QueuedCall[] = [];
  private running: QueuedCall | null = null;
  private current: Ladder | null = null;
  private closedReason: string | null = null;
  private closing: Promise<void> | null = null;
  /** A reset in progress (step 2, restart()): the next call waits for it. */
  private resetting: Promise<void> | null = null;
  /** The interpreter holding the session's state (0: none yet, or the state is gone: a fresh one is expected). */
  private expectedInterpreter = 0;
  /** Code calls run in the current interpreter. */
  private executionCount = 0;
  private idleTimer?: LongTimer;
  private readonly lifetimeTimer: LongTimer;

  constructor(private readonly deps: PoolSessionDeps) {
    this.id = deps.id ?? uuidv4();
    this.expiresAt = new Date(this.createdAt.getTime() + deps.maxLifetimeMs);
    this.lifetimeTimer = setLongTimeout(() => void this.close('lifetime'), deps.maxLifetimeMs);
    this.armIdle();
    // The container's end (its lifeline, the engine, an OOM of the runner) ends the session.
    void (deps.entry.source.handle as DriverContainer).exited?.then((reason) =>
      this.lose(`its container ended (${reason})`),
    );
  }

  get profile(): string {
    return this.deps.options.profile;
  }

  get owner(): string {
    return this.deps.owner;
  }

  /**
   * The container's files, as the session's: refused with the session's own error (SessionClosedError,
   * SessionLostError) once it is closed, and when it closes during the operation, never the container's
   * CONTAINER_RELEASED.
   */
  readonly files: ContainerFiles = {
    write: (path, data, opts) => this.fileOp(() => this.deps.files.write(path, data, opts)),
    read: (path, opts) => this.fileOp(() => this.deps.files.read(path, opts)),
    list: (dir, opts) => this.fileOp(() => this.deps.files.list(dir, opts)),
    remove: (path) => this.fileOp(() => this.deps.files.remove(path)),
  };

  /** A file operation is activity: the idle timeout counts from its end (a client may only upload for a while). */
  private async fileOp<T>(op: () => Promise<T>): Promise<T> {
    this.assertOpen();
    this.fileOps++;
    this.idleTimer?.clear();
    try {
      return await op();
    } catch (err) {
      if (this.closedReason !== null) throw this.closedError();
      throw err;
    } finally {
      this.fileOps--;
      this.lastUsed = Date.now();
      this.armIdle();
    }
  }

  /** File operations in flight (the session is not idle meanwhile). */
  private fileOps = 0;

  get containerId(): string {
    return this.deps.entry.id;
  }

  get isOpen(): boolean {
    return this.closedReason === null;
  }

  info(): SessionInfo {
    const now = Date.now();
    return {
      id: this.id,
      profile: this.profile,
      owner: this.owner,
      containerId: this.deps.entry.id,
      createdAt: this.createdAt,
      expiresAt: this.expiresAt,
      lastUsedAt: new Date(this.lastUsed),
      ageMs: now - this.createdAt.getTime(),
      idleMs: this.running ? 0 : now - this.lastUsed,
      idleTimeoutMs: this.deps.idleTimeoutMs,
      calls: this.calls,
      busy: this.running !== null,
      queued: this.queue.length,
      state: this.closedReason === null ? 'open' : 'closed',
      closedReason: this.closedReason,
    };
  }

  runCode(code: string, opts: RunCodeOptions = {}): Promise<CodeResult> {
    const o = this.deps.options;
    const exec = normalizeRunRequest({ ...pickExec(opts), code }, o);
    checkStdinSize(exec.code!.length + (exec.stdin?.length ?? 0), true, o);
    const maxOutputs = normalizeMaxOutputs(
      opts !== null && typeof opts === 'object' ? opts.maxOutputs : undefined,
      o,
    );
    const onOutput = checkOnOutput(opts.onOutput);
    return this.enqueue(
      (queuedMs) =>
        this.call('cell', exec.code!, exec.stdin, exec.env, {
          timeoutMs: exec.timeoutMs,
          maxOutputBytes: exec.maxOutputBytes,
          maxOutputs,
          onOutput,
          signal: opts.signal,
          queuedMs,
        }),
      opts.signal,
    ) as Promise<CodeResult>;
  }

  run(request: SessionRunRequest): Promise<SessionExecResult> {
    const o = this.deps.options;
    if (request === null || typeof request !== 'object') {
      throw new InvalidRequestError('request', 'must be an object with cmd');
    }
    const r = request as SessionRunRequest & { code?: unknown; workdir?: unknown };
    if (r.code !== undefined) {
      throw new InvalidRequestError('code', 'is for runCode(); a session run() takes cmd only');
    }
    if (r.workdir !== undefined) {
      throw new InvalidRequestError('workdir', "a session's commands run in the interpreter's cwd");
    }
    const exec = normalizeRunRequest(
      { ...pickExec(request), env: request.env, cmd: request.cmd },
      o,
    );
    checkStdinSize(exec.stdin?.length ?? 0, false, o);
    const onOutput = checkOnOutput(request.onOutput);
    return this.enqueue(
      (queuedMs) =>
        this.call('cmd', exec.cmd!, exec.stdin, exec.env, {
          timeoutMs: exec.timeoutMs,
          maxOutputBytes: exec.maxOutputBytes,
          onOutput,
          signal: request.signal,
          queuedMs,
        }),
      request.signal,
    ) as Promise<SessionExecResult>;
  }

  /** Interrupts the running call (the ladder from its first step); a no-op when nothing runs. */
  interrupt(): Promise<void> {
    const ladder = this.current;
    if (ladder && !ladder.ended && this.isOpen) this.climb(ladder);
    return Promise.resolve();
  }

  /** Kills every process but the runner and starts a fresh interpreter; a running call ends (stateLost). */
  async restart(): Promise<void> {
    this.assertOpen();
    if (this.current && !this.current.ended) this.current.reset = true;
    await this.reset();
  }

  /** Ends the session: queued calls reject with SessionClosedError, the container is removed. */
  close(reason = 'closed'): Promise<void> {
    if (this.closing) return this.closing;
    // Set before anything else: the container's removal kills its execution, whose kill closes again.
    let done!: () => void;
    this.closing = new Promise<void>((r) => (done = r));
    this.closedReason = reason;
    this.lifetimeTimer.clear();
    this.idleTimer?.clear();
    for (const q of this.queue.splice(0)) q.reject(this.closedError());
    const ladder = this.current;
    if (ladder?.graceTimer) clearTimeout(ladder.graceTimer);
    this.deps.totals.closed++;
    this.deps.log.log(
      `session ${this.id} container=${this.deps.entry.name} closed (${reason}) after ${this.calls} call(s)`,
    );
    this.deps.onClosed(this, reason);
    void this.deps.warm
      .destroy(this.deps.entry, `session ${reason}`)
      .catch(() => undefined)
      .then(done);
    return this.closing;
  }

  /**
   * The module shuts down: queued calls reject, a running call may finish within the pool's shutdownGraceMs
   * (it is one of the pool's executions), then the session closes.
   */
  shutdown(): Promise<void> {
    if (this.closing) return this.closing;
    this.stopping = true;
    for (const q of this.queue.splice(0)) q.reject(new PoolShuttingDownError());
    if (!this.running) return this.close('shutdown');
    return new Promise<void>((resolve) => (this.onStopped = () => resolve(this.close('shutdown'))));
  }

  private stopping = false;
  private onStopped?: () => void;

  // ---------------------------------------------------------------- the queue

  private assertOpen(): void {
    if (this.closedReason !== null) throw this.closedError();
  }

  private closedError(): Error {
    const reason = this.closedReason ?? 'closed';
    if (reason === 'shutdown') return new PoolShuttingDownError();
    if (reason.startsWith('lost: ')) return new SessionLostError(this.id, reason.slice(6));
    return new SessionClosedError(this.id, reason);
  }

  /**
   * Queues a call. Its signal aborting while it waits takes it out of the queue (ExecutionAbortedError); while
   * it runs, it interrupts it (the ladder) and the call rejects with ExecutionAbortedError once it ended.
   */
  private enqueue(
    run: (queuedMs: number) => Promise<unknown>,
    signal?: AbortSignal,
  ): Promise<unknown> {
    if (this.closedReason !== null) return Promise.reject(this.closedError());
    if (this.stopping) return Promise.reject(new PoolShuttingDownError());
    const busy = this.running !== null || this.queue.length > 0;
    if (busy && this.queue.length >= this.deps.options.maxQueuedCalls) {
      return Promise.reject(new SessionBusyError(this.id, this.deps.options.maxQueuedCalls));
    }
    if (signal?.aborted) {
      return Promise.reject(new ExecutionAbortedError('The call', signal.reason));
    }
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        const i = this.queue.indexOf(entry);
        if (i < 0) return;
        this.queue.splice(i, 1);
        reject(new ExecutionAbortedError('The call', signal?.reason));
        this.armIdle();
      };
      const entry: QueuedCall = {
        run: (queuedMs) => {
          signal?.removeEventListener('abort', onAbort);
          return run(queuedMs);
        },
        resolve,
        reject: (err) => {
          signal?.removeEventListener('abort', onAbort);
          reject(err);
        },
        enqueuedAt: performance.now(),
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.queue.push(entry);
      this.idleTimer?.clear();
      this.pump();
    });
  }

  private pump(): void {
    if (this.running || !this.queue.length || this.closedReason !== null) return;
    const next = (this.running = this.queue.shift()!);
    void (async () => {
      try {
        if (this.resetting) await this.resetting;
        this.assertOpen();
        next.resolve(await next.run(performance.now() - next.enqueuedAt));
      } catch (err) {
        next.reject(err instanceof Error ? err : new Error(String(err)));
      } finally {
        this.running = null;
        this.lastUsed = Date.now();
        if (this.stopping) this.onStopped?.();
        else {
          this.armIdle();
          this.pump();
        }
      }
    })();
  }

  private armIdle(): void {
    this.idleTimer?.clear();
    if (this.closedReason !== null || this.running || this.queue.length || this.fileOps) return;
    this.idleTimer = setLongTimeout(() => void this.close('idle'), this.deps.idleTimeoutMs);
  }

  // ---------------------------------------------------------------- one call

  private async call(
    kind: 'cell' | 'cmd',
    program: Buffer | string[],
    stdin: Buffer | null,
    env: string[],
    limits: {
      timeoutMs: number;
      maxOutputBytes: number;
      /** A cell's rich outputs (0: none). */
      maxOutputs?: number;
      onOutput?: OnOutput;
      signal?: AbortSignal;
      queuedMs: number;
    },
  ): Promise<CodeResult | SessionExecResult> {
    const { entry, channel, warm, options } = this.deps;
    if (entry.lostReason) throw this.lose(entry.lostReason);
    if (warm.isShuttingDown) throw new PoolShuttingDownError();
    if (limits.signal?.aborted) throw new ExecutionAbortedError('The call', limits.signal.reason);
    this.calls++;
    this.deps.totals.calls++;
    const executionId = uuidv4();
    const expected = this.expectedInterpreter;
    const previousCount = expected ? this.executionCount : 0;
    const name = `<cell-${previousCount + 1}>`;
    const header: JobHeader =
      kind === 'cell'
        ? {
            kind: 'cell',
            // The environment and cwd a new interpreter starts with; a running one keeps its own.
            env: mergeEnv(this.deps.baseEnv, env),
            workdir: options.workdir,
            lineBuffered: limits.onOutput !== undefined,
            // The interpreter keeps the same caps as the host (the runner's bounds are 2^31 bytes).
            outputs: {
              max: limits.maxOutputs ?? 0,
              maxBytes: Math.min(limits.maxOutputBytes, MAX_HEADER_OUTPUT_BYTES),
            },
            // Last: the one field that changes from call to call, so the runner and the interpreter can keep the
            // rest of the last header parsed (docs/runner-protocol.md, Sessions).
            name,
          }
        : {
            kind: 'cmd',
            argv: program as string[],
            env: mergeEnv(this.deps.baseEnv, env),
            workdir: options.workdir,
            lineBuffered: false,
            session: true,
            // The call's own variables, over the interpreter's environment (the runner lays them on).
            extraEnv: env,
          };
    // The consumer paces the call's output (a sink behind pauses the whole runner channel) until the ladder
    // climbs: from then on its pending event no longer holds the channel and later events are not sent to it
    // (they are in the result), or the EXIT of an interrupted cell and the RESET_DONE of a kill could not be read
    // behind a stalled consumer (a streaming client that stops reading) and the session would be lost.
    let unpace!: () => void;
    const unpaced = new Promise<void>((r) => (unpace = r));
    const consumer = limits.onOutput;
    const paced: OnOutput | undefined =
      consumer &&
      ((event) => {
        if (ladder.step > 0) return;
        const pending = consumer(event);
        return pending && typeof pending.then === 'function'
          ? Promise.race([pending, unpaced])
          : pending;
      });
    const listener = (stream: 'stdout' | 'stderr') =>
      paced && {
        stream,
        onOutput: paced,
        onError: () => this.climb(ladder),
      };
    const stdout = new CappedSink(limits.maxOutputBytes, listener('stdout') || undefined);
    const stderr = new CappedSink(limits.maxOutputBytes, listener('stderr') || undefined);
    const ladder: Ladder = (this.current = {
      jobId: 0,
      step: 0,
      timedOut: false,
      reset: false,
      ended: false,
      unpace: () => unpace(),
    });
    let aborted = false;
    const stop: { error: Error | null } = { error: null };
    const onAbort = () => {
      aborted = true;
      this.climb(ladder);
    };
    limits.signal?.addEventListener('abort', onAbort, { once: true });
    const oomEventsBefore = entry.oomEvents;
    let resolveDone!: () => void;
    const active: ActiveExecution = {
      // The pool's shutdown after its grace: the container goes, the call fails with the error.
      kill: (error) => {
        stop.error = error;
        void this.close(
          error instanceof PoolShuttingDownError ? 'shutdown' : `lost: ${error.message}`,
        );
      },
      done: new Promise<void>((r) => (resolveDone = r)),
    };
    entry.executions.add(active);
    warm.executionStarted();
    const started = performance.now();
    const timer = setTimeout(() => {
      ladder.timedOut = true;
      this.climb(ladder);
    }, limits.timeoutMs);
    const outputs =
      kind === 'cell' ? new OutputCollector(limits.maxOutputs ?? 0, limits.maxOutputBytes) : null;
    const control: JobControl = { onJob: (id) => (ladder.jobId = id) };
    if (outputs) control.onRichOutput = (message) => outputs.add(message);
    let outcome: RunnerJobOutcome;
    try {
      outcome = await channel.run(
        header,
        kind === 'cell' ? (program as Buffer) : undefined,
        stdin,
        { stdout, stderr },
        // No signal: a session never aborts a job, it runs the ladder (interrupt, RESET) instead.
        undefined,
        control,
      );
    } catch (err) {
      if (err instanceof InvalidRequestError && this.isOpen) {
        // A session command runs in the interpreter's cwd, which the call cannot name: not a `workdir` problem.
        if (kind === 'cmd' && err.field === 'workdir') {
          throw new InvalidRequestError(
            'cmd',
            `cannot run in the interpreter's current directory (${err.detail}); chdir the interpreter elsewhere first`,
          );
        }
        throw err;
      }
      if (this.closedReason !== null) throw this.closedError();
      if (stop.error) throw stop.error;
      const reason =
        err instanceof RunnerProtocolError
          ? `its runner broke the protocol (${err.violation})`
          : err instanceof ContainerLostError
            ? err.reason
            : err instanceof Error
              ? err.message
              : String(err);
      throw this.lose(reason, err);
    } finally {
      clearTimeout(timer);
      ladder.ended = true;
      if (ladder.graceTimer) clearTimeout(ladder.graceTimer);
      if (this.current === ladder) this.current = null;
      limits.signal?.removeEventListener('abort', onAbort);
      entry.executions.delete(active);
      warm.executionEnded();
      resolveDone();
    }
    const durationMs = performance.now() - started;
    // A kill (step 2) is over when the runner says so: the next call must find a clean container.
    if (this.resetting) {
      try {
        await this.resetting;
      } catch {
        // lose() ran; the error says why.
      }
    }
    if (this.closedReason !== null) throw this.closedError();
    if (limits.onOutput) {
      await Promise.race([
        Promise.all([stdout.flushed(), stderr.flushed()]),
        new Promise((r) => setTimeout(r, FLUSH_WAIT_MS).unref()),
      ]);
    }
    const oomKilled = countedOomKill(outcome) ?? entry.oomEvents > oomEventsBefore;

    let stateLost = ladder.reset;
    let error: CodeError | undefined;
    let executionCount = 0;
    if (kind === 'cell') {
      const cell = outcome.cell;
      if (!cell)
        throw this.lose('its runner sent no interpreter report for a cell', undefined, true);
      const sameInterpreter = expected === 0 || cell.interpreter === expected;
      stateLost ||= !sameInterpreter || !cell.alive;
      // The number of this call in the interpreter that ran it; the next call's count starts over when the
      // interpreter does not live on.
      executionCount = sameInterpreter && expected !== 0 ? previousCount + 1 : 1;
      const livesOn = cell.alive && !ladder.reset;
      this.expectedInterpreter = livesOn ? cell.interpreter : 0;
      this.executionCount = livesOn ? executionCount : 0;
      if (cell.report?.error) error = { ...cell.report.error };
    } else if (ladder.reset) {
      this.expectedInterpreter = 0;
      this.executionCount = 0;
    }
    const rich = outputs?.result(outcome.cell?.outputsDropped ?? 0);
    const result: ExecResult = {
      exitCode: ladder.timedOut ? null : outcome.exitCode,
      ...outputFields(stdout, stderr),
      timedOut: ladder.timedOut,
      oomKilled,
      profile: options.profile,
      transport: 'runner',
      durationMs: round2(durationMs),
      queuedMs: round2(limits.queuedMs),
      containerId: entry.id,
      executionId,
    };
    this.deps.log.log(
      `session ${this.id} ${kind === 'cell' ? 'runCode' : 'run'} ${executionId} exit=${result.exitCode ?? '-'} ` +
        `durationMs=${Math.round(durationMs)} stdout=${result.stdoutBytes.length}B stderr=${result.stderrBytes.length}B` +
        (rich
          ? ` outputs=${rich.outputs.length}${rich.outputsTruncated ? ' outputsTruncated' : ''}`
          : '') +
        (ladder.step ? ` ladder=${ladder.step}` : '') +
        (stateLost ? ' stateLost' : ''),
    );
    if (aborted) throw new ExecutionAbortedError('The call', limits.signal?.reason);
    const flags = { interrupted: ladder.step > 0, stateLost };
    if (kind === 'cmd') return { ...result, ...flags };
    return {
      ...result,
      ...flags,
      ...(error ? { error } : {}),
      executionCount,
      outputs: rich?.outputs ?? [],
      outputsTruncated: rich?.outputsTruncated ?? false,
    };
  }

  // ---------------------------------------------------------------- the ladder

  /** Step 1: KeyboardInterrupt (SIGINT); step 2 after interruptGraceMs. */
  private climb(ladder: Ladder): void {
    if (ladder.ended || ladder.step >= 1 || this.closedReason !== null) return;
    ladder.step = 1;
    ladder.unpace();
    this.deps.totals.interrupts++;
    this.deps.channel.interrupt(ladder.jobId);
    ladder.graceTimer = setTimeout(() => this.kill(ladder), this.deps.options.interruptGraceMs);
  }

  /** Step 2: every process but the runner killed, a fresh interpreter; step 3 when that fails. */
  private kill(ladder: Ladder): void {
    if (ladder.ended || ladder.step >= 2 || this.closedReason !== null) return;
    ladder.step = 2;
    ladder.reset = true;
    this.deps.totals.kills++;
    void this.reset().catch(() => undefined);
  }

  /**
   * RESET, bounded by killGraceMs: when the runner does not confirm in time, or processes are left, the
   * container is recycled (step 3) and the session lost.
   */
  private reset(): Promise<void> {
    if (this.resetting) return this.resetting;
    const { channel, options } = this.deps;
    // The call the reset kills: the runner ends it (its EXIT) before RESET_DONE.
    const killed = this.current && !this.current.ended ? this.current : null;
    let timer!: NodeJS.Timeout;
    const bounded = Promise.race([
      channel.reset(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () =>
            reject(
              new Error(
                `the runner did not finish killing within killGraceMs (${options.killGraceMs} ms)`,
              ),
            ),
          options.killGraceMs,
        );
      }),
    ]);
    const p = bounded
      .then(({ left }) => {
        if (left > 0) throw new Error(`${left} process(es) survived the kill`);
        this.expectedInterpreter = 0;
        this.executionCount = 0;
        if (killed) this.awaitKilled(killed);
      })
      .catch((err: unknown) => {
        // A session closed meanwhile (close(), its lifetime, shutdown: the removal failed the RESET) is no recycle.
        if (this.closedReason !== null) throw this.closedError();
        if (this.current) this.current.step = 3;
        this.deps.totals.recycles++;
        throw this.lose(
          `the timeout ladder recycled its container: ${err instanceof Error ? err.message : String(err)}`,
          err,
        );
      })
      .finally(() => {
        clearTimeout(timer);
        if (this.resetting === p) this.resetting = null;
      });
    this.resetting = p;
    return p;
  }

  /**
   * A kill the runner confirmed: the call it killed must have ended (docs/runner-protocol.md, RESET: every job
   * whose process was reaped ends before RESET_DONE). One that has not within killGraceMs is a runner that lost
   * track of it (a wait status it never got): nothing would end the call, so the container is recycled (step 3).
   */
  private awaitKilled(ladder: Ladder): void {
    const timer = setTimeout(() => {
      if (ladder.ended || this.closedReason !== null) return;
      ladder.step = 3;
      this.deps.totals.recycles++;
      this.lose(
        'the timeout ladder recycled its container: the runner finished its kill but the call never ended',
      );
    }, this.deps.options.killGraceMs);
    timer.unref?.();
  }

  /** The session cannot go on: closed as lost, its container removed; returns the error for the caller. */
  private lose(reason: string, cause?: unknown, protocol = false): SessionLostError {
    const error = new SessionLostError(this.id, reason, { cause });
    if (this.closedReason === null) {
      this.deps.log.warn(`session ${this.id} lost: ${reason}`);
      if (protocol) this.deps.log.warn(`session ${this.id}: its runner broke the session protocol`);
      void this.close(`lost: ${reason}`);
    }
    return error;
  }
}

function pickExec(o: { stdin?: string | Buffer; timeoutMs?: number; maxOutputBytes?: number }): {
  stdin?: string | Buffer;
  timeoutMs?: number;
  maxOutputBytes?: number;
} {
  if (o === null || typeof o !== 'object') return {};
  return { stdin: o.stdin, timeoutMs: o.timeoutMs, maxOutputBytes: o.maxOutputBytes };
}

function checkOnOutput(onOutput: unknown): OnOutput | undefined {
  if (onOutput !== undefined && typeof onOutput !== 'function') {
    throw new InvalidRequestError('onOutput', 'must be a function');
  }
  return onOutput as OnOutput | undefined;
}

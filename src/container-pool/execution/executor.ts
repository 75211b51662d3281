import type { EventEmitter } from 'node:events';
import { v4 as uuidv4 } from 'uuid';
import { LIFETIME_SAFETY_MARGIN_MS, OOM_EVENT_GRACE_MS } from '../container-pool.constants';
import type { DriverContainer } from '../engine/container-driver.interface';
import {
  ContainerExpiredError,
  ContainerLostError,
  ContainerReleasedError,
  ExecutionAbortedError,
  InvalidRequestError,
  PoolShuttingDownError,
  RunnerProtocolError,
} from '../errors/container-pool.errors';
import type { ResolvedContainerPoolOptions } from '../interfaces/container-pool-options.interface';
import type { PoolTotals } from '../interfaces/container.interface';
import type { ContainerPoolEventMap } from '../interfaces/events.interface';
import type { ExecResult } from '../interfaces/exec-result.interface';
import type { OnOutput } from '../interfaces/output-event.interface';
import type { PoolLog } from '../pool/container-source';
import type { ActiveExecution, PooledContainer } from '../pool/pooled-container';
import type { WarmPool } from '../pool/warm-pool';
import type { Transport, TransportJob } from '../transport/transport.interface';
import { countedOomKill } from '../transport/oom-verdict';
import { SPAN_ATTRIBUTES, setSpanAttributes, withSpan } from '../tracing';
import { checkStdinSize, ExecLimits, NormalizedExec } from './exec-request';
import { logContextWords } from './log-context';
import { CappedSink, outputFields } from './output-sink';

/** How long a killed execution waits for its container's removal before it returns (the kill is issued). */
const KILL_WAIT_MS = 500;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());
const round2 = (ms: number) => Math.round(ms * 100) / 100;

/** Resolves when every promise did, or when the signal fires (whatever is left then does not matter). */
function untilAborted(signal: AbortSignal, ...all: Promise<void>[]): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const done = () => {
      signal.removeEventListener('abort', done);
      resolve();
    };
    signal.addEventListener('abort', done, { once: true });
    void Promise.all(all).then(done);
  });
}

/**
 * Whether the container was lost because the OOM killer ended it during the execution (on the runner transport
 * the runner, its PID 1, may be the victim): that is the program's outcome (`oomKilled`), not an infrastructure
 * failure. The engine's `oom` event may come a moment after the container's end: waited for, briefly.
 */
async function diedOfOom(
  c: PooledContainer,
  stop: { timedOut: boolean; error: Error | null },
  oomBefore: number,
): Promise<boolean> {
  if (stop.timedOut || !c.lostReason) return false;
  // A caller's abort or the pool's shutdown stays what it is.
  if (stop.error && !(stop.error instanceof ContainerLostError)) return false;
  const until = performance.now() + OOM_EVENT_GRACE_MS;
  while (c.oomEvents === oomBefore && performance.now() < until) {
    await c.waitForNews(Math.max(1, until - performance.now()));
  }
  return c.oomEvents > oomBefore;
}

/** A job ready for a container: the transport's argv and stdin, and the limits of this execution. */
export interface PreparedJob {
  job: TransportJob;
  timeoutMs: number;
  maxOutputBytes: number;
  /** The caller's output callback, when it streams. */
  onOutput?: OnOutput;
}

export interface ExecutorDeps {
  pool: WarmPool;
  transport: Transport;
  options: ExecLimits &
    Pick<ResolvedContainerPoolOptions, 'name' | 'profile' | 'user' | 'pythonCommand'>;
  events: EventEmitter<ContainerPoolEventMap>;
  totals: PoolTotals;
  log: PoolLog;
}

/**
 * Runs jobs in leased containers, transport-neutral: the wall timer, the caller's abort, the kill on overrun (by
 * removing the container: the engine cannot kill one exec), taint, loss, the OOM verdict (asked of the
 * transport), the output caps (sinks built here) and the ExecResult, with one log line per execution.
 */
export class Executor {
  constructor(private readonly deps: ExecutorDeps) {}

  /**
   * The transport's job for a checked request (the code framed ahead of stdin); checks the stdin size. A caller
   * that streams (`onOutput`) gets line-buffered code.
   */
  prepare(exec: NormalizedExec, onOutput?: OnOutput): PreparedJob {
    const o = this.deps.options;
    if (onOutput !== undefined && typeof onOutput !== 'function') {
      throw new InvalidRequestError('onOutput', 'must be a function');
    }
    const stdin = exec.stdin;
    // The code travels with the stdin (framed ahead of it on the exec transport): both count.
    const codeBytes = exec.code ? exec.code.length + `${exec.code.length}\n`.length : 0;
    checkStdinSize(codeBytes + (stdin?.length ?? 0), exec.code !== undefined, o);
    const program = exec.code
      ? { code: exec.code, lineBuffered: onOutput !== undefined }
      : { cmd: exec.cmd! };
    return {
      job: { ...program, user: o.user, env: exec.env, workdir: exec.workdir, stdin },
      timeoutMs: exec.timeoutMs,
      maxOutputBytes: exec.maxOutputBytes,
      onOutput,
    };
  }

  /** Runs the job in a leased container; resolves for every outcome of the program. */
  run(
    c: PooledContainer,
    prepared: PreparedJob,
    signal: AbortSignal | undefined,
    queuedMs: number,
  ): Promise<ExecResult> {
    const attributes = {
      [SPAN_ATTRIBUTES.profile]: this.deps.options.profile,
      [SPAN_ATTRIBUTES.containerId]: c.id,
      [SPAN_ATTRIBUTES.transport]: this.deps.transport.name,
    };
    return withSpan('execute', attributes, async (span) => {
      const r = await this.runJob(c, prepared, signal, queuedMs);
      setSpanAttributes(span, {
        [SPAN_ATTRIBUTES.exitCode]: r.exitCode,
        [SPAN_ATTRIBUTES.timedOut]: r.timedOut,
        [SPAN_ATTRIBUTES.oomKilled]: r.oomKilled,
      });
      return r;
    });
  }

  private async runJob(
    c: PooledContainer,
    prepared: PreparedJob,
    signal: AbortSignal | undefined,
    queuedMs: number,
  ): Promise<ExecResult> {
    const { pool, transport } = this.deps;
    const { timeoutMs } = prepared;
    if (c.lostReason) throw new ContainerLostError(c.name, c.lostReason);
    if (pool.isShuttingDown) throw new PoolShuttingDownError();
    if (c.state !== 'leased') throw new ContainerReleasedError(c.name);
    const leftMs = c.hardDeadline.getTime() - Date.now();
    if (leftMs < timeoutMs + LIFETIME_SAFETY_MARGIN_MS) {
      throw new ContainerExpiredError(c.name, leftMs, timeoutMs);
    }
    if (signal?.aborted) throw new ExecutionAbortedError('The execution', signal.reason);

    const executionId = uuidv4();
    const started = performance.now();
    const abort = new AbortController();
    // Why the execution was stopped: the timer (timedOut) or an error to reject with (abort, loss, shutdown).
    const stop: { timedOut: boolean; error: Error | null } = { timedOut: false, error: null };
    const kill = (error: Error | null) => {
      if (abort.signal.aborted) return;
      stop.error = error;
      abort.abort();
    };
    const timer = setTimeout(() => {
      stop.timedOut = true;
      kill(null);
    }, timeoutMs);
    const onCallerAbort = () => kill(new ExecutionAbortedError('The execution', signal?.reason));
    signal?.addEventListener('abort', onCallerAbort, { once: true });
    const oomBefore = c.oomEvents;
    let resolveDone!: () => void;
    const active: ActiveExecution = {
      kill: (error) => kill(error),
      done: new Promise<void>((r) => (resolveDone = r)),
    };
    c.executions.add(active);
    pool.executionStarted();
    const target = c.source.handle as DriverContainer;
    const listener = (stream: 'stdout' | 'stderr') =>
      prepared.onOutput && {
        stream,
        onOutput: prepared.onOutput,
        onError: (err: unknown) => kill(err instanceof Error ? err : new Error(String(err))),
      };
    const stdout = new CappedSink(prepared.maxOutputBytes, listener('stdout') || undefined);
    const stderr = new CappedSink(prepared.maxOutputBytes, listener('stderr') || undefined);

    try {
      let outcome;
      try {
        outcome = await transport.run(target, prepared.job, { stdout, stderr }, abort.signal);
        // Every kept byte has reached the caller's onOutput before the result (within the timeout).
        if (prepared.onOutput) await untilAborted(abort.signal, stdout.flushed(), stderr.flushed());
      } catch (err) {
        // The engine refused to start the program (nothing ran): the container is as it was.
        if (err instanceof InvalidRequestError && !stop.error) throw err;
        c.tainted = true;
        // The container broke the runner protocol: it is killed already; the error says what it did.
        if (err instanceof RunnerProtocolError && !stop.error) {
          void pool.destroy(c, 'broke the runner protocol');
          throw err;
        }
        if (!stop.error && !c.lostReason) {
          // The engine says the container is gone (404/409): drop it now. A broken connection may be the
          // container's death too (an engine restart): its lifeline tells within moments.
          if (err instanceof ContainerLostError) pool.lost(c, err.reason);
          else await c.waitForNews(OOM_EVENT_GRACE_MS);
        }
        if (await diedOfOom(c, stop, oomBefore)) {
          outcome = { exitCode: 137, aborted: false };
        } else {
          if (c.lostReason) throw new ContainerLostError(c.name, c.lostReason, { cause: err });
          if (stop.error) throw stop.error;
          throw err;
        }
      } finally {
        // The execution is over: what follows (kill, OOM check) is not part of its time.
        clearTimeout(timer);
      }
      const durationMs = performance.now() - started;
      let oomKilled = false;
      if (abort.signal.aborted && (await diedOfOom(c, stop, oomBefore))) {
        c.tainted = true;
        outcome = { exitCode: 137, aborted: false };
      } else if (abort.signal.aborted) {
        // Timed out, aborted by the caller or killed by the pool: the work really stops with the container.
        c.tainted = true;
        await Promise.race([
          pool.destroy(c, stop.timedOut ? 'timed out' : 'killed'),
          sleep(KILL_WAIT_MS),
        ]);
        if (stop.error) throw stop.error;
      } else if (outcome.exitCode === 137) {
        // SIGKILL: the OOM killer, the container's death, or the program itself.
        oomKilled = await transport.wasOomKilled(target, c, oomBefore, outcome);
        if (c.lostReason && !oomKilled) throw new ContainerLostError(c.name, c.lostReason);
      }
      // The job's own cgroup count when its transport measured one; else the engine's events meanwhile.
      oomKilled ||= countedOomKill(outcome) ?? c.oomEvents > oomBefore;
      const result: ExecResult = {
        exitCode: stop.timedOut ? null : outcome.exitCode,
        ...outputFields(stdout, stderr),
        timedOut: stop.timedOut,
        oomKilled,
        profile: this.deps.options.profile,
        transport: transport.nameOf?.(target) ?? transport.name,
        durationMs: round2(durationMs),
        queuedMs: round2(queuedMs),
        containerId: c.id,
        executionId,
      };
      this.record(c, result);
      return result;
    } catch (err) {
      this.deps.log.warn(
        `exec ${executionId} container=${c.name} failed after ${Math.round(performance.now() - started)} ms: ` +
          `${err instanceof Error ? err.message : String(err)}${logContextWords()}`,
      );
      pool.engineFailed(err);
      throw err;
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onCallerAbort);
      c.executions.delete(active);
      pool.executionEnded();
      resolveDone();
    }
  }

  private record(c: PooledContainer, r: ExecResult): void {
    const totals = this.deps.totals;
    totals.executions++;
    if (r.timedOut) totals.timeouts++;
    if (r.oomKilled) totals.ooms++;
    if (r.truncated) totals.truncated++;
    const flags = [r.timedOut && 'timedOut', r.oomKilled && 'oomKilled', r.truncated && 'truncated']
      .filter(Boolean)
      .join(',');
    this.deps.log.log(
      `exec ${r.executionId} container=${c.name} exit=${r.exitCode ?? '-'} durationMs=${Math.round(r.durationMs)} ` +
        `queuedMs=${Math.round(r.queuedMs)} stdout=${r.stdoutBytes.length}B stderr=${r.stderrBytes.length}B` +
        (flags ? ` flags=${flags}` : '') +
        logContextWords(),
    );
    this.deps.events.emit('executed', { result: r });
  }
}

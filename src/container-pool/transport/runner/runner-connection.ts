import type { Readable } from 'node:stream';
import {
  ContainerCreateError,
  ContainerLostError,
  InvalidRequestError,
  RunnerProtocolError,
} from '../../errors/container-pool.errors';
import type { DriverContainer } from '../../engine/container-driver.interface';
import type { OutputSinks } from '../transport.interface';
import {
  type DecodedFrame,
  encodeFrame,
  encodeJob,
  encodeStdin,
  type ErrorReport,
  FrameDecoder,
  frameName,
  JobTooLargeError,
  type Hello,
  HostFrame,
  type JobHeader,
  parseError,
  parseExit,
  parseHello,
  parseOutput,
  parseResetDone,
  type OutputMessage,
  type CellExit,
  RUNNER_PROTOCOL_VERSION,
  RunnerFrame,
  RunnerViolation,
} from './runner-protocol';

/** How long the end of a container waits for the output it sent before (a paused channel) to be read. */
const END_DRAIN_MS = 1000;

/** A job's frames up to this size go to the channel in one write. */
const COALESCE_BYTES = 256 * 1024;

/** How much of the runner's stderr is kept (and logged) per container. */
const STDERR_HEAD_BYTES = 4096;

/** The runner never said hello: a failed create (back-off and early-death rules apply). */
export class RunnerStartError extends ContainerCreateError {
  constructor(
    message: string,
    /** The runner process ended (or never started) before its HELLO: the image cannot run it. */
    readonly exitedBeforeHello: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export interface RunnerJobOutcome {
  /** null when aborted. */
  exitCode: number | null;
  aborted: boolean;
  /** The memory cgroup's OOM kill counter the runner read right after the reap, or null. */
  oomKills: number | null;
  /** The same counter as last reported before the job started (HELLO or an earlier EXIT), or null. */
  oomKillsBefore: number | null;
  /** A cell job's exit: its interpreter, whether it lives on, its report. */
  cell?: CellExit;
}

/** Hooks of one job beyond its result (sessions). */
export interface JobControl {
  /** Called with the job's id once its JOB frame is written (for interrupt()). */
  onJob?(id: number): void;
  /**
   * A cell's rich outputs (OUTPUT frames), in order, each checked for its shape; what is in `data` is the user
   * code's own word. Without it the outputs the runner forwards are dropped.
   */
  onRichOutput?(output: OutputMessage): void;
}

/** What the runner may forward for a cell at most (docs/runner-protocol.md, Cells: rich outputs). */
function outputBounds(header: JobHeader): { count: number; bytes: number } {
  if (header.kind !== 'cell' || !header.outputs) return { count: 0, bytes: 0 };
  return { count: header.outputs.max, bytes: 2 * header.outputs.maxBytes + 65536 };
}

interface ActiveJob {
  kind: JobHeader['kind'];
  sinks: OutputSinks;
  /** The OUTPUT frames the runner may still send: it forwards while fewer than these went (count, bytes). */
  outputBounds: { count: number; bytes: number };
  outputsSeen: { count: number; bytes: number };
  onRichOutput?: (output: OutputMessage) => void;
  /** Streams whose sink is behind (the channel is paused for them). */
  behind: Set<'stdout' | 'stderr'>;
  resolve(outcome: RunnerJobOutcome): void;
  reject(err: Error): void;
}

export interface RunnerConnectionOptions {
  /** The RUNNER_VERSION the HELLO must carry. */
  runnerVersion: string;
  /** Kills the container (after a violation: nothing it sends is trusted any more). */
  kill(reason: string): void;
  log: { warn(message: string): void; debug(message: string): void };
}

const EXEC_ERRNOS = new Set([2, 8, 13, 20, 21]); // ENOENT ENOEXEC EACCES ENOTDIR EISDIR

/**
 * The host's side of one container's runner: decodes its frames (strictly: any violation kills the container
 * and fails every job with RunnerProtocolError), routes each job's output into the job's sinks honouring their
 * backpressure (a sink that is behind pauses the whole channel, so the runner stops reading the job's pipes),
 * and settles each job on its EXIT or ERROR. The container's end fails the jobs still running with
 * ContainerLostError.
 */
export class RunnerConnection {
  /** Resolves with the runner's HELLO; rejects with RunnerStartError (or RunnerProtocolError). */
  readonly hello: Promise<Hello>;
  private helloFrom: Hello | null = null;
  private resolveHello!: (hello: Hello) => void;
  private rejectHello!: (err: Error) => void;
  private readonly jobs = new Map<number, ActiveJob>();
  /** Jobs given up by the host (aborted): their remaining frames are dropped, not violations. */
  private readonly cancelled = new Set<number>();
  private nextJobId = 1;
  private dead: Error | null = null;
  private readonly decoder = new FrameDecoder((f) => this.onFrame(f));
  private readonly stderrHead: Buffer[] = [];
  private stderrBytes = 0;
  private behind = 0;
  private readonly stdout: Readable;
  /** The OOM kill counter as the runner last reported it. */
  private oomKills: number | null = null;
  /** A RESET waiting for its RESET_DONE. */
  private resetting: { resolve(r: { left: number }): void; reject(e: Error): void } | null = null;

  constructor(
    private readonly container: DriverContainer,
    private readonly opts: RunnerConnectionOptions,
  ) {
    this.hello = new Promise<Hello>((resolve, reject) => {
      this.resolveHello = resolve;
      this.rejectHello = reject;
    });
    // Never an unhandled rejection: ready() awaits it, and a late failure has nobody waiting.
    this.hello.catch(() => undefined);
    const channel = container.channel;
    if (!channel) {
      throw new RunnerStartError(
        'the engine driver gives no channel to the container main process: the runner cannot run',
        true,
      );
    }
    this.stdout = channel.stdout;
    channel.stdin.on('error', () => undefined);
    channel.stdout.on('data', (chunk: Buffer) => {
      if (this.dead) return;
      try {
        this.decoder.push(chunk);
      } catch (err) {
        if (err instanceof RunnerViolation) this.violate(err.message);
        else throw err;
      }
    });
    channel.stdout.on('end', () => {
      if (!this.decoder.idle) this.violate('its output ended inside a frame');
      else this.end('the runner ended');
    });
    // A broken connection to the engine is no verdict on the image (the probe must not cache it as "no runner").
    channel.stdout.on('error', (err: Error) =>
      this.end(`its channel broke: ${err.message}`, false),
    );
    channel.stderr.on('data', (chunk: Buffer) => this.keepStderr(chunk));
    void container.exited.then((reason) => {
      const exited = !/^its lifeline broke/.test(reason);
      // What the runner sent before its end may still wait in the paused channel (a sink behind): an EXIT in
      // there is the job's result, not a lost container. Read it out first (the rest is bounded: the container
      // is gone), then end; at most END_DRAIN_MS.
      if (channel.stdout.readableEnded || this.dead) return this.end(reason, exited);
      const done = () => {
        clearTimeout(timer);
        this.end(reason, exited);
      };
      const timer = setTimeout(done, END_DRAIN_MS);
      timer.unref?.();
      channel.stdout.once('end', done);
      channel.stdout.once('close', done);
      channel.stdout.resume();
    });
  }

  /** The runner's own diagnostics so far (its stderr, bounded). */
  get stderr(): string {
    return Buffer.concat(this.stderrHead).toString('utf8');
  }

  private keepStderr(chunk: Buffer): void {
    if (this.stderrBytes >= STDERR_HEAD_BYTES) return;
    const part = Buffer.from(chunk.subarray(0, STDERR_HEAD_BYTES - this.stderrBytes));
    this.stderrHead.push(part);
    this.stderrBytes += part.length;
    // Printable text only in the log: the container wrote it.
    const text = part
      .toString('utf8')
      .replace(/[^\x20-\x7e\n]/g, '?')
      .trim();
    if (text)
      this.opts.log.debug(`runner of ${this.container.name} (stderr): ${text.slice(0, 500)}`);
  }

  private onFrame(f: DecodedFrame): void {
    if (!this.helloFrom) {
      if (f.type !== RunnerFrame.hello) {
        throw new RunnerViolation(`a ${frameName(f.type)} frame before HELLO`);
      }
      const hello = parseHello(f);
      if (hello.protocol !== RUNNER_PROTOCOL_VERSION || hello.runner !== this.opts.runnerVersion) {
        throw new RunnerViolation(
          `a HELLO of protocol ${hello.protocol}, runner ${JSON.stringify(hello.runner)} (expected protocol ` +
            `${RUNNER_PROTOCOL_VERSION}, runner ${JSON.stringify(this.opts.runnerVersion)})`,
        );
      }
      this.helloFrom = hello;
      this.oomKills = hello.oomKills;
      this.resolveHello(hello);
      return;
    }
    if (f.type === RunnerFrame.hello) throw new RunnerViolation('a second HELLO frame');
    if (f.type === RunnerFrame.resetDone) {
      const done = parseResetDone(f);
      const waiting = this.resetting;
      if (!waiting) throw new RunnerViolation('a RESET_DONE frame the host did not ask for');
      this.resetting = null;
      waiting.resolve(done);
      return;
    }
    const job = this.jobs.get(f.jobId);
    if (!job) {
      if (this.cancelled.has(f.jobId)) {
        if (f.type === RunnerFrame.exit || f.type === RunnerFrame.error)
          this.cancelled.delete(f.jobId);
        return;
      }
      throw new RunnerViolation(
        `a ${frameName(f.type)} frame for job ${f.jobId}, which ` +
          (f.jobId > 0 && f.jobId < this.nextJobId ? 'has ended' : 'the host never started'),
      );
    }
    switch (f.type) {
      case RunnerFrame.stdout:
      case RunnerFrame.stderr:
        return this.output(job, f.type === RunnerFrame.stdout ? 'stdout' : 'stderr', f.payload);
      case RunnerFrame.output:
        return this.richOutput(f, job);
      case RunnerFrame.exit: {
        const exit = parseExit(f);
        this.forget(f.jobId, job);
        if (exit.oomKills !== null) this.oomKills = exit.oomKills;
        job.resolve({
          exitCode: exit.status,
          aborted: false,
          oomKills: exit.oomKills,
          // The counter the runner read when it started this job: the last one the host heard of (HELLO, the
          // previous EXIT) misses OOM kills in between (a background process of an earlier job).
          oomKillsBefore: exit.oomKillsAtStart ?? null,
          ...(exit.cell ? { cell: exit.cell } : {}),
        });
        return;
      }
      case RunnerFrame.error: {
        const report = parseError(f);
        this.forget(f.jobId, job);
        job.reject(this.errorOf(report));
        return;
      }
    }
  }

  private output(job: ActiveJob, stream: 'stdout' | 'stderr', payload: Buffer): void {
    const sink = job.sinks[stream];
    if (sink.write(payload) || job.behind.has(stream)) return;
    job.behind.add(stream);
    if (this.behind++ === 0) this.stdout.pause();
    sink.once('drain', () => this.caughtUp(job, stream));
  }

  /**
   * OUTPUT: only for a cell job, and only while the runner's own bounds allow (it forwards while fewer than `max`
   * outputs and fewer than 2 x maxBytes + 65536 payload bytes went for the cell): a runner past them is broken
   * or hostile, and a flood of outputs costs the host no more than the bounds.
   */
  private richOutput(f: DecodedFrame, job: ActiveJob): void {
    if (job.kind !== 'cell') {
      throw new RunnerViolation(
        `an OUTPUT frame for job ${f.jobId}, a ${job.kind} job (not a cell)`,
      );
    }
    const seen = job.outputsSeen;
    if (seen.count >= job.outputBounds.count || seen.bytes >= job.outputBounds.bytes) {
      throw new RunnerViolation(
        `an OUTPUT frame for job ${f.jobId} past its bounds (${seen.count} outputs, ${seen.bytes} bytes ` +
          `forwarded; the cell allows ${job.outputBounds.count} outputs, ${job.outputBounds.bytes} bytes)`,
      );
    }
    const output = parseOutput(f);
    seen.count++;
    seen.bytes += f.payload.length;
    job.onRichOutput?.(output);
  }

  private caughtUp(job: ActiveJob, stream: 'stdout' | 'stderr'): void {
    if (!job.behind.delete(stream)) return;
    if (--this.behind === 0 && !this.dead) this.stdout.resume();
  }

  /** The job is over for the host: its sinks no longer hold the channel. */
  private forget(id: number, job: ActiveJob): void {
    this.jobs.delete(id);
    for (const stream of [...job.behind]) this.caughtUp(job, stream);
  }

  private errorOf(report: ErrorReport): Error {
    const what = `${report.message} (errno ${report.errno})`;
    if (report.what === 'chdir') {
      return new InvalidRequestError(
        'workdir',
        `the runner could not enter it (${what}); it must be an existing directory of the container`,
      );
    }
    if (report.what === 'exec' && EXEC_ERRNOS.has(report.errno)) {
      return new InvalidRequestError(
        'cmd[0]',
        `the runner could not start the program (${what}); name an executable of the image, by path or on PATH`,
      );
    }
    return new ContainerLostError(
      this.container.name,
      `the runner could not start a program in it (${what}); the container is unusable`,
    );
  }

  /** A rule broken: nothing more is read, the container is killed, every job fails. */
  private violate(violation: string): void {
    if (this.dead) return;
    const err = new RunnerProtocolError(this.container.name, violation);
    this.opts.log.warn(`${err.message}`);
    this.fail(err, new RunnerStartError(err.message, false, { cause: err }));
    this.opts.kill(violation);
  }

  /** The container (or its channel) ended; `exited`: the runner's own end, not a broken engine connection. */
  private end(reason: string, exited = true): void {
    if (this.dead) return;
    const stderr = this.stderr.trim();
    const said = stderr ? `; it wrote: ${stderr.slice(-500)}` : '';
    this.fail(
      new ContainerLostError(this.container.name, `${reason}${said}`),
      new RunnerStartError(`the runner ended before its hello (${reason})${said}`, exited),
    );
  }

  private fail(jobError: Error, helloError: Error): void {
    this.dead = jobError;
    if (!this.helloFrom) this.rejectHello(helloError);
    const jobs = [...this.jobs.values()];
    this.jobs.clear();
    for (const job of jobs) job.reject(jobError);
    const waiting = this.resetting;
    this.resetting = null;
    waiting?.reject(jobError);
    this.stdout.resume();
  }

  /**
   * Runs one job. Resolves with its exit status (as docker exec reports it), or aborted when the signal fired
   * (the caller kills the container); rejects with the typed error of an ERROR frame, RunnerProtocolError, or
   * ContainerLostError. No signal: the job is never aborted (a session's: it runs its ladder instead).
   */
  run(
    header: JobHeader,
    code: Buffer | undefined,
    stdin: Buffer | null,
    sinks: OutputSinks,
    signal: AbortSignal | undefined,
    control?: JobControl,
  ): Promise<RunnerJobOutcome> {
    if (this.dead) return Promise.reject(this.dead);
    if (!this.helloFrom) {
      return Promise.reject(new ContainerLostError(this.container.name, 'its runner is not ready'));
    }
    const before = this.oomKills;
    const aborted = { exitCode: null, aborted: true, oomKills: null, oomKillsBefore: before };
    if (signal?.aborted) return Promise.resolve(aborted);
    // A channel already closed (the container is being detached or removed; its end is not reported yet): the
    // frames would go nowhere and the job would wait for its timeout, a wrong timedOut verdict.
    if (!this.container.channel!.stdin.writable) {
      return Promise.reject(
        new ContainerLostError(this.container.name, 'its runner channel is closed'),
      );
    }
    // No stdin: the job's STDIN_EOF in the JOB frame's buffer.
    const noStdin = !stdin?.length;
    let jobFrame: Buffer;
    try {
      jobFrame = encodeJob(this.nextJobId, header, code, noStdin);
    } catch (err) {
      if (err instanceof JobTooLargeError) {
        return Promise.reject(new InvalidRequestError(err.field, err.detail));
      }
      throw err;
    }
    const id = this.nextJobId++;
    return new Promise<RunnerJobOutcome>((resolve, reject) => {
      const onAbort = () => {
        const job = this.jobs.get(id);
        if (!job) return;
        this.forget(id, job);
        this.cancelled.add(id);
        this.write(encodeFrame(HostFrame.kill, id));
        resolve(aborted);
      };
      this.jobs.set(id, {
        kind: header.kind,
        sinks,
        outputBounds: outputBounds(header),
        outputsSeen: { count: 0, bytes: 0 },
        onRichOutput: control?.onRichOutput,
        behind: new Set(),
        resolve: signal
          ? (o) => {
              signal.removeEventListener('abort', onAbort);
              resolve({ ...o, oomKillsBefore: o.oomKillsBefore ?? before });
            }
          : (o) => resolve({ ...o, oomKillsBefore: o.oomKillsBefore ?? before }),
        reject: signal
          ? (e) => {
              signal.removeEventListener('abort', onAbort);
              reject(e);
            }
          : reject,
      });
      signal?.addEventListener('abort', onAbort, { once: true });
      // One write for the job and a small stdin (with its EOF): one syscall, one wake-up of the engine's copy
      // and of the runner, instead of one per frame.
      if (noStdin) this.write(jobFrame);
      else {
        const frames = [jobFrame, ...encodeStdin(id, stdin)];
        const bytes = frames.reduce((n, f) => n + f.length, 0);
        if (bytes <= COALESCE_BYTES) this.write(Buffer.concat(frames, bytes));
        else for (const frame of frames) this.write(frame);
      }
      control?.onJob?.(id);
    });
  }

  /** SIGINT to a running job (a cell: its interpreter); nothing when it has ended. */
  interrupt(jobId: number): void {
    if (this.dead || !this.jobs.has(jobId)) return;
    this.write(encodeFrame(HostFrame.interrupt, jobId));
  }

  /** SIGKILL to a running job's process group (a cell: its interpreter); nothing when it has ended. */
  killJob(jobId: number): void {
    if (this.dead || !this.jobs.has(jobId)) return;
    this.write(encodeFrame(HostFrame.kill, jobId));
  }

  /**
   * Kills every process of the container but the runner (RESET): the running jobs end with their EXIT first.
   * Resolves with how many processes were left (0: all gone); rejects when the container ends meanwhile.
   */
  reset(): Promise<{ left: number }> {
    if (this.dead) return Promise.reject(this.dead);
    if (!this.helloFrom) {
      return Promise.reject(new ContainerLostError(this.container.name, 'its runner is not ready'));
    }
    if (this.resetting) return Promise.reject(new Error('a reset is already in progress'));
    return new Promise<{ left: number }>((resolve, reject) => {
      this.resetting = { resolve, reject };
      this.write(encodeFrame(HostFrame.reset, 0));
    });
  }

  private write(frame: Buffer): void {
    const stdin = this.container.channel!.stdin;
    if (!stdin.writable) return;
    stdin.write(frame);
  }
}

import {
  ExecutionAbortedError,
  PoolShuttingDownError,
} from '../../../src/container-pool/errors/container-pool.errors';
import {
  SessionBusyError,
  SessionClosedError,
  SessionLostError,
  SessionNotFoundError,
  TooManySessionsError,
} from '../../../src/container-pool/errors/session.errors';
import type { OutputSinks } from '../../../src/container-pool/transport/transport.interface';
import type {
  JobControl,
  RunnerJobOutcome,
} from '../../../src/container-pool/transport/runner/runner-connection';
import type {
  JobHeader,
  OutputMessage,
} from '../../../src/container-pool/transport/runner/runner-protocol';
import { InvalidRequestError } from '../../../src/container-pool/errors/container-pool.errors';
import {
  emptySessionTotals,
  PoolSession,
  type PoolSessionDeps,
  type SessionOptions,
} from '../../../src/container-pool/sessions/pool-session';
import { SessionRegistry } from '../../../src/container-pool/sessions/session-registry';

/** A job the fake runner holds until the test ends it. */
interface FakeJob {
  id: number;
  header: JobHeader;
  code?: Buffer;
  sinks: OutputSinks;
  control?: JobControl;
  resolve(o: RunnerJobOutcome): void;
  reject(e: Error): void;
}

/** The runner connection as a session uses it, driven by the test. */
class FakeChannel {
  jobs: FakeJob[] = [];
  interrupts: number[] = [];
  resets = 0;
  resetAnswer: (() => Promise<{ left: number }>) | null = null;
  private next = 1;

  run(
    header: JobHeader,
    code: Buffer | undefined,
    _stdin: Buffer | null,
    sinks: OutputSinks,
    _signal: AbortSignal,
    control?: JobControl,
  ): Promise<RunnerJobOutcome> {
    return new Promise((resolve, reject) => {
      const id = this.next++;
      this.jobs.push({ id, header, code, sinks, control, resolve, reject });
      control?.onJob?.(id);
    });
  }

  interrupt(id: number): void {
    this.interrupts.push(id);
  }

  reset(): Promise<{ left: number }> {
    this.resets++;
    return this.resetAnswer ? this.resetAnswer() : Promise.resolve({ left: 0 });
  }

  /** Ends the oldest running job as a cell of interpreter `interpreter`. */
  endCell(
    interpreter: number,
    opts: {
      alive?: boolean;
      status?: number;
      error?: { name: string; value: string; traceback: string };
      oomKills?: [before: number, after: number];
      outputsDropped?: number;
    } = {},
  ): void {
    const job = this.jobs.shift()!;
    job.resolve({
      exitCode: opts.status ?? (opts.error ? 1 : 0),
      aborted: false,
      oomKills: opts.oomKills?.[1] ?? 0,
      oomKillsBefore: opts.oomKills?.[0] ?? 0,
      cell: {
        interpreter,
        alive: opts.alive ?? true,
        report: opts.alive === false ? null : { error: opts.error ?? null },
        outputsDropped: opts.outputsDropped ?? 0,
      },
    });
  }

  /** An OUTPUT frame of the oldest running job, as the connection hands it on. */
  output(message: OutputMessage): void {
    this.jobs[0].control?.onRichOutput?.(message);
  }

  endCmd(status = 0): void {
    this.jobs
      .shift()!
      .resolve({ exitCode: status, aborted: false, oomKills: 0, oomKillsBefore: 0 });
  }
}

const OPTIONS: SessionOptions = {
  profile: 'default',
  workdir: '/workspace',
  execTimeoutMs: 30_000,
  maxExecTimeoutMs: 300_000,
  maxOutputBytes: 1024,
  maxOutputs: 32,
  maxStdinBytes: 1 << 20,
  maxQueuedCalls: 2,
  interruptGraceMs: 2_000,
  killGraceMs: 2_000,
};

const quietLog = {
  log: () => undefined,
  warn: () => undefined,
  error: () => undefined,
  debug: () => undefined,
};

function makeSession(over: Partial<PoolSessionDeps> = {}, options: Partial<SessionOptions> = {}) {
  const channel = new FakeChannel();
  let exited!: (reason: string) => void;
  const entry = {
    id: 'c1',
    name: 'cpool-test-1',
    lostReason: null as string | null,
    oomEvents: 0,
    executions: new Set(),
    source: { handle: { exited: new Promise<string>((r) => (exited = r)) } },
  };
  const warm = {
    destroy: jest.fn(() => Promise.resolve()),
    executionStarted: jest.fn(),
    executionEnded: jest.fn(),
    isShuttingDown: false,
  };
  const totals = emptySessionTotals();
  const closed: string[] = [];
  const session = new PoolSession({
    owner: 'alice',
    entry: entry as never,
    channel: channel as never,
    warm: warm,
    options: { ...OPTIONS, ...options },
    files: {} as never,
    baseEnv: ['PATH=/bin', 'HOME=/workspace'],
    idleTimeoutMs: 60_000,
    maxLifetimeMs: 600_000,
    totals,
    log: quietLog,
    onClosed: (_s, reason) => closed.push(reason),
    ...over,
  });
  return { session, channel, entry, warm, totals, closed, exited: (r: string) => exited(r) };
}

const tick = () => new Promise((r) => setImmediate(r));

afterEach(() => jest.useRealTimers());

describe('PoolSession', () => {
  it('runs calls one at a time in FIFO order and refuses more than maxQueuedCalls behind the running one', async () => {
    const { session, channel } = makeSession();
    const a = session.runCode('a = 1');
    const b = session.runCode('b = 2');
    const c = session.run({ cmd: ['true'] });
    await tick();
    // One running, two queued: the next is refused.
    await expect(session.runCode('d = 4')).rejects.toBeInstanceOf(SessionBusyError);
    expect(channel.jobs).toHaveLength(1);
    expect(channel.jobs[0].code?.toString()).toBe('a = 1');
    channel.endCell(1);
    await expect(a).resolves.toMatchObject({ exitCode: 0, executionCount: 1, stateLost: false });
    await tick();
    expect(channel.jobs[0].code?.toString()).toBe('b = 2');
    channel.endCell(1);
    await expect(b).resolves.toMatchObject({ executionCount: 2, stateLost: false });
    await tick();
    expect(channel.jobs[0].header).toMatchObject({ kind: 'cmd', argv: ['true'], session: true });
    channel.endCmd(0);
    await expect(c).resolves.toMatchObject({ exitCode: 0, stateLost: false, interrupted: false });
    expect(session.info()).toMatchObject({ calls: 3, busy: false, queued: 0, state: 'open' });
  });

  it('names cells by their count in the interpreter and sends the environment a new interpreter starts with', async () => {
    const { session, channel } = makeSession();
    const a = session.runCode('x = 1', {});
    await tick();
    expect(channel.jobs[0].header).toMatchObject({
      kind: 'cell',
      name: '<cell-1>',
      workdir: '/workspace',
      env: ['PATH=/bin', 'HOME=/workspace'],
      lineBuffered: false,
    });
    channel.endCell(1);
    await a;
    const b = session.runCode('x += 1', { onOutput: () => undefined });
    await tick();
    expect(channel.jobs[0].header).toMatchObject({ name: '<cell-2>', lineBuffered: true });
    channel.endCell(1);
    await b;
  });

  it('returns the error of the user code and counts on', async () => {
    const { session, channel } = makeSession();
    const a = session.runCode('1/0');
    await tick();
    const error = {
      name: 'ZeroDivisionError',
      value: 'division by zero',
      traceback: 'Traceback...',
    };
    channel.endCell(1, { error });
    await expect(a).resolves.toMatchObject({
      exitCode: 1,
      error,
      stateLost: false,
      executionCount: 1,
    });
  });

  it("counts the job's own cgroup OOM kills, not an earlier call's engine event that arrives late", async () => {
    const { session, channel, entry } = makeSession();
    const a = session.runCode('x = 1');
    await tick();
    entry.oomEvents++; // the event of a kill before this call
    channel.endCell(1, { oomKills: [1, 1] });
    await expect(a).resolves.toMatchObject({ exitCode: 0, oomKilled: false });
    const b = session.runCode('y = bytearray(10**10)');
    await tick();
    channel.endCell(1, { status: 137, alive: false, oomKills: [1, 2] });
    await expect(b).resolves.toMatchObject({ exitCode: 137, oomKilled: true, stateLost: true });
  });

  it('reports stateLost when the interpreter died in the call, or since the previous one', async () => {
    const { session, channel } = makeSession();
    const first = session.runCode('a = 1');
    await tick();
    channel.endCell(1);
    await expect(first).resolves.toMatchObject({ stateLost: false, executionCount: 1 });
    // Died in the call (os._exit, OOM): lost, and the next call starts counting again without being "lost".
    const second = session.runCode('import os; os._exit(3)');
    await tick();
    channel.endCell(1, { alive: false, status: 3 });
    await expect(second).resolves.toMatchObject({
      exitCode: 3,
      stateLost: true,
      executionCount: 2,
    });
    const third = session.runCode('b = 1');
    await tick();
    channel.endCell(2);
    await expect(third).resolves.toMatchObject({ stateLost: false, executionCount: 1 });
    // Died between calls (a thread called os._exit, killed from a cmd): the next call runs in another one.
    const fourth = session.runCode('print(b)');
    await tick();
    channel.endCell(3, {
      error: { name: 'NameError', value: "name 'b' is not defined", traceback: '' },
    });
    await expect(fourth).resolves.toMatchObject({ stateLost: true, executionCount: 1 });
  });

  it('ladder step 1: a timeout interrupts (KeyboardInterrupt) and the state is kept', async () => {
    jest.useFakeTimers();
    const { session, channel, totals } = makeSession();
    const call = session.runCode('while True: pass', { timeoutMs: 1000 });
    await jest.advanceTimersByTimeAsync(999);
    expect(channel.interrupts).toEqual([]);
    await jest.advanceTimersByTimeAsync(1);
    expect(channel.interrupts).toEqual([1]);
    channel.endCell(1, { error: { name: 'KeyboardInterrupt', value: '', traceback: '' } });
    await expect(call).resolves.toMatchObject({
      timedOut: true,
      interrupted: true,
      stateLost: false,
      exitCode: null,
      error: { name: 'KeyboardInterrupt' },
    });
    expect(channel.resets).toBe(0);
    expect(totals).toMatchObject({ interrupts: 1, kills: 0, recycles: 0 });
  });

  it('ladder step 2: after interruptGraceMs every process is killed and the interpreter restarted (stateLost)', async () => {
    jest.useFakeTimers();
    const { session, channel, totals } = makeSession();
    let answer!: (r: { left: number }) => void;
    channel.resetAnswer = () => new Promise((r) => (answer = r));
    const call = session.runCode('ignore SIGINT', { timeoutMs: 1000 });
    const queued = session.runCode('after');
    await jest.advanceTimersByTimeAsync(1000 + 1999);
    expect(channel.resets).toBe(0);
    await jest.advanceTimersByTimeAsync(1);
    expect(channel.resets).toBe(1);
    // The runner ends the killed job (EXIT 137, alive false) before RESET_DONE.
    channel.endCell(1, { alive: false, status: 137 });
    await jest.advanceTimersByTimeAsync(0);
    // The queued call waits for the reset to finish.
    expect(channel.jobs).toHaveLength(0);
    answer({ left: 0 });
    await expect(call).resolves.toMatchObject({
      timedOut: true,
      interrupted: true,
      stateLost: true,
    });
    await jest.advanceTimersByTimeAsync(0);
    expect(channel.jobs).toHaveLength(1);
    channel.endCell(2);
    // A fresh interpreter: counting starts over, and that is no loss of this call.
    await expect(queued).resolves.toMatchObject({
      stateLost: false,
      executionCount: 1,
      interrupted: false,
    });
    expect(totals).toMatchObject({ interrupts: 1, kills: 1, recycles: 0 });
  });

  it('ladder step 3: a kill the runner does not confirm within killGraceMs recycles the container (SessionLostError)', async () => {
    jest.useFakeTimers();
    const { session, channel, warm, totals, closed } = makeSession();
    channel.resetAnswer = () => new Promise(() => undefined);
    const call = session.runCode('fork bomb', { timeoutMs: 100 });
    const queued = session.runCode('after');
    const settled = Promise.allSettled([call, queued]);
    await jest.advanceTimersByTimeAsync(100 + 2000 + 2000);
    expect(warm.destroy).toHaveBeenCalled();
    expect(closed).toEqual([expect.stringMatching(/^lost: the timeout ladder recycled/)]);
    // The container's removal ends the runner connection: the job fails.
    channel.jobs.shift()!.reject(new Error('gone'));
    const [a, b] = await settled;
    expect(a).toMatchObject({ status: 'rejected', reason: expect.any(SessionLostError) });
    expect(b).toMatchObject({ status: 'rejected', reason: expect.any(SessionLostError) });
    expect(totals).toMatchObject({ kills: 1, recycles: 1 });
    await expect(session.runCode('x')).rejects.toBeInstanceOf(SessionLostError);
  });

  it('ladder step 3 also when processes survive the kill', async () => {
    jest.useFakeTimers();
    const { session, channel } = makeSession();
    channel.resetAnswer = () => Promise.resolve({ left: 3 });
    const call = session.runCode('x', { timeoutMs: 10 });
    const settled = call.catch((e: unknown) => e);
    await jest.advanceTimersByTimeAsync(10 + 2000);
    channel.jobs.shift()?.reject(new Error('gone'));
    expect(await settled).toBeInstanceOf(SessionLostError);
  });

  it('interrupt() interrupts the running call (not timedOut); with nothing running it is a no-op', async () => {
    const { session, channel } = makeSession();
    await session.interrupt();
    expect(channel.interrupts).toEqual([]);
    const call = session.runCode('time.sleep(100)');
    const next = session.runCode('y = 1');
    await tick();
    await session.interrupt();
    expect(channel.interrupts).toEqual([1]);
    channel.endCell(1, { error: { name: 'KeyboardInterrupt', value: '', traceback: '' } });
    await expect(call).resolves.toMatchObject({
      timedOut: false,
      interrupted: true,
      stateLost: false,
    });
    await tick();
    channel.endCell(1);
    await expect(next).resolves.toMatchObject({ interrupted: false, executionCount: 2 });
  });

  it("the caller's abort takes a queued call out of the queue, and interrupts a running one", async () => {
    const { session, channel } = makeSession();
    const runningAbort = new AbortController();
    const queuedAbort = new AbortController();
    const running = session.runCode('busy', { signal: runningAbort.signal });
    const queued = session.runCode('never', { signal: queuedAbort.signal });
    const after = session.runCode('after');
    await tick();
    queuedAbort.abort();
    await expect(queued).rejects.toBeInstanceOf(ExecutionAbortedError);
    expect(channel.interrupts).toEqual([]);
    runningAbort.abort();
    expect(channel.interrupts).toEqual([1]);
    channel.endCell(1, { error: { name: 'KeyboardInterrupt', value: '', traceback: '' } });
    await expect(running).rejects.toBeInstanceOf(ExecutionAbortedError);
    await tick();
    // The aborted queued call never ran: the next job is the one behind it.
    expect(channel.jobs[0].code?.toString()).toBe('after');
    channel.endCell(1);
    await expect(after).resolves.toMatchObject({ executionCount: 2 });
  });

  it('restart() kills the running call and starts a fresh interpreter', async () => {
    const { session, channel } = makeSession();
    const call = session.runCode('busy');
    await tick();
    const restarted = session.restart();
    channel.endCell(1, { alive: false, status: 137 });
    await restarted;
    await expect(call).resolves.toMatchObject({ stateLost: true });
    const next = session.runCode('z');
    await tick();
    expect(channel.jobs[0].header.name).toBe('<cell-1>');
    channel.endCell(2);
    await expect(next).resolves.toMatchObject({ stateLost: false, executionCount: 1 });
  });

  it('closes after the idle timeout, counted from the last call, and never reuses its container', async () => {
    jest.useFakeTimers();
    const { session, channel, warm, closed } = makeSession({ idleTimeoutMs: 1000 });
    await jest.advanceTimersByTimeAsync(900);
    const call = session.runCode('a');
    await jest.advanceTimersByTimeAsync(5000); // busy: not idle
    expect(closed).toEqual([]);
    channel.endCell(1);
    await call;
    await jest.advanceTimersByTimeAsync(999);
    expect(closed).toEqual([]);
    await jest.advanceTimersByTimeAsync(1);
    expect(closed).toEqual(['idle']);
    expect(warm.destroy).toHaveBeenCalledWith(expect.anything(), 'session idle');
    await expect(session.runCode('b')).rejects.toBeInstanceOf(SessionClosedError);
  });

  it('closes at its max lifetime, even during a call', async () => {
    jest.useFakeTimers();
    const { session, channel, closed } = makeSession({ maxLifetimeMs: 5000 });
    const call = session.runCode('long');
    const queued = session.runCode('next');
    const settled = Promise.allSettled([call, queued]);
    await jest.advanceTimersByTimeAsync(5000);
    expect(closed).toEqual(['lifetime']);
    channel.jobs.shift()!.reject(new Error('its container was removed'));
    const [a, b] = await settled;
    expect(a).toMatchObject({ status: 'rejected', reason: expect.any(SessionClosedError) });
    expect(b).toMatchObject({ status: 'rejected', reason: expect.any(SessionClosedError) });
  });

  it('is lost when its container ends (the lifeline, the engine)', async () => {
    const { session, closed, exited } = makeSession();
    exited('it exited (137)');
    await tick();
    expect(closed).toEqual([expect.stringMatching(/^lost: its container ended/)]);
    await expect(session.runCode('x')).rejects.toBeInstanceOf(SessionLostError);
  });

  it('at shutdown: queued calls reject, the running one finishes, then it closes', async () => {
    const { session, channel, closed } = makeSession();
    const call = session.runCode('a');
    const queued = session.runCode('b');
    await tick();
    const done = session.shutdown();
    await expect(queued).rejects.toBeInstanceOf(PoolShuttingDownError);
    await expect(session.runCode('c')).rejects.toBeInstanceOf(PoolShuttingDownError);
    channel.endCell(1);
    await expect(call).resolves.toMatchObject({ exitCode: 0 });
    await done;
    expect(closed).toEqual(['shutdown']);
  });

  it('checks a call before it queues: the field is named', () => {
    const { session } = makeSession();
    expect(() => session.runCode('x', { timeoutMs: 0 })).toThrow(/timeoutMs/);
    expect(() => session.runCode('x', { timeoutMs: 10_000_000 })).toThrow(/maxExecTimeoutMs/);
    expect(() => session.runCode(42 as never)).toThrow(/code/);
    expect(() => session.run({ cmd: [] })).toThrow(/cmd/);
    expect(() => session.run({ cmd: ['ls'], workdir: '/tmp' } as never)).toThrow(/workdir/);
    expect(() => session.run({ code: 'x' } as never)).toThrow(/code/);
    expect(() => session.runCode('x', { onOutput: 'no' as never })).toThrow(/onOutput/);
  });

  it('caps the output per stream as run() does and streams the kept bytes', async () => {
    const { session, channel } = makeSession({}, { maxOutputBytes: 4 });
    const seen: string[] = [];
    const call = session.runCode('print', { onOutput: (e) => void seen.push(e.data.toString()) });
    await tick();
    const out = channel.jobs[0].sinks.stdout;
    out.write(Buffer.from('abcdef'));
    channel.endCell(1);
    await expect(call).resolves.toMatchObject({
      stdout: 'abcd',
      stdoutTruncated: true,
      stdoutTotalBytes: 6,
      truncated: true,
    });
    expect(seen.join('')).toBe('abcd');
  });
});

describe('SessionRegistry', () => {
  const fake = (id: string, owner: string, profile = 'default') => {
    const s = {
      id,
      owner,
      profile,
      isOpen: true,
      info: () => ({ id, owner }),
      close: jest.fn(() => Promise.resolve()),
      shutdown: jest.fn(() => Promise.resolve()),
    };
    return s as unknown as PoolSession;
  };

  it('limits sessions in all and per owner, counting opens in flight', async () => {
    const r = new SessionRegistry({ maxSessions: 3, maxSessionsPerOwner: 2 });
    let release!: () => void;
    const slow = r.add('a', () => new Promise((res) => (release = () => res(fake('1', 'a')))));
    await r.add('a', () => Promise.resolve(fake('2', 'a')));
    await expect(r.add('a', () => Promise.resolve(fake('3', 'a')))).rejects.toMatchObject({
      scope: 'owner',
      limit: 2,
    });
    await r.add('b', () => Promise.resolve(fake('4', 'b')));
    await expect(r.add('c', () => Promise.resolve(fake('5', 'c')))).rejects.toBeInstanceOf(
      TooManySessionsError,
    );
    release();
    await slow;
    expect(
      r
        .list()
        .map((s) => s.id)
        .sort(),
    ).toEqual(['1', '2', '4']);
    expect(r.list('b').map((s) => s.id)).toEqual(['4']);
    expect(r.countIn('default')).toBe(3);
  });

  it('never tells another owner that a session exists; a closed one is SessionClosedError for its owner', async () => {
    const r = new SessionRegistry({ maxSessions: 10, maxSessionsPerOwner: 10 });
    const s = await r.add('a', () => Promise.resolve(fake('s1', 'a')));
    expect(r.get('s1', 'a')).toBe(s);
    expect(r.get('s1')).toBe(s);
    expect(() => r.get('s1', 'b')).toThrow(SessionNotFoundError);
    expect(() => r.get('nope', 'a')).toThrow(SessionNotFoundError);
    r.closedOne(s, 'idle');
    expect(() => r.get('s1', 'a')).toThrow(SessionClosedError);
    expect(() => r.get('s1', 'b')).toThrow(SessionNotFoundError);
    expect(r.list()).toEqual([]);
  });

  it('refuses opens once shutting down and closes a session that opened meanwhile', async () => {
    const r = new SessionRegistry({ maxSessions: 10, maxSessionsPerOwner: 10 });
    let release!: () => void;
    const s = fake('x', 'a');
    const opening = r.add('a', () => new Promise((res) => (release = () => res(s))));
    await r.shutdown();
    await expect(r.add('a', () => Promise.resolve(fake('y', 'a')))).rejects.toBeInstanceOf(
      PoolShuttingDownError,
    );
    release();
    await expect(opening).rejects.toBeInstanceOf(PoolShuttingDownError);
    expect(s.close).toHaveBeenCalledWith('shutdown');
  });
});

describe('PoolSession: rich outputs', () => {
  const text = (t: string, type: 'result' | 'display' = 'display'): OutputMessage => ({
    type,
    data: { 'text/plain': t },
  });
  const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 1, 2, 3, 255]);

  it("sends the caps in a cell's header (max, maxBytes), none in a command's", async () => {
    const { session, channel } = makeSession({}, { maxOutputs: 8, maxOutputBytes: 4096 });
    const a = session.runCode('1', { maxOutputs: 3, maxOutputBytes: 100 });
    await tick();
    expect(channel.jobs[0].header.outputs).toEqual({ max: 3, maxBytes: 100 });
    channel.endCell(1);
    await a;
    const b = session.runCode('2');
    await tick();
    expect(channel.jobs[0].header.outputs).toEqual({ max: 8, maxBytes: 4096 });
    channel.endCell(1);
    await b;
    const c = session.run({ cmd: ['true'] });
    await tick();
    expect(channel.jobs[0].header.outputs).toBeUndefined();
    expect(channel.jobs[0].control?.onRichOutput).toBeUndefined();
    channel.endCmd();
    await expect(c).resolves.not.toHaveProperty('outputs');
  });

  it('a maxOutputBytes above 2^31 is sent as 2^31, the most a cell header carries', async () => {
    const { session, channel } = makeSession({}, { maxOutputBytes: 3 * 2 ** 30 });
    const a = session.runCode('1');
    await tick();
    expect(channel.jobs[0].header.outputs).toEqual({ max: 32, maxBytes: 2 ** 31 });
    channel.endCell(1);
    await a;
  });

  it('collects the outputs in order, images decoded to Buffers; none is outputs [] and not truncated', async () => {
    const { session, channel } = makeSession({}, { maxOutputBytes: 1 << 20 });
    const none = session.runCode('x = 1');
    await tick();
    channel.endCell(1);
    await expect(none).resolves.toMatchObject({ outputs: [], outputsTruncated: false });

    const call = session.runCode('display(df); plt.plot([1]); df');
    await tick();
    channel.output({
      type: 'display',
      data: {
        'text/plain': '   a\n0  1',
        'text/html': '<table></table>',
        'application/json': { a: [1] },
      },
    });
    channel.output({
      type: 'display',
      data: {
        'text/plain': '<Figure size 640x480 with 1 Axes>',
        'image/png': png.toString('base64'),
        'image/jpeg': Buffer.from('jpeg!').toString('base64'),
      },
    });
    channel.output(text('42', 'result'));
    channel.endCell(1);
    const result = await call;
    expect(result.outputsTruncated).toBe(false);
    expect(result.outputs).toEqual([
      {
        type: 'display',
        data: {
          'text/plain': '   a\n0  1',
          'text/html': '<table></table>',
          'application/json': { a: [1] },
        },
      },
      {
        type: 'display',
        data: {
          'text/plain': '<Figure size 640x480 with 1 Axes>',
          'image/png': png,
          'image/jpeg': Buffer.from('jpeg!'),
        },
      },
      { type: 'result', data: { 'text/plain': '42' } },
    ]);
    expect(Buffer.isBuffer(result.outputs[1].data['image/png'])).toBe(true);
  });

  it('keeps at most maxOutputs: the rest is dropped, outputsTruncated', async () => {
    const { session, channel } = makeSession({}, { maxOutputs: 2 });
    const call = session.runCode('for i in range(5): display(i)');
    await tick();
    for (const t of ['0', '1', '2', '3']) channel.output(text(t));
    channel.endCell(1);
    const r = await call;
    expect(r.outputs.map((o) => o.data['text/plain'])).toEqual(['0', '1']);
    expect(r.outputsTruncated).toBe(true);
  });

  it('exactly maxOutputs outputs is not truncated; the call may ask fewer, or 0 (none)', async () => {
    const { session, channel } = makeSession({}, { maxOutputs: 2 });
    const exact = session.runCode('a; b');
    await tick();
    channel.output(text('a'));
    channel.output(text('b'));
    channel.endCell(1);
    await expect(exact).resolves.toMatchObject({ outputsTruncated: false });
    const zero = session.runCode('display(1)', { maxOutputs: 0 });
    await tick();
    expect(channel.jobs[0].header.outputs?.max).toBe(0);
    channel.output(text('1'));
    channel.endCell(1);
    await expect(zero).resolves.toMatchObject({ outputs: [], outputsTruncated: true });
  });

  it('caps the bytes in all (text as UTF-8, images decoded, JSON serialized): the first that does not fit and every later one are dropped', async () => {
    // 'é' is 2 bytes in UTF-8: the first output is 10 bytes.
    const { session, channel } = makeSession({}, { maxOutputBytes: 1024 });
    const call = session.runCode('...', { maxOutputBytes: 25 });
    await tick();
    channel.output(text('éééééé'.slice(0, 5)));
    // 9 image bytes + 1 of text: 20 in all.
    channel.output({
      type: 'display',
      data: { 'text/plain': 'p', 'image/png': png.toString('base64') },
    });
    // JSON.stringify([1,2]) is 5 bytes, + 1 of text: 26 > 25, dropped; the small one after it too.
    channel.output({ type: 'display', data: { 'text/plain': 'j', 'application/json': [1, 2] } });
    channel.output(text('x'));
    channel.endCell(1);
    const r = await call;
    expect(r.outputs.map((o) => o.data['text/plain'])).toEqual(['ééééé', 'p']);
    expect(r.outputsTruncated).toBe(true);
  });

  it('a drop mark (data null) truncates: nothing after it is kept', async () => {
    const { session, channel } = makeSession();
    const call = session.runCode('...');
    await tick();
    channel.output(text('kept'));
    channel.output({ type: 'display', data: null });
    channel.output(text('after the mark'));
    channel.endCell(1);
    const r = await call;
    expect(r.outputs.map((o) => o.data['text/plain'])).toEqual(['kept']);
    expect(r.outputsTruncated).toBe(true);
  });

  it("the runner's outputsDropped truncates, even with every forwarded output kept", async () => {
    const { session, channel } = makeSession();
    const call = session.runCode('...');
    await tick();
    channel.output(text('a'));
    channel.endCell(1, { outputsDropped: 4 });
    await expect(call).resolves.toMatchObject({
      outputs: [{ type: 'display', data: { 'text/plain': 'a' } }],
      outputsTruncated: true,
    });
  });

  it.each([
    ['padding missing', 'iVBORw0KGgo'],
    ['whitespace', 'iVBO Rw0K'],
    ['a newline', 'iVBORw0K\nGgo='],
    ['URL-safe letters', 'iVBO-w0_'],
    ['padding inside', 'iV==Rw0K'],
    ['too much padding', 'iVBORw==='],
  ])(
    'an image that is not canonical base64 (%s) is dropped, the rest of the output kept',
    async (_w, bad) => {
      const { session, channel } = makeSession();
      const call = session.runCode('...');
      await tick();
      channel.output({
        type: 'display',
        data: { 'text/plain': 'fig', 'text/html': '<img>', 'image/png': bad, 'image/jpeg': bad },
      });
      channel.endCell(1);
      const r = await call;
      expect(r.outputs).toEqual([
        { type: 'display', data: { 'text/plain': 'fig', 'text/html': '<img>' } },
      ]);
      expect(r.outputsTruncated).toBe(false);
    },
  );

  it('once full, later outputs are not decoded (a flood costs little)', async () => {
    const { session, channel } = makeSession({}, { maxOutputs: 1 });
    const call = session.runCode('...');
    await tick();
    channel.output(text('first'));
    const spy = jest.spyOn(Buffer, 'from');
    for (let i = 0; i < 100; i++) {
      channel.output({
        type: 'display',
        data: { 'text/plain': 'p', 'image/png': png.toString('base64') },
      });
    }
    expect(spy).not.toHaveBeenCalled();
    spy.mockRestore();
    channel.endCell(1);
    await expect(call).resolves.toMatchObject({ outputsTruncated: true });
    expect((await call).outputs).toHaveLength(1);
  });

  it.each([
    [{ maxOutputs: 33 }, /maxOutputs: must not be greater than the profile's maxOutputs \(32\)/],
    [{ maxOutputs: -1 }, /maxOutputs: must not be less than 0/],
    [{ maxOutputs: 1.5 }, /maxOutputs: must be an integer/],
    [{ maxOutputs: '3' as unknown as number }, /maxOutputs: must be an integer/],
    [
      { maxOutputBytes: 2048 },
      /maxOutputBytes: must not be greater than the pool's maxOutputBytes \(1024\)/,
    ],
  ])('refuses the per-call option %j with an InvalidRequestError naming it', (opts, message) => {
    const { session, channel } = makeSession();
    let thrown: unknown;
    try {
      void session.runCode('1', opts);
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(InvalidRequestError);
    expect((thrown as InvalidRequestError).field).toBe(Object.keys(opts)[0]);
    expect(String((thrown as Error).message)).toMatch(message);
    expect(channel.jobs).toHaveLength(0);
  });
});

/**
 * Regression tests of the hostile review of issue #17 (sessions): each one failed before its fix.
 */
import { ContainerReleasedError } from '../../../src/container-pool/errors/container-pool.errors';
import {
  SessionClosedError,
  SessionLostError,
  TooManySessionsError,
} from '../../../src/container-pool/errors/session.errors';
import { SessionRegistry } from '../../../src/container-pool/sessions/session-registry';
import { httpMappingOf } from '../../../src/container-pool/http/filters/container-pool-error.filter';
import { PoolSession, emptySessionTotals } from '../../../src/container-pool/sessions/pool-session';
import type { SessionOptions } from '../../../src/container-pool/sessions/pool-session';
import type { JobControl } from '../../../src/container-pool/transport/runner/runner-connection';
import type { OutputSinks } from '../../../src/container-pool/transport/transport.interface';

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

function makeSession(idleTimeoutMs: number, maxLifetimeMs: number, channel: unknown = {}) {
  const closed: string[] = [];
  const session = new PoolSession({
    owner: 'alice',
    entry: {
      id: 'c1',
      name: 'cpool-test-1',
      lostReason: null,
      oomEvents: 0,
      executions: new Set(),
      source: { handle: { exited: new Promise<string>(() => undefined) } },
    } as never,
    channel: channel as never,
    warm: {
      destroy: jest.fn(() => Promise.resolve()),
      executionStarted: jest.fn(),
      executionEnded: jest.fn(),
      isShuttingDown: false,
    },
    options: OPTIONS,
    files: {} as never,
    baseEnv: [],
    idleTimeoutMs,
    maxLifetimeMs,
    totals: emptySessionTotals(),
    log: quietLog,
    onClosed: (_s, reason) => closed.push(reason),
  });
  return { session, closed };
}

describe('sessions review: timers', () => {
  it('an idleTimeoutMs above the timer range (2^31 - 1 ms) does not close the session at once', async () => {
    // openSession() and POST .../sessions accept any positive integer idleTimeoutMs; Node runs a longer
    // setTimeout after 1 ms (TimeoutOverflowWarning).
    const { session, closed } = makeSession(2 ** 31, 600_000);
    await new Promise((r) => setTimeout(r, 50));
    expect(closed).toEqual([]);
    expect(session.isOpen).toBe(true);
    await session.close();
  });

  it('a maxLifetimeMs above the timer range does not close the session at once', async () => {
    // sessionMaxLifetimeMs has no upper bound in the settings.
    const { session, closed } = makeSession(600_000, 30 * 24 * 3600 * 1000);
    await new Promise((r) => setTimeout(r, 50));
    expect(closed).toEqual([]);
    await session.close();
  });
});

describe('sessions review: timers (fake clock)', () => {
  afterEach(() => jest.useRealTimers());
  it('a long idle timeout still closes the session when its time is there', async () => {
    jest.useFakeTimers();
    const { closed } = makeSession(2 ** 31 + 5_000, 2 ** 33);
    await jest.advanceTimersByTimeAsync(2 ** 31 + 4_999);
    expect(closed).toEqual([]);
    await jest.advanceTimersByTimeAsync(1);
    expect(closed).toEqual(['idle']);
  });
});

describe('sessions review: output pacing', () => {
  it("after an interrupt a stalled consumer no longer holds the call's sink (the runner channel)", async () => {
    const jobs: { sinks: OutputSinks; resolve(o: unknown): void }[] = [];
    const interrupts: number[] = [];
    const channel = {
      run: (
        _h: unknown,
        _c: unknown,
        _s: unknown,
        sinks: OutputSinks,
        _sig: unknown,
        control?: JobControl,
      ) =>
        new Promise((resolve) => {
          jobs.push({ sinks, resolve });
          control?.onJob?.(1);
        }),
      interrupt: (id: number) => interrupts.push(id),
      reset: () => Promise.resolve({ left: 0 }),
    };
    const { session } = makeSession(60_000, 600_000, channel);
    const seen: number[] = [];
    const call = session.runCode('while True: print("x")', {
      onOutput: (e) => {
        seen.push(e.data.length);
        return new Promise<void>(() => undefined);
      },
    });
    await new Promise((r) => setImmediate(r));
    const out = jobs[0].sinks.stdout;
    // The consumer never settles: the sink is behind (the connection would pause the channel on false).
    expect(out.write(Buffer.alloc(64 * 1024))).toBe(false);
    const drained = new Promise<void>((r) => out.once('drain', () => r()));
    await session.interrupt();
    expect(interrupts).toEqual([1]);
    await drained;
    expect(out.write(Buffer.alloc(10))).toBe(true);
    expect(seen).toEqual([1024]);
    jobs[0].resolve({
      exitCode: 1,
      aborted: false,
      oomKills: 0,
      oomKillsBefore: 0,
      cell: {
        interpreter: 1,
        alive: true,
        report: { error: { name: 'KeyboardInterrupt', value: '', traceback: '' } },
      },
    });
    await expect(call).resolves.toMatchObject({
      interrupted: true,
      stateLost: false,
      stdoutTotalBytes: 64 * 1024 + 10,
    });
    await session.close();
  });
});

describe('sessions review: a kill the runner confirms but whose call never ends', () => {
  afterEach(() => jest.useRealTimers());
  it('step 2: RESET_DONE { left: 0 } without the EXIT of the killed call loses the session within killGraceMs', async () => {
    // The runner must end every job it killed before RESET_DONE (docs/runner-protocol.md, RESET, 2.). When it
    // does not (a wait status it never got: the zygote reaped the interpreter and was killed before passing the
    // status on), the call waited forever: no timer is left once the reset is confirmed.
    jest.useFakeTimers();
    const rejectors: ((e: Error) => void)[] = [];
    const channel = {
      run: (
        _h: unknown,
        _c: unknown,
        _s: unknown,
        _sinks: unknown,
        _sig: unknown,
        control?: JobControl,
      ) =>
        new Promise((_resolve, reject) => {
          rejectors.push(reject);
          control?.onJob?.(1);
        }),
      interrupt: () => undefined,
      reset: () => Promise.resolve({ left: 0 }),
    };
    const { session, closed } = makeSession(60_000, 600_000, channel);
    const warmDestroy = jest.fn(() => {
      // The container's removal fails the job, as the real connection does.
      rejectors.forEach((r) => r(new Error('its container was removed')));
      return Promise.resolve();
    });
    (session as unknown as { deps: { warm: { destroy: unknown } } }).deps.warm.destroy =
      warmDestroy;
    let settled: unknown = 'pending';
    const call = session.runCode('while True: pass', { timeoutMs: 1000 }).then(
      (r) => (settled = r),
      (e: unknown) => (settled = e),
    );
    await jest.advanceTimersByTimeAsync(1000 + 2000); // step 1, then step 2 (confirmed at once)
    await jest.advanceTimersByTimeAsync(2000 + 1); // killGraceMs more
    expect(settled).toBeInstanceOf(SessionLostError);
    expect(closed).toEqual([expect.stringMatching(/^lost: /)]);
    await call;
  });
});

describe('sessions review: metrics', () => {
  afterEach(() => jest.useRealTimers());
  it('a session closed during a step-2 kill counts no recycle (step 3)', async () => {
    jest.useFakeTimers();
    const rejectors: ((e: Error) => void)[] = [];
    const channel = {
      run: (
        _h: unknown,
        _c: unknown,
        _s: unknown,
        _sinks: unknown,
        _sig: unknown,
        control?: JobControl,
      ) =>
        new Promise((_resolve, reject) => {
          rejectors.push(reject);
          control?.onJob?.(1);
        }),
      interrupt: () => undefined,
      // The kill takes its time; the container's removal fails it.
      reset: () => new Promise((_resolve, reject) => rejectors.push(reject)),
    };
    const { session } = makeSession(60_000, 600_000, channel);
    const deps = (
      session as unknown as {
        deps: { warm: { destroy: unknown }; totals: { recycles: number; kills: number } };
      }
    ).deps;
    deps.warm.destroy = jest.fn(() => {
      rejectors.forEach((r) => r(new Error('its container was removed')));
      return Promise.resolve();
    });
    const call = session.runCode('while True: pass', { timeoutMs: 1000 }).catch((e: unknown) => e);
    await jest.advanceTimersByTimeAsync(1000 + 2000); // step 1, step 2 (the RESET is pending)
    expect(deps.totals.kills).toBe(1);
    await session.close();
    await jest.advanceTimersByTimeAsync(5000);
    await expect(call).resolves.toBeInstanceOf(SessionClosedError);
    expect(deps.totals.recycles).toBe(0);
  });
});

describe('sessions review: files of a closed session', () => {
  it("session.files after close() rejects SessionClosedError (HTTP 410), not the container's CONTAINER_RELEASED (500)", async () => {
    const { session } = makeSession(60_000, 600_000);
    const released = () => Promise.reject(new ContainerReleasedError('cpool-test-1'));
    (session as unknown as { deps: { files: unknown } }).deps.files = {
      write: released,
      read: released,
      list: released,
      remove: released,
    };
    await session.close();
    await expect(session.files.read('a.txt')).rejects.toBeInstanceOf(SessionClosedError);
    await expect(session.files.write('a.txt', 'x')).rejects.toBeInstanceOf(SessionClosedError);
    await expect(session.files.list()).rejects.toBeInstanceOf(SessionClosedError);
    await expect(session.files.remove('a.txt')).rejects.toBeInstanceOf(SessionClosedError);
  });
});

describe('sessions review: file operations and sessions off', () => {
  afterEach(() => jest.useRealTimers());

  it('a file operation is activity: the idle timeout counts from its end', async () => {
    jest.useFakeTimers();
    const closed: string[] = [];
    let finish!: () => void;
    const files = {
      write: jest.fn(() => new Promise<void>((r) => (finish = r))),
      read: jest.fn(),
      list: jest.fn(),
      remove: jest.fn(),
    };
    const session = new PoolSession({
      owner: 'alice',
      entry: {
        id: 'c1',
        name: 'cpool-test-1',
        lostReason: null,
        oomEvents: 0,
        executions: new Set(),
        source: { handle: { exited: new Promise<string>(() => undefined) } },
      } as never,
      channel: {} as never,
      warm: {
        destroy: jest.fn(() => Promise.resolve()),
        executionStarted: jest.fn(),
        executionEnded: jest.fn(),
        isShuttingDown: false,
      },
      options: OPTIONS,
      files: files,
      baseEnv: [],
      idleTimeoutMs: 1000,
      maxLifetimeMs: 600_000,
      totals: emptySessionTotals(),
      log: quietLog,
      onClosed: (_s, reason) => closed.push(reason),
    });
    await jest.advanceTimersByTimeAsync(900);
    const upload = session.files.write('big.bin', Buffer.alloc(1));
    // A long upload: not idle meanwhile.
    await jest.advanceTimersByTimeAsync(5000);
    expect(closed).toEqual([]);
    finish();
    await upload;
    await jest.advanceTimersByTimeAsync(999);
    expect(closed).toEqual([]);
    await jest.advanceTimersByTimeAsync(1);
    expect(closed).toEqual(['idle']);
  });

  it('maxSessions 0 (sessions off) is no retryable "too many": a client must not retry it forever', async () => {
    const r = new SessionRegistry({ maxSessions: 0, maxSessionsPerOwner: 4 });
    const err = await r
      .add('a', () => Promise.reject(new Error('never called')))
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TooManySessionsError);
    expect(err).toMatchObject({ retryable: false, limit: 0 });
    expect((err as Error).message).toMatch(/off.*maxSessions/);
    expect(httpMappingOf(err as TooManySessionsError)).toEqual({ status: 503 });
    const busy = new TooManySessionsError('module', 3);
    expect(busy.retryable).toBe(true);
    expect(httpMappingOf(busy)).toMatchObject({
      status: 429,
      retryAfterSeconds: expect.any(Number),
    });
  });
});

/**
 * Regression tests of the hostile review of issue #17 (sessions): each one failed before its fix.
 */
import { PoolSession, emptySessionTotals } from '../../../src/container-pool/sessions/pool-session';
import type { SessionOptions } from '../../../src/container-pool/sessions/pool-session';

const OPTIONS: SessionOptions = {
  profile: 'default',
  workdir: '/workspace',
  execTimeoutMs: 30_000,
  maxExecTimeoutMs: 300_000,
  maxOutputBytes: 1024,
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

function makeSession(idleTimeoutMs: number, maxLifetimeMs: number) {
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
    channel: {} as never,
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

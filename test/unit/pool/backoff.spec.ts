import {
  BACKOFF_INITIAL_MS,
  BACKOFF_MAX_MS,
} from '../../../src/container-pool/container-pool.constants';
import {
  AcquireTimeoutError,
  ContainerCreateError,
  ContainerLostError,
  EngineUnavailableError,
  ImageUnavailableError,
  PoolDrainedError,
  SandboxUnsupportedError,
} from '../../../src/container-pool/errors/container-pool.errors';
import {
  asPoolError,
  Backoff,
  backoffDelayMs,
  isPoolWide,
} from '../../../src/container-pool/pool/backoff';

describe('backoffDelayMs', () => {
  it.each([
    [1, 250],
    [2, 500],
    [3, 1_000],
    [4, 2_000],
    [5, 4_000],
    [6, 8_000],
    [7, 16_000],
    [8, 30_000],
    [9, 30_000],
    [50, 30_000],
  ])('after failure #%i waits %i ms', (streak, ms) => {
    expect(backoffDelayMs(streak)).toBe(ms);
  });

  it('starts at BACKOFF_INITIAL_MS and never exceeds BACKOFF_MAX_MS', () => {
    expect(backoffDelayMs(1)).toBe(BACKOFF_INITIAL_MS);
    const over: number[] = [];
    for (let streak = 1; streak <= 2_000; streak++) {
      if (backoffDelayMs(streak) > BACKOFF_MAX_MS) over.push(streak);
    }
    expect(over).toEqual([]);
    expect(backoffDelayMs(2_000)).toBe(BACKOFF_MAX_MS);
  });
});

describe('Backoff', () => {
  const now = 1_000_000;

  it('starts with no streak, no error and no wait', () => {
    const b = new Backoff();
    expect(b).toMatchObject({ failureStreak: 0, until: 0, lastError: null });
    expect(b.earlyDeathSuspected).toBe(false);
    expect(b.waiting(now)).toBe(false);
  });

  it('doubles the wait with each failure in a row, up to 30 s', () => {
    const b = new Backoff();
    const delays: number[] = [];
    for (let i = 0; i < 9; i++) delays.push(b.fail(new ContainerCreateError(`#${i}`), now));
    expect(delays).toEqual([250, 500, 1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000]);
    expect(b.failureStreak).toBe(9);
    expect(b.until).toBe(now + 30_000);
  });

  it('records the last error and waits until `until`', () => {
    const b = new Backoff();
    const first = new ContainerCreateError('first');
    const second = new EngineUnavailableError('second');
    b.fail(first, now);
    expect(b.lastError).toBe(first);
    b.fail(second, now + 10);
    expect(b.lastError).toBe(second);
    expect(b.until).toBe(now + 10 + 500);
    expect(b.waiting(now + 10 + 499)).toBe(true);
    expect(b.waiting(now + 10 + 500)).toBe(false);
  });

  it('succeed() ends the streak, returns its length and starts over at 250 ms', () => {
    const b = new Backoff();
    b.fail(new ContainerCreateError('a'), now);
    b.fail(new ContainerCreateError('b'), now);
    b.fail(new ContainerCreateError('c'), now);
    expect(b.succeed()).toBe(3);
    expect(b).toMatchObject({ failureStreak: 0, until: 0, lastError: null });
    expect(b.waiting(now)).toBe(false);
    expect(b.succeed()).toBe(0);
    expect(b.fail(new ContainerCreateError('d'), now)).toBe(250);
  });

  it('skip() retries now but keeps the streak and the error', () => {
    const b = new Backoff();
    const err = new ImageUnavailableError('fake:latest', 'gone');
    b.fail(err, now);
    b.fail(err, now);
    b.skip();
    expect(b.waiting(now)).toBe(false);
    expect(b.failureStreak).toBe(2);
    expect(b.lastError).toBe(err);
    // The next failure continues the streak.
    expect(b.fail(err, now)).toBe(1_000);
  });

  it('uses the real clock by default', () => {
    const b = new Backoff();
    b.fail(new ContainerCreateError('x'));
    expect(b.waiting()).toBe(true);
    expect(b.until).toBeGreaterThan(Date.now());
    expect(b.until).toBeLessThanOrEqual(Date.now() + 250);
  });
});

describe('isPoolWide', () => {
  it.each([
    ['EngineUnavailableError', new EngineUnavailableError('down'), true],
    ['ImageUnavailableError', new ImageUnavailableError('img', 'missing'), true],
    ['SandboxUnsupportedError', new SandboxUnsupportedError('no seccomp'), true],
    ['ContainerCreateError', new ContainerCreateError('EAGAIN'), false],
    ['ContainerLostError', new ContainerLostError('c', 'died'), false],
    ['AcquireTimeoutError', new AcquireTimeoutError(10), false],
    ['PoolDrainedError', new PoolDrainedError(), false],
    ['a plain Error', new Error('boom'), false],
    ['a string', 'boom', false],
    ['undefined', undefined, false],
  ])('%s: %s', (_what, err, expected) => {
    expect(isPoolWide(err)).toBe(expected);
  });
});

describe('asPoolError', () => {
  it('returns a ContainerPoolError as it is', () => {
    const err = new ImageUnavailableError('img', 'missing');
    expect(asPoolError(err)).toBe(err);
    const lost = new ContainerLostError('c', 'died');
    expect(asPoolError(lost)).toBe(lost);
  });

  it('wraps any other Error in a ContainerCreateError keeping the message and the cause', () => {
    const cause = new TypeError('socket hang up');
    const err = asPoolError(cause);
    expect(err).toBeInstanceOf(ContainerCreateError);
    expect(err.message).toContain('socket hang up');
    expect(err.cause).toBe(cause);
    expect(isPoolWide(err)).toBe(false);
  });

  it('wraps a non-Error value by its string', () => {
    const err = asPoolError('plain text');
    expect(err).toBeInstanceOf(ContainerCreateError);
    expect(err.message).toContain('plain text');
    expect(err.cause).toBe('plain text');
    expect(asPoolError(42).message).toContain('42');
  });
});

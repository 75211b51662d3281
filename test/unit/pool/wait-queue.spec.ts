import {
  AcquireTimeoutError,
  ExecutionAbortedError,
} from '../../../src/container-pool/errors/container-pool.errors';
import { PendingAcquire } from '../../../src/container-pool/pool/pending-acquire';
import { WaitQueue } from '../../../src/container-pool/pool/wait-queue';

/** Whether a promise has settled, and how (read after a microtask flush). */
function observe<T>(p: Promise<T>) {
  const seen: { value?: T; error?: unknown; settled: boolean } = { settled: false };
  p.then(
    (value) => Object.assign(seen, { value, settled: true }),
    (error: unknown) => Object.assign(seen, { error, settled: true }),
  );
  return seen;
}

const microtasks = () => Promise.resolve().then(() => undefined);

describe('WaitQueue', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  const noShortage = () => 'nothing to say';

  /** Serves the values in order to the waiters, as the pool does (a value a waiter refuses goes back). */
  function serveFrom<T>(q: WaitQueue<T>, values: T[]) {
    q.serve(
      () => values.shift(),
      (value, waiter) => {
        if (!waiter.resolve(value)) values.unshift(value);
      },
    );
  }

  it('serves waiters in FIFO order', async () => {
    const q = new WaitQueue<string>();
    const order: string[] = [];
    const waits = ['w1', 'w2', 'w3'].map((w) =>
      q.add(1_000, undefined, noShortage, () => undefined).then((v) => order.push(`${w}:${v}`)),
    );
    expect(q.length).toBe(3);
    serveFrom(q, ['a']);
    serveFrom(q, ['b', 'c']);
    await Promise.all(waits);
    expect(order).toEqual(['w1:a', 'w2:b', 'w3:c']);
    expect(q.length).toBe(0);
  });

  it('stops serving when take() has nothing more, leaving the rest waiting', async () => {
    const q = new WaitQueue<string>();
    const first = observe(q.add(1_000, undefined, noShortage, () => undefined));
    const second = observe(q.add(1_000, undefined, noShortage, () => undefined));
    const take = jest.fn().mockReturnValueOnce('a').mockReturnValue(undefined);
    q.serve(take, (v, w) => void w.resolve(v));
    await microtasks();
    expect(first).toMatchObject({ settled: true, value: 'a' });
    expect(second.settled).toBe(false);
    expect(q.length).toBe(1);
    q.rejectAll(new Error('end'));
    await microtasks();
    expect(second.settled).toBe(true);
  });

  it('does not call take() when nobody waits', () => {
    const q = new WaitQueue<string>();
    const take = jest.fn(() => 'x');
    q.serve(take, () => undefined);
    expect(take).not.toHaveBeenCalled();
  });

  it('rejects a waiter after its timeout with an AcquireTimeoutError carrying the shortage at that time', async () => {
    const q = new WaitQueue<string>();
    let why = 'at first';
    const shortage = jest.fn(() => why);
    const onTimeout = jest.fn();
    const seen = observe(q.add(500, undefined, shortage, onTimeout));
    jest.advanceTimersByTime(499);
    await microtasks();
    expect(seen.settled).toBe(false);
    expect(shortage).not.toHaveBeenCalled();
    why = '3 container(s) are still being created';
    jest.advanceTimersByTime(1);
    await microtasks();
    expect(seen.error).toBeInstanceOf(AcquireTimeoutError);
    expect((seen.error as AcquireTimeoutError).timeoutMs).toBe(500);
    expect((seen.error as Error).message).toContain('within 500 ms');
    expect((seen.error as Error).message).toContain('3 container(s) are still being created');
    expect(onTimeout).toHaveBeenCalledTimes(1);
    expect(q.length).toBe(0);
  });

  it('each waiter has its own timeout; the queue keeps the others', async () => {
    const q = new WaitQueue<string>();
    const short = observe(q.add(100, undefined, noShortage, () => undefined));
    const long = observe(q.add(1_000, undefined, noShortage, () => undefined));
    jest.advanceTimersByTime(100);
    await microtasks();
    expect(short.error).toBeInstanceOf(AcquireTimeoutError);
    expect(long.settled).toBe(false);
    expect(q.length).toBe(1);
    serveFrom(q, ['x']);
    await microtasks();
    expect(long.value).toBe('x');
  });

  it('a timed-out waiter has left the queue: the next value goes to the next waiter', async () => {
    const q = new WaitQueue<string>();
    const gaveUp = observe(q.add(10, undefined, noShortage, () => undefined));
    const patient = observe(q.add(1_000, undefined, noShortage, () => undefined));
    jest.advanceTimersByTime(10);
    const given: string[] = [];
    q.serve(
      () => 'v',
      (v, w) => {
        given.push(v);
        expect(w.resolve(v)).toBe(true);
      },
    );
    await microtasks();
    expect(gaveUp.error).toBeInstanceOf(AcquireTimeoutError);
    expect(patient.value).toBe('v');
    expect(given).toEqual(['v']);
  });

  it('a value a settled waiter refuses goes to the next waiter (the pool takes it back and serves on)', async () => {
    const q = new WaitQueue<string>();
    const first = observe(q.add(1_000, undefined, noShortage, () => undefined));
    const second = observe(q.add(1_000, undefined, noShortage, () => undefined));
    const values = ['only'];
    const refused: string[] = [];
    let calls = 0;
    q.serve(
      () => values.shift(),
      (value, waiter) => {
        // The first waiter settles elsewhere just before the hand-over.
        if (calls++ === 0) waiter.reject(new Error('gave up'));
        if (!waiter.resolve(value)) {
          refused.push(value);
          values.unshift(value);
        }
      },
    );
    await microtasks();
    expect(refused).toEqual(['only']);
    expect((first.error as Error).message).toBe('gave up');
    expect(second.value).toBe('only');
    expect(q.length).toBe(0);
  });

  it('gives up on abort with the abort error, without counting a timeout', async () => {
    const q = new WaitQueue<string>();
    const ac = new AbortController();
    const onTimeout = jest.fn();
    const seen = observe(q.add(1_000, ac.signal, noShortage, onTimeout));
    const other = observe(q.add(1_000, undefined, noShortage, () => undefined));
    const reason = new Error('caller went away');
    ac.abort(reason);
    await microtasks();
    expect(seen.error).toBeInstanceOf(ExecutionAbortedError);
    expect((seen.error as Error).cause).toBe(reason);
    expect(onTimeout).not.toHaveBeenCalled();
    expect(q.length).toBe(1);
    // Its timer is gone too: nothing happens at its timeout.
    jest.advanceTimersByTime(2_000);
    await microtasks();
    expect(onTimeout).not.toHaveBeenCalled();
    expect(other.error).toBeInstanceOf(AcquireTimeoutError);
  });

  it('a served waiter ignores its timeout and signal afterwards', async () => {
    const q = new WaitQueue<string>();
    const ac = new AbortController();
    const onTimeout = jest.fn();
    const seen = observe(q.add(100, ac.signal, noShortage, onTimeout));
    serveFrom(q, ['x']);
    ac.abort();
    jest.advanceTimersByTime(200);
    await microtasks();
    expect(seen).toMatchObject({ settled: true, value: 'x' });
    expect(onTimeout).not.toHaveBeenCalled();
    expect(jest.getTimerCount()).toBe(0);
  });

  it('rejectAll rejects every waiter with the error and empties the queue', async () => {
    const q = new WaitQueue<string>();
    const seen = [1, 2].map(() => observe(q.add(1_000, undefined, noShortage, () => undefined)));
    const err = new Error('shutting down');
    q.rejectAll(err);
    await microtasks();
    expect(seen.map((s) => s.error)).toEqual([err, err]);
    expect(q.length).toBe(0);
    expect(jest.getTimerCount()).toBe(0);
  });

  describe('full(servable, maxWaiters): maxWaiters bounds the callers waiting beyond what creates will serve', () => {
    it.each<[number, number, number, boolean]>([
      // waiting, servable, maxWaiters, full
      [0, 0, 0, true],
      [0, 1, 0, false],
      [1, 1, 0, true],
      [0, 0, 2, false],
      [1, 0, 2, false],
      [2, 0, 2, true],
      [3, 2, 2, false],
      [4, 2, 2, true],
      [0, 5, 0, false],
      [4, 5, 0, false],
      [5, 5, 0, true],
    ])('%i waiting, %i servable, maxWaiters %i: full=%s', (waiting, servable, maxWaiters, full) => {
      const q = new WaitQueue<string>();
      for (let i = 0; i < waiting; i++)
        void q.add(1_000, undefined, noShortage, () => undefined).catch(() => undefined);
      expect(q.full(servable, maxWaiters)).toBe(full);
      q.rejectAll(new Error('done'));
    });
  });
});

describe('PendingAcquire', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('settles exactly once', async () => {
    const onGiveUp = jest.fn();
    const p = new PendingAcquire<string>(100, undefined, onGiveUp);
    expect(p.resolve('a')).toBe(true);
    expect(p.resolve('b')).toBe(false);
    expect(p.reject(new Error('late'))).toBe(false);
    await expect(p.promise).resolves.toBe('a');
    jest.advanceTimersByTime(200);
    expect(onGiveUp).not.toHaveBeenCalled();
  });

  it('reports its timeout to onGiveUp with an AcquireTimeoutError, once', () => {
    const onGiveUp = jest.fn(
      (pending: PendingAcquire<string>, err: Error) => void pending.reject(err),
    );
    const p = new PendingAcquire<string>(100, undefined, onGiveUp);
    void p.promise.catch(() => undefined);
    jest.advanceTimersByTime(100);
    expect(onGiveUp).toHaveBeenCalledTimes(1);
    expect(onGiveUp.mock.calls[0][0]).toBe(p);
    expect(onGiveUp.mock.calls[0][1]).toBeInstanceOf(AcquireTimeoutError);
    expect(p.resolve('x')).toBe(false);
  });

  it('reports an abort to onGiveUp and detaches from the signal once settled', () => {
    const ac = new AbortController();
    const onGiveUp = jest.fn(
      (pending: PendingAcquire<string>, err: Error) => void pending.reject(err),
    );
    const p = new PendingAcquire<string>(1_000, ac.signal, onGiveUp);
    void p.promise.catch(() => undefined);
    ac.abort();
    expect(onGiveUp).toHaveBeenCalledTimes(1);
    expect(onGiveUp.mock.calls[0][1]).toBeInstanceOf(ExecutionAbortedError);

    const ac2 = new AbortController();
    const onGiveUp2 = jest.fn();
    const served = new PendingAcquire<string>(1_000, ac2.signal, onGiveUp2);
    served.resolve('ok');
    ac2.abort();
    expect(onGiveUp2).not.toHaveBeenCalled();
  });
});

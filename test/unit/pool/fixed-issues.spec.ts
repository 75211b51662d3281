/**
 * Two rules the review of the pool's split found broken (in the code before the split too), fixed since:
 * a new back-off is never delayed by a stale, later retry, and the early-death suspicion ends once any
 * container (idle or leased) lives past EARLY_DEATH_MS.
 */
import { EARLY_DEATH_MS } from '../../../src/container-pool/container-pool.constants';
import {
  ContainerCreateError,
  EngineUnavailableError,
} from '../../../src/container-pool/errors/container-pool.errors';
import { buildWarmPool, flush, type WarmPoolHarness } from '../../support/fake-source';

async function advance(ms: number): Promise<void> {
  jest.advanceTimersByTime(ms);
  await flush();
}

describe('WarmPool: fixed issues', () => {
  let h: WarmPoolHarness | undefined;

  beforeEach(() => {
    jest.useFakeTimers({
      doNotFake: ['nextTick', 'queueMicrotask', 'setImmediate', 'clearImmediate'],
    });
  });

  afterEach(async () => {
    await h?.close(() => jest.advanceTimersByTime(100));
    h = undefined;
    jest.useRealTimers();
  });

  /**
   * RefillScheduler.retryIn() never replaces a pending retry. After a long streak the retry timer is far out;
   * skip() (reconnected / replenish / resume) and a successful preparation end the streak but leave that timer.
   * The next failure asks for 250 ms, which is ignored, so the retry waits for the stale timer (up to 30 s;
   * in production bounded by the next pump: a tick, an acquire, a release).
   */
  it('a fresh failure after a recovery is retried after 250 ms, not at a stale, later retry', async () => {
    const pool = (h = buildWarmPool({ size: 1 }));
    pool.source.prepareError = new EngineUnavailableError('connect ECONNREFUSED (fake)');
    await expect(pool.pool.initialize()).rejects.toBeInstanceOf(EngineUnavailableError);
    // Three more failed preparations: the pending retry is now 2000 ms out.
    await advance(250);
    await advance(500);
    await advance(1_000);
    expect(pool.source.prepareCalls).toBe(4);
    // The engine answers again: the pool prepares at once and the streak ends.
    pool.source.prepareError = null;
    pool.source.manualCreates = true;
    pool.engine.reconnect();
    await flush();
    expect(pool.pool.stats().lastError).toBeNull();
    // A new, first failure: back-off 250 ms.
    pool.source.nextCreate().fail(new ContainerCreateError('EAGAIN (fake)'));
    await flush();
    expect(pool.source.createCalls).toBe(1);
    await advance(250);
    // Today: still 1 until 2000 ms (the stale timer).
    expect(pool.source.createCalls).toBe(2);
  });

  /**
   * After an idle container died young (earlyDeathSuspected), only Supply.tick() ends the streak, and only when
   * an *idle* container is older than EARLY_DEATH_MS. A pool whose containers never stay idle (size 0, or a
   * busy pool whose idle containers are leased right after their start) keeps the streak and `lastError`
   * forever, although its containers live on: stats().lastError stays set, notReadyReason() (health) reports
   * it whenever nothing is idle, and the next real failure backs off from the inflated streak.
   */
  it('the early-death suspicion ends once containers live on, even if none stays idle', async () => {
    const pool = (h = buildWarmPool({ size: 1, replenishIntervalMs: 1_000 }));
    await pool.pool.initialize();
    pool.source.die(pool.source.created[0].id, 'exited at once');
    await flush();
    expect(pool.pool.stats().lastError).toMatch(/after its start/);
    pool.pool.resize({ size: 0 });
    await advance(250);
    // Containers that serve for far longer than EARLY_DEATH_MS, leased all the time.
    for (let i = 0; i < 3; i++) {
      const c = await pool.pool.acquire();
      await advance(EARLY_DEATH_MS + 1_000);
      expect(c.lostReason).toBeNull();
      pool.pool.release(c);
      await flush();
    }
    await advance(5_000);
    // Today: still the early-death error.
    expect(pool.pool.stats().lastError).toBeNull();
  });
});

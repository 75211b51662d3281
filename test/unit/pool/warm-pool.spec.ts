/**
 * The warm pool's rules against a fake ContainerSource: no Nest, no driver, no engine. Timers are jest's fake
 * clock (setImmediate stays real so that `flush()` lets the pool's "after the current task" steps run), and
 * every create and removal a test cares about is held until the test settles it.
 */
import {
  EARLY_DEATH_MS,
  LIFETIME_SAFETY_MARGIN_MS,
} from '../../../src/container-pool/container-pool.constants';
import {
  AcquireTimeoutError,
  ContainerCreateError,
  ContainerLostError,
  ContainerPoolError,
  ContainerRemoveError,
  EngineUnavailableError,
  ExecutionAbortedError,
  ImageUnavailableError,
  InvalidRequestError,
  PoolDrainedError,
  PoolShuttingDownError,
  SandboxUnsupportedError,
  TooManyWaitersError,
} from '../../../src/container-pool/errors/container-pool.errors';
import type { PooledContainer } from '../../../src/container-pool/pool/pooled-container';
import type { WarmPoolOptions } from '../../../src/container-pool/pool/warm-pool';
import {
  buildWarmPool,
  FakeContainerSource,
  FakeEngineStatus,
  flush,
  type WarmPoolHarness,
} from '../../support/fake-source';

/** How a promise settled, read after a flush. */
function observe<T>(p: Promise<T>) {
  const seen: { value?: T; error?: unknown; settled: boolean } = {
    settled: false,
    value: undefined,
    error: undefined,
  };
  p.then(
    (value) => Object.assign(seen, { value, settled: true }),
    (error: unknown) => Object.assign(seen, { error, settled: true }),
  );
  return seen;
}

/** Moves the fake clock and lets what it triggered run. */
async function advance(ms: number): Promise<void> {
  jest.advanceTimersByTime(ms);
  await flush();
}

const engineDown = () => new EngineUnavailableError('connect ECONNREFUSED (fake)');
const imageMissing = () => new ImageUnavailableError('fake:latest', 'no registry (fake)');
const noSeccomp = () => new SandboxUnsupportedError('the engine reports no seccomp support (fake)');

describe('WarmPool (fake container source)', () => {
  const harnesses: WarmPoolHarness[] = [];

  function build(
    options: Partial<WarmPoolOptions> = {},
    setup: (source: FakeContainerSource, engine: FakeEngineStatus) => void = () => undefined,
  ): WarmPoolHarness {
    const engine = new FakeEngineStatus();
    const source = new FakeContainerSource(engine);
    setup(source, engine);
    const h = buildWarmPool(options, { source, engine });
    harnesses.push(h);
    return h;
  }

  /** Records every create that starts while the pool (or the source) already holds maxContainers. */
  function watchCap(h: WarmPoolHarness): string[] {
    const violations: string[] = [];
    h.source.onCreate = () => {
      const s = h.pool.stats();
      const poolTotal = s.idle + s.leased + s.creating + s.destroying;
      const onEngine = h.source.live.size + h.source.creatingNow;
      if (poolTotal >= s.maxContainers || onEngine >= s.maxContainers) {
        violations.push(`create with pool=${poolTotal} engine=${onEngine} max=${s.maxContainers}`);
      }
    };
    return violations;
  }

  /** initialize() with creates held: settles them as they come until the pool is started. */
  async function startHeld(h: WarmPoolHarness): Promise<void> {
    const init = observe(h.pool.initialize());
    for (let i = 0; !init.settled; i++) {
      if (i > 100) throw new Error('initialize never finished');
      await flush();
      for (const c of [...h.source.pendingCreates]) c.succeed();
    }
    if (init.error) throw init.error as Error;
  }

  beforeEach(() => {
    jest.useFakeTimers({
      doNotFake: ['nextTick', 'queueMicrotask', 'setImmediate', 'clearImmediate'],
    });
  });

  afterEach(async () => {
    for (const h of harnesses.splice(0)) await h.close(() => jest.advanceTimersByTime(100));
    jest.useRealTimers();
  });

  // ---------------------------------------------------------------- start

  describe('initialize', () => {
    it('prepares the source once and fills to size, at most maxConcurrentCreates at a time', async () => {
      const h = build({ size: 3, maxConcurrentCreates: 2 }, (s) => (s.manualCreates = true));
      const init = observe(h.pool.initialize());
      await flush();
      expect(h.source.calls.slice(0, 2)).toEqual(['start', 'prepare']);
      expect(h.source.pendingCreates).toHaveLength(2);
      expect(h.pool.stats()).toMatchObject({ idle: 0, creating: 2 });
      h.source.nextCreate().succeed();
      await flush();
      expect(h.source.pendingCreates).toHaveLength(2);
      expect(init.settled).toBe(false);
      h.source.settleAll();
      await flush();
      expect(init).toMatchObject({ settled: true, error: undefined });
      expect(h.pool.stats()).toMatchObject({ idle: 3, creating: 0, leased: 0 });
      expect(h.source.createCalls).toBe(3);
      expect(h.source.maxCreatingAtOnce).toBe(2);
      expect(h.source.prepareCalls).toBe(1);
      expect(h.totals.created).toBe(3);
      expect(h.emitted.filter((e) => e.event === 'created')).toHaveLength(3);
    });

    it('is idempotent', async () => {
      const h = build({ size: 1 });
      const a = h.pool.initialize();
      const b = h.pool.initialize();
      expect(b).toBe(a);
      await a;
      await h.pool.initialize();
      expect(h.source.startCalls).toBe(1);
      expect(h.source.prepareCalls).toBe(1);
      expect(h.source.createCalls).toBe(1);
    });

    it('registers its tick with the interval host under its name; shutdown removes it', async () => {
      const h = build({ size: 0 });
      await h.pool.initialize();
      expect(h.intervals.added).toEqual(['container-pool:test:test']);
      await h.close();
      expect(h.intervals.removed).toEqual(['container-pool:test:test']);
      expect(h.intervals.intervals.size).toBe(0);
    });

    it('does not create before it is started, and acquire() starts it', async () => {
      const h = build({ size: 2 });
      h.pool.resize({ size: 2 });
      await flush();
      expect(h.source.createCalls).toBe(0);
      expect(h.pool.unavailable()).toBeNull();
      const c = await h.pool.acquire();
      expect(h.source.startCalls).toBe(1);
      expect(h.source.created.map((x) => x.id)).toContain(c.id);
    });

    it('rejects once the pool is shutting down', async () => {
      const h = build({ size: 1 });
      await h.pool.shutdown();
      await expect(h.pool.initialize()).rejects.toBeInstanceOf(PoolShuttingDownError);
      expect(h.source.createCalls).toBe(0);
    });
  });

  // ---------------------------------------------------------------- acquire

  describe('acquire', () => {
    it('hands out an idle container without creating, then tops up after the current task', async () => {
      const h = build({ size: 2 });
      await h.pool.initialize();
      const idleIds = h.source.created.map((c) => c.id);
      const c = await h.pool.acquire();
      expect(idleIds).toContain(c.id);
      expect(c.state).toBe('leased');
      expect(h.source.createCalls).toBe(2);
      expect(h.pool.stats()).toMatchObject({ idle: 1, leased: 1 });
      await flush();
      expect(h.source.createCalls).toBe(3);
      expect(h.pool.stats()).toMatchObject({ idle: 2, leased: 1 });
      expect(h.totals.acquired).toBe(1);
      expect(h.emitted.find((e) => e.event === 'acquired')?.payload).toEqual({ waitMs: 0 });
    });

    it('hands out the oldest idle container first', async () => {
      const h = build({ size: 3 });
      await h.pool.initialize();
      const [first, second] = h.source.created;
      expect((await h.pool.acquire()).id).toBe(first.id);
      expect((await h.pool.acquire()).id).toBe(second.id);
    });

    it('creates at once when none is idle and the cap allows', async () => {
      const h = build({ size: 0 }, (s) => (s.manualCreates = true));
      await h.pool.initialize();
      expect(h.source.createCalls).toBe(0);
      const p = observe(h.pool.acquire());
      expect(h.source.pendingCreates).toHaveLength(1);
      expect(h.pool.stats()).toMatchObject({ creating: 1, waiting: 1 });
      const made = h.source.nextCreate().succeed();
      await flush();
      expect((p.value as PooledContainer).id).toBe(made.id);
      expect(h.pool.stats()).toMatchObject({ leased: 1, idle: 0, creating: 0, waiting: 0 });
    });

    it('queues at the cap in FIFO order and serves waiters as slots free up', async () => {
      const h = build({ size: 0, maxContainers: 1 });
      const violations = watchCap(h);
      await h.pool.initialize();
      const first = await h.pool.acquire();
      const order: number[] = [];
      const w1 = h.pool.acquire().then((c) => (order.push(1), c));
      const w2 = h.pool.acquire().then((c) => (order.push(2), c));
      const w3 = h.pool.acquire().then((c) => (order.push(3), c));
      await flush();
      expect(h.pool.stats()).toMatchObject({ waiting: 3, leased: 1, creating: 0 });
      expect(h.source.createCalls).toBe(1);
      h.pool.release(first);
      const c1 = await w1;
      expect(order).toEqual([1]);
      h.pool.release(c1);
      const c2 = await w2;
      h.pool.release(c2);
      await w3;
      expect(order).toEqual([1, 2, 3]);
      expect(h.source.createCalls).toBe(4);
      expect(violations).toEqual([]);
    });

    it('never has more than maxContainers, counting creates and removals in flight', async () => {
      const h = build({ size: 0, maxContainers: 2, maxConcurrentCreates: 3 }, (s) => {
        s.manualCreates = true;
        s.manualRemoves = true;
      });
      const violations = watchCap(h);
      await h.pool.initialize();
      const a = observe(h.pool.acquire());
      const b = observe(h.pool.acquire());
      const c = observe(h.pool.acquire());
      await flush();
      // Two creates for three callers: the cap.
      expect(h.source.pendingCreates).toHaveLength(2);
      h.source.settleAll();
      await flush();
      expect(a.value).toBeDefined();
      expect(b.value).toBeDefined();
      expect(c.settled).toBe(false);
      h.pool.release(a.value as PooledContainer);
      await flush();
      // The removal is in flight: it still counts, so no create yet.
      expect(h.source.pendingRemoves).toHaveLength(1);
      expect(h.pool.stats()).toMatchObject({ leased: 1, destroying: 1, creating: 0, waiting: 1 });
      expect(h.source.createCalls).toBe(2);
      h.source.pendingRemoves[0].finish();
      await flush();
      expect(h.source.createCalls).toBe(3);
      h.source.nextCreate().succeed();
      await flush();
      expect(c.value).toBeDefined();
      expect(violations).toEqual([]);
    });

    it('keeps at most maxConcurrentCreates creates in flight for a crowd of waiters', async () => {
      const h = build({ size: 0, maxContainers: 6, maxConcurrentCreates: 2 }, (s) => {
        s.manualCreates = true;
      });
      await h.pool.initialize();
      const waits = Array.from({ length: 5 }, () => observe(h.pool.acquire()));
      await flush();
      for (let round = 0; h.source.pendingCreates.length; round++) {
        expect(round).toBeLessThan(10);
        expect(h.source.pendingCreates.length).toBeLessThanOrEqual(2);
        h.source.nextCreate().succeed();
        await flush();
      }
      expect(waits.every((w) => w.value !== undefined)).toBe(true);
      expect(new Set(waits.map((w) => (w.value as PooledContainer).id)).size).toBe(5);
      expect(h.source.createCalls).toBe(5);
      expect(h.source.maxCreatingAtOnce).toBe(2);
    });

    it('times out with an AcquireTimeoutError saying every container is in use', async () => {
      const h = build({ size: 0, maxContainers: 1 });
      await h.pool.initialize();
      await h.pool.acquire();
      const p = observe(h.pool.acquire({ timeoutMs: 500 }));
      await advance(499);
      expect(p.settled).toBe(false);
      await advance(1);
      expect(p.error).toBeInstanceOf(AcquireTimeoutError);
      expect((p.error as Error).message).toContain('within 500 ms');
      expect((p.error as Error).message).toContain('every container is in use (maxContainers 1)');
      expect(h.pool.stats().waiting).toBe(0);
      expect(h.totals.acquireTimeouts).toBe(1);
    });

    it('uses acquireTimeoutMs by default and names creates still in flight in the timeout', async () => {
      const h = build({ size: 0, acquireTimeoutMs: 300 }, (s) => (s.manualCreates = true));
      await h.pool.initialize();
      const p = observe(h.pool.acquire());
      await advance(300);
      expect(p.error).toBeInstanceOf(AcquireTimeoutError);
      expect((p.error as Error).message).toContain('1 container(s) are still being created');
      // The create that arrives later is kept idle, not leaked.
      h.source.nextCreate().succeed();
      await flush();
      expect(h.pool.stats()).toMatchObject({ idle: 1, leased: 0, waiting: 0 });
    });

    it('names the create failure in the timeout', async () => {
      const h = build({ size: 0 }, (s) => (s.createError = new ContainerCreateError('EAGAIN')));
      await h.pool.initialize();
      const p = observe(h.pool.acquire({ timeoutMs: 100 }));
      await flush();
      await advance(100);
      expect(p.error).toBeInstanceOf(AcquireTimeoutError);
      expect((p.error as Error).message).toMatch(/creating containers fails \(.*EAGAIN/);
    });

    it('rejects at once when maxWaiters callers already wait at the cap', async () => {
      const h = build({ size: 0, maxContainers: 1, maxWaiters: 1 });
      await h.pool.initialize();
      await h.pool.acquire();
      const waiting = observe(h.pool.acquire());
      await expect(h.pool.acquire()).rejects.toBeInstanceOf(TooManyWaitersError);
      expect(h.pool.stats().waiting).toBe(1);
      expect(waiting.settled).toBe(false);
    });

    it('lets callers wait for creates the cap allows even with maxWaiters 0', async () => {
      const h = build(
        { size: 0, maxContainers: 2, maxWaiters: 0 },
        (s) => (s.manualCreates = true),
      );
      await h.pool.initialize();
      const a = observe(h.pool.acquire());
      const b = observe(h.pool.acquire());
      await expect(h.pool.acquire()).rejects.toThrow(TooManyWaitersError);
      h.source.settleAll();
      await flush();
      expect(a.value).toBeDefined();
      expect(b.value).toBeDefined();
      await expect(h.pool.acquire()).rejects.toThrow(/maxWaiters 0/);
    });

    it('rejects an already aborted signal without waiting or creating', async () => {
      const h = build({ size: 0 });
      await h.pool.initialize();
      const ac = new AbortController();
      ac.abort(new Error('gone'));
      await expect(h.pool.acquire({ signal: ac.signal })).rejects.toBeInstanceOf(
        ExecutionAbortedError,
      );
      await flush();
      expect(h.source.createCalls).toBe(0);
      expect(h.pool.stats().waiting).toBe(0);
    });

    it('gives up waiting on abort; the container made for it stays in the pool', async () => {
      const h = build({ size: 0 }, (s) => (s.manualCreates = true));
      await h.pool.initialize();
      const ac = new AbortController();
      const p = observe(h.pool.acquire({ signal: ac.signal }));
      await flush();
      ac.abort();
      await flush();
      expect(p.error).toBeInstanceOf(ExecutionAbortedError);
      expect(h.pool.stats().waiting).toBe(0);
      expect(h.totals.acquireTimeouts).toBe(0);
      h.source.nextCreate().succeed();
      await flush();
      expect(h.pool.stats()).toMatchObject({ idle: 1, leased: 0 });
      expect(h.totals.acquired).toBe(0);
    });

    it('rejects an execution timeout above maxExecTimeoutMs', async () => {
      const h = build({ size: 1, maxExecTimeoutMs: 5_000 });
      await h.pool.initialize();
      const err = await h.pool.acquire({ execTimeoutMs: 5_001 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(InvalidRequestError);
      expect(err).toMatchObject({ field: 'timeoutMs' });
      expect(h.pool.stats()).toMatchObject({ idle: 1, leased: 0 });
      await expect(h.pool.acquire({ execTimeoutMs: 5_000 })).resolves.toBeDefined();
    });

    it('never hands out an expired container: it is removed and a fresh one made', async () => {
      const h = build({ size: 1 }, (s) => (s.lifetimeMs = 10_000));
      await h.pool.initialize();
      const [old] = h.source.created;
      await advance(10_000);
      const c = await h.pool.acquire();
      expect(c.id).not.toBe(old.id);
      expect(h.source.removedIds).toContain(old.id);
      expect(h.emitted).toContainEqual({ event: 'destroyed', payload: { reason: 'expired' } });
    });

    it('a released container goes to the waiter that arrived first, not to a later caller', async () => {
      const h = build({ size: 0, maxContainers: 1, singleUse: false });
      await h.pool.initialize();
      const a = await h.pool.acquire();
      const waiter = observe(h.pool.acquire());
      h.pool.release(a);
      const later = observe(h.pool.acquire({ timeoutMs: 50 }));
      await flush();
      expect((waiter.value as PooledContainer).id).toBe(a.id);
      await advance(50);
      expect(later.error).toBeInstanceOf(AcquireTimeoutError);
    });
  });

  // ---------------------------------------------------------------- release

  describe('release', () => {
    it('single-use: removes the container in the background (after the current task) and refills', async () => {
      const h = build({ size: 1 });
      await h.pool.initialize();
      const c = await h.pool.acquire();
      await flush();
      expect(h.pool.stats()).toMatchObject({ idle: 1, leased: 1 });
      h.pool.release(c);
      h.pool.release(c);
      expect(c.state).toBe('destroying');
      expect(h.source.removeCalls).toBe(0);
      expect(h.pool.stats()).toMatchObject({ leased: 0, destroying: 1 });
      await flush();
      expect(h.source.removeCounts.get(c.id)).toBe(1);
      expect(h.pool.stats()).toMatchObject({ idle: 1, leased: 0, destroying: 0 });
      expect(h.totals.destroyed).toBe(1);
      expect(h.emitted).toContainEqual({ event: 'destroyed', payload: { reason: 'released' } });
      expect(h.source.watched(c.id)).toBe(false);
      const next = await h.pool.acquire();
      expect(next.id).not.toBe(c.id);
    });

    it('refills after a single-use release even when the pool is at its cap', async () => {
      const h = build({ size: 1, maxContainers: 1 });
      await h.pool.initialize();
      const c = await h.pool.acquire();
      await flush();
      expect(h.source.createCalls).toBe(1);
      h.pool.release(c);
      await flush();
      expect(h.source.createCalls).toBe(2);
      expect(h.pool.stats()).toMatchObject({ idle: 1 });
    });

    it('reuses the container when singleUse is false: idle again, at the front', async () => {
      // At the cap: no refill, so the released one is the newest idle container.
      const h = build({ size: 2, maxContainers: 2, singleUse: false });
      await h.pool.initialize();
      const [, second] = h.source.created;
      const c = await h.pool.acquire();
      await flush();
      h.pool.release(c);
      expect(h.pool.stats()).toMatchObject({ idle: 2, leased: 0 });
      expect(h.source.removeCalls).toBe(0);
      expect((await h.pool.acquire()).id).toBe(c.id);
      expect((await h.pool.acquire()).id).toBe(second.id);
      expect(h.source.createCalls).toBe(2);
    });

    it('a reusable release serves a waiter at once', async () => {
      const h = build({ size: 0, maxContainers: 1, singleUse: false });
      await h.pool.initialize();
      const c = await h.pool.acquire();
      const waiter = observe(h.pool.acquire());
      h.pool.release(c);
      await flush();
      expect((waiter.value as PooledContainer).id).toBe(c.id);
      expect(h.source.createCalls).toBe(1);
    });

    it.each<[string, (c: PooledContainer, h: WarmPoolHarness) => unknown]>([
      ['tainted', (c) => (c.tainted = true)],
      ['with an execution still running', (c, h) => h.startExecution(c)],
      ['expired', () => jest.advanceTimersByTime(60_000)],
    ])('never reuses a container %s', async (_what, spoil) => {
      const h = build({ size: 1, singleUse: false }, (s) => (s.lifetimeMs = 30_000));
      await h.pool.initialize();
      const c = await h.pool.acquire();
      spoil(c, h);
      h.pool.release(c);
      await flush();
      expect(h.source.removedIds).toContain(c.id);
      expect(h.emitted).toContainEqual({ event: 'destroyed', payload: { reason: 'released' } });
      const next = await h.pool.acquire();
      expect(next.id).not.toBe(c.id);
    });

    it('ignores a container that is not leased', async () => {
      const h = build({ size: 1, singleUse: false });
      await h.pool.initialize();
      const c = await h.pool.acquire();
      h.pool.release(c);
      h.pool.release(c);
      expect(h.pool.stats()).toMatchObject({ idle: 1, leased: 0, destroying: 0 });
    });
  });

  // ---------------------------------------------------------------- containers dying

  describe('containers that die outside the pool', () => {
    it('an idle container that dies is never handed out, counts as lost and is replaced', async () => {
      const h = build({ size: 2 });
      await h.pool.initialize();
      await advance(EARLY_DEATH_MS);
      const [dead, alive] = h.source.created;
      h.source.die(dead.id, 'killed by an operator');
      await flush();
      expect(h.totals.containersLost).toBe(1);
      expect(h.source.removeCounts.get(dead.id)).toBe(1);
      expect(h.log.messages('warn').join('\n')).toContain('lost: killed by an operator');
      expect(h.emitted).toContainEqual({ event: 'destroyed', payload: { reason: 'lost' } });
      expect(h.source.engineAnswersCalls).toBe(0);
      expect(h.pool.stats()).toMatchObject({ idle: 2, lastError: null });
      const c = await h.pool.acquire();
      expect(c.id).toBe(alive.id);
    });

    it('a death reported twice counts once', async () => {
      const h = build({ size: 1 }, (s) => (s.manualRemoves = true));
      await h.pool.initialize();
      await advance(EARLY_DEATH_MS);
      const [dead] = h.source.created;
      h.source.die(dead.id, 'it exited');
      h.source.die(dead.id, 'it was removed');
      await flush();
      expect(h.totals.containersLost).toBe(1);
      expect(h.source.removeCounts.get(dead.id)).toBe(1);
    });

    it('a leased container that dies fails its executions with ContainerLostError naming it', async () => {
      const h = build({ size: 1 });
      await h.pool.initialize();
      const c = await h.pool.acquire();
      const e = h.startExecution(c);
      h.source.die(c.id, 'the engine restarted');
      expect(e.killedWith).toBeInstanceOf(ContainerLostError);
      expect(e.killedWith?.message).toContain(c.name);
      expect(e.killedWith?.message).toContain('the engine restarted');
      expect(c.lostReason).toBe('the engine restarted');
      await flush();
      expect(h.source.removedIds).toContain(c.id);
      // Not a failed create, however young: it was leased.
      expect(h.source.engineAnswersCalls).toBe(0);
      h.pool.release(c);
      expect(h.pool.stats()).toMatchObject({ leased: 0, destroying: 0 });
      expect(h.totals.containersLost).toBe(1);
    });

    it('a container whose removal ends its lifeline is not counted lost', async () => {
      const h = build({ size: 1 }, (s) => (s.dieOnRemove = true));
      await h.pool.initialize();
      const c = await h.pool.acquire();
      h.pool.release(c);
      await flush();
      expect(h.source.removedIds).toContain(c.id);
      expect(h.totals.containersLost).toBe(0);
    });

    it('an OOM report reaches the container (and wakes whoever waits for news)', async () => {
      const h = build({ size: 1 });
      await h.pool.initialize();
      const c = await h.pool.acquire();
      const news = observe(c.waitForNews(60_000));
      h.source.oom(c.id);
      await flush();
      expect(news.settled).toBe(true);
      expect(c.oomEvents).toBe(1);
      expect(c.lostReason).toBeNull();
    });

    describe('the early-death rule: an idle container dying < EARLY_DEATH_MS after its start', () => {
      it('is a failed create: back-off before the next create, and the streak ends once one lives on', async () => {
        const h = build({ size: 1, replenishIntervalMs: 1_000 }, (s) => (s.manualRemoves = true));
        await h.pool.initialize();
        const [young] = h.source.created;
        h.source.die(young.id, 'exited at once');
        await flush();
        expect(h.source.engineAnswersCalls).toBe(1);
        expect(h.totals.containersLost).toBe(1);
        expect(h.pool.stats().lastError).toMatch(/exited 0 ms after its start \(exited at once\)/);
        expect(h.log.messages('error').join('\n')).toContain('retrying with back-off');
        h.source.pendingRemoves[0].finish();
        await flush();
        expect(h.source.createCalls).toBe(1);
        await advance(249);
        expect(h.source.createCalls).toBe(1);
        await advance(1);
        expect(h.source.createCalls).toBe(2);
        expect(h.pool.stats().idle).toBe(1);
        // A create that succeeds does not end the streak: only a container that lives on.
        expect(h.pool.stats().lastError).not.toBeNull();
        await advance(EARLY_DEATH_MS + 1_000);
        expect(h.pool.stats().lastError).toBeNull();
        expect(h.log.messages('log')).toContain('recovered after 1 failure(s)');
      });

      it('containers that keep dying young are recreated at 250, 500, 1000 ms: no loop', async () => {
        const h = build({ size: 1 }, (s) => (s.manualRemoves = true));
        await h.pool.initialize();
        for (const delay of [250, 500, 1_000]) {
          const latest = h.source.created[h.source.created.length - 1];
          h.source.die(latest.id, 'exited at once');
          await flush();
          h.source.pendingRemoves[0].finish();
          await flush();
          const calls = h.source.createCalls;
          await advance(delay - 1);
          expect(h.source.createCalls).toBe(calls);
          await advance(1);
          expect(h.source.createCalls).toBe(calls + 1);
        }
        expect(h.totals.containersLost).toBe(3);
      });

      it('is not a failed create when the engine does not answer (a restart kills every container)', async () => {
        const h = build({ size: 1 });
        await h.pool.initialize();
        const [young] = h.source.created;
        h.source.answers = false;
        h.source.die(young.id, 'engine restart');
        await flush();
        expect(h.source.engineAnswersCalls).toBe(1);
        expect(h.totals.containersLost).toBe(1);
        expect(h.log.messages('error').join('\n')).not.toContain('after its start');
        // The engine was marked down: the pool prepares again before it creates, without a back-off.
        expect(h.engine.markedDown.some((e) => e instanceof EngineUnavailableError)).toBe(true);
        expect(h.source.prepareCalls).toBe(2);
        expect(h.source.createCalls).toBe(2);
        expect(h.pool.stats()).toMatchObject({ idle: 1, lastError: null, engineAvailable: true });
      });

      it('does not apply to a container older than EARLY_DEATH_MS', async () => {
        const h = build({ size: 1 });
        await h.pool.initialize();
        await advance(EARLY_DEATH_MS);
        h.source.die(h.source.created[0].id);
        await flush();
        expect(h.source.engineAnswersCalls).toBe(0);
        expect(h.source.createCalls).toBe(2);
        expect(h.pool.stats().lastError).toBeNull();
      });
    });
  });

  // ---------------------------------------------------------------- pool-wide errors

  describe('pool-wide errors', () => {
    it('the engine down at start: initialize rejects, acquires fail fast, nothing is created', async () => {
      const h = build({ size: 2 }, (s) => (s.prepareError = engineDown()));
      await expect(h.pool.initialize()).rejects.toBeInstanceOf(EngineUnavailableError);
      expect(h.engine.available).toBe(false);
      await expect(h.pool.acquire()).rejects.toBeInstanceOf(EngineUnavailableError);
      expect(h.pool.stats()).toMatchObject({ engineAvailable: false, waiting: 0 });
      expect(h.pool.stats().lastError).toMatch(/Docker engine unavailable/);
      expect(h.source.createCalls).toBe(0);
      expect(h.log.messages('error')).toHaveLength(1);
    });

    it.each([
      ['ImageUnavailableError', imageMissing],
      ['SandboxUnsupportedError', noSeccomp],
    ])(
      '%s from prepare: initialize rejects with it and acquires fail fast',
      async (_name, make) => {
        const error = make();
        const h = build({ size: 2 }, (s) => (s.prepareError = error));
        await expect(h.pool.initialize()).rejects.toBe(error);
        expect(h.engine.available).toBe(true);
        await expect(h.pool.acquire()).rejects.toBe(error);
        expect(h.pool.unavailable()).toBe(error);
        expect(h.source.createCalls).toBe(0);
      },
    );

    it.each([
      ['EngineUnavailableError', engineDown],
      ['ImageUnavailableError', imageMissing],
      ['SandboxUnsupportedError', noSeccomp],
    ])('%s from a create rejects the waiters and makes acquire fail fast', async (_name, make) => {
      const h = build({ size: 0, maxContainers: 1 }, (s) => (s.manualCreates = true));
      await h.pool.initialize();
      const w1 = observe(h.pool.acquire());
      const w2 = observe(h.pool.acquire());
      await flush();
      const error = make();
      h.source.nextCreate().fail(error);
      await flush();
      expect(w1.error).toBe(error);
      expect(w2.error).toBe(error);
      expect(h.pool.stats().waiting).toBe(0);
      await expect(h.pool.acquire()).rejects.toBe(error);
      expect(h.totals.failedCreates).toBe(1);
      expect(h.emitted).toContainEqual({ event: 'createFailed', payload: { error } });
    });

    it('a create failing for another reason keeps the waiters, retries after the back-off and serves them', async () => {
      const h = build({ size: 0 }, (s) => (s.manualCreates = true));
      await h.pool.initialize();
      const w = observe(h.pool.acquire());
      await flush();
      h.source.nextCreate().fail(new Error('OCI runtime create failed: EAGAIN'));
      await flush();
      expect(w.settled).toBe(false);
      expect(h.pool.stats().lastError).toMatch(/Could not create a sandbox container: OCI runtime/);
      expect(h.pool.unavailable()).toBeNull();
      await advance(249);
      expect(h.source.createCalls).toBe(1);
      await advance(1);
      expect(h.source.createCalls).toBe(2);
      h.source.nextCreate().succeed();
      await flush();
      expect(w.value).toBeDefined();
      expect(h.pool.stats().lastError).toBeNull();
      expect(h.log.messages('log')).toContain('recovered after 1 failure(s)');
    });

    it('doubles the back-off with each failure in a row and logs the streak once as an error', async () => {
      const h = build({ size: 1 }, (s) => (s.createError = new ContainerCreateError('boom')));
      await h.pool.initialize();
      expect(h.source.createCalls).toBe(1);
      const starts: number[] = [];
      for (const delay of [250, 500, 1_000, 2_000]) {
        const calls = h.source.createCalls;
        await advance(delay - 1);
        expect(h.source.createCalls).toBe(calls);
        await advance(1);
        expect(h.source.createCalls).toBe(calls + 1);
        starts.push(delay);
      }
      expect(starts).toHaveLength(4);
      expect(h.log.messages('error')).toHaveLength(1);
      expect(h.log.messages('debug').join('\n')).toContain(
        'still failing (5x, next try in 4000 ms)',
      );
    });

    it('keeps handing out idle containers while creates fail with a pool-wide error (engine up)', async () => {
      const h = build({ size: 2, maxContainers: 4 });
      await h.pool.initialize();
      h.source.createError = imageMissing();
      await expect(h.pool.acquire()).resolves.toBeDefined();
      await flush();
      expect(h.totals.failedCreates).toBe(1);
      await expect(h.pool.acquire()).resolves.toBeDefined();
      await expect(h.pool.acquire()).rejects.toBeInstanceOf(ImageUnavailableError);
    });

    it('fails fast while the engine is down, even with idle containers', async () => {
      const h = build({ size: 2 });
      await h.pool.initialize();
      h.engine.goDown();
      expect(h.pool.stats()).toMatchObject({ idle: 2, engineAvailable: false });
      await expect(h.pool.acquire()).rejects.toBeInstanceOf(EngineUnavailableError);
    });

    it('a removal failing because the engine is down marks the engine down; the container is let go', async () => {
      const h = build({ size: 1 });
      await h.pool.initialize();
      const c = await h.pool.acquire();
      h.source.removeErrors.set(c.id, engineDown());
      h.pool.release(c);
      await flush();
      expect(h.source.letGoIds).toEqual([c.id]);
      expect(h.engine.markedDown).toEqual([h.source.removeErrors.get(c.id)]);
      expect(h.pool.stats()).toMatchObject({ destroying: 0, leased: 0 });
      expect(h.totals.destroyed).toBe(1);
      // The engine went down: the pool prepared again before its next create.
      expect(h.source.prepareCalls).toBe(2);
    });

    it('a removal refused for another reason lets the container go and leaves the engine up', async () => {
      const h = build({ size: 1 });
      await h.pool.initialize();
      const c = await h.pool.acquire();
      h.source.removeErrors.set(c.id, new ContainerRemoveError(c.name, 'device busy'));
      await h.pool.destroy(c);
      expect(h.source.letGoIds).toEqual([c.id]);
      expect(h.engine.available).toBe(true);
      expect(h.log.messages('warn').join('\n')).toMatch(/removing fake-1 failed: .*letting it go/);
      expect(h.pool.stats()).toMatchObject({ destroying: 0, leased: 0 });
    });
  });

  // ---------------------------------------------------------------- recovery

  describe('recovery', () => {
    it('serves again after the source prepares again (retried at the end of the back-off)', async () => {
      const h = build({ size: 2 }, (s) => (s.prepareError = imageMissing()));
      await expect(h.pool.initialize()).rejects.toBeInstanceOf(ImageUnavailableError);
      h.source.prepareError = null;
      await advance(249);
      expect(h.source.prepareCalls).toBe(1);
      await advance(1);
      expect(h.source.prepareCalls).toBe(2);
      expect(h.pool.stats()).toMatchObject({ idle: 2, lastError: null });
      expect(h.log.messages('log')).toContain('recovered after 1 failure(s)');
      await expect(h.pool.acquire()).resolves.toBeDefined();
    });

    it('keeps retrying the preparation with back-off while the engine is down', async () => {
      const h = build({ size: 1 }, (s) => (s.prepareError = engineDown()));
      await expect(h.pool.initialize()).rejects.toBeInstanceOf(EngineUnavailableError);
      for (const [delay, calls] of [
        [250, 2],
        [500, 3],
        [1_000, 4],
      ]) {
        await advance(delay - 1);
        expect(h.source.prepareCalls).toBe(calls - 1);
        await advance(1);
        expect(h.source.prepareCalls).toBe(calls);
      }
      expect(h.source.createCalls).toBe(0);
    });

    it("'reconnected' from the engine status retries at once, skipping the back-off", async () => {
      const h = build({ size: 2 }, (s) => (s.prepareError = engineDown()));
      await expect(h.pool.initialize()).rejects.toBeInstanceOf(EngineUnavailableError);
      expect(h.engine.available).toBe(false);
      h.source.prepareError = null;
      h.engine.reconnect();
      await flush();
      expect(h.source.prepareCalls).toBe(2);
      expect(h.pool.stats()).toMatchObject({ idle: 2, engineAvailable: true, lastError: null });
      await expect(h.pool.acquire()).resolves.toBeDefined();
    });

    it("'reconnected' while the engine is available changes nothing", async () => {
      const h = build({ size: 1 });
      await h.pool.initialize();
      h.engine.reconnect();
      await flush();
      expect(h.source.prepareCalls).toBe(1);
      expect(h.source.createCalls).toBe(1);
    });

    it("'down' makes the pool prepare again before it creates", async () => {
      const h = build({ size: 1 });
      await h.pool.initialize();
      h.engine.goDown();
      expect(h.pool.stats().lastError).toMatch(/Docker engine unavailable/);
      h.engine.reconnect();
      await flush();
      expect(h.source.prepareCalls).toBe(2);
      expect(h.pool.stats()).toMatchObject({ lastError: null, engineAvailable: true });
      await expect(h.pool.acquire()).resolves.toBeDefined();
    });

    it('prepares once however many callers need it while it is in flight', async () => {
      let open!: () => void;
      const h = build({ size: 1 }, (s) => {
        s.prepareGate = new Promise<void>((r) => (open = r));
      });
      const init = observe(h.pool.initialize());
      const acquires = [observe(h.pool.acquire()), observe(h.pool.acquire())];
      const replenish = observe(h.pool.replenish());
      await flush();
      expect(h.source.prepareCalls).toBe(1);
      open();
      await flush();
      expect(init).toMatchObject({ settled: true, error: undefined });
      expect(replenish.error).toBeUndefined();
      expect(acquires.every((a) => a.value !== undefined)).toBe(true);
      expect(h.source.prepareCalls).toBe(1);
    });
  });

  // ---------------------------------------------------------------- resize

  describe('resize', () => {
    it.each<[Partial<{ size: number; maxContainers: number }>, string, RegExp]>([
      [{ maxContainers: 0 }, 'maxContainers', /at least 1/],
      [{ maxContainers: 1.5 }, 'maxContainers', /integer/],
      [{ size: -1 }, 'size', /at least 0/],
      [{ size: 0.5 }, 'size', /integer/],
      [{ size: 5 }, 'size', /must not exceed maxContainers \(4\)/],
      [{ size: 5, maxContainers: 3 }, 'size', /must not exceed maxContainers \(3\)/],
      [{ maxContainers: 1 }, 'maxContainers', /must be at least size \(2\)/],
    ])('rejects %j naming %s', async (change, field, detail) => {
      const h = build({ size: 2, maxContainers: 4 });
      await h.pool.initialize();
      let err: unknown;
      try {
        h.pool.resize(change);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(InvalidRequestError);
      expect(err).toMatchObject({ field });
      expect((err as InvalidRequestError).detail).toMatch(detail);
      expect(h.pool.stats()).toMatchObject({ size: 2, maxContainers: 4, idle: 2 });
    });

    it('growing tops up to the new size', async () => {
      const h = build({ size: 1, maxContainers: 4 });
      await h.pool.initialize();
      const stats = h.pool.resize({ size: 3 });
      expect(stats).toMatchObject({ size: 3, maxContainers: 4 });
      await flush();
      expect(h.pool.stats().idle).toBe(3);
      expect(h.log.messages('log')).toContain('resized: size=3 maxContainers=4');
    });

    it('shrinking removes idle surplus only, never a leased container', async () => {
      const h = build({ size: 4, maxContainers: 4 });
      await h.pool.initialize();
      const leased = [await h.pool.acquire(), await h.pool.acquire()];
      await flush();
      expect(h.pool.stats()).toMatchObject({ idle: 2, leased: 2 });
      const stats = h.pool.resize({ size: 1 });
      expect(stats).toMatchObject({ size: 1, idle: 1, leased: 2, destroying: 1 });
      await flush();
      expect(h.source.removeCalls).toBe(1);
      expect(h.emitted.filter((e) => e.event === 'destroyed')).toEqual([
        { event: 'destroyed', payload: { reason: 'resize' } },
      ]);
      for (const c of leased) expect(c.state).toBe('leased');
      expect(h.pool.stats()).toMatchObject({ idle: 1, leased: 2, destroying: 0 });
    });

    it('lowering maxContainers removes nothing, but no create starts until the pool is under it', async () => {
      const h = build({ size: 0, maxContainers: 3 });
      await h.pool.initialize();
      const held = [await h.pool.acquire(), await h.pool.acquire(), await h.pool.acquire()];
      h.pool.resize({ maxContainers: 1 });
      const waiter = observe(h.pool.acquire());
      h.pool.release(held[0]);
      await flush();
      expect(h.source.createCalls).toBe(3);
      expect(waiter.settled).toBe(false);
      h.pool.release(held[1]);
      await flush();
      expect(h.source.createCalls).toBe(3);
      h.pool.release(held[2]);
      await flush();
      expect(h.source.createCalls).toBe(4);
      expect(waiter.value).toBeDefined();
    });
  });

  // ---------------------------------------------------------------- drain / resume

  describe('drain and resume', () => {
    it('drain rejects waiters, removes idle containers and stops refilling; resume refills', async () => {
      const h = build({ size: 2, maxContainers: 3 });
      await h.pool.initialize();
      const leased = await h.pool.acquire();
      await flush();
      const held = [await h.pool.acquire(), await h.pool.acquire()];
      const waiter = observe(h.pool.acquire());
      await flush();
      expect(h.pool.stats()).toMatchObject({ leased: 3, waiting: 1 });
      const stats = await h.pool.drain();
      expect(waiter.error).toBeInstanceOf(PoolDrainedError);
      expect(stats).toMatchObject({ draining: true, idle: 0, waiting: 0, leased: 3 });
      await expect(h.pool.acquire()).rejects.toBeInstanceOf(PoolDrainedError);
      expect(h.pool.unavailable()).toBeInstanceOf(PoolDrainedError);

      const createsBefore = h.source.createCalls;
      h.pool.release(leased);
      for (const c of held) h.pool.release(c);
      await flush();
      expect(h.source.createCalls).toBe(createsBefore);
      expect(h.pool.stats()).toMatchObject({ idle: 0, leased: 0, destroying: 0 });

      const resumed = h.pool.resume();
      expect(resumed.draining).toBe(false);
      await flush();
      expect(h.pool.stats()).toMatchObject({ idle: 2 });
      await expect(h.pool.acquire()).resolves.toBeDefined();
    });

    it('a container that arrives while draining is removed at once', async () => {
      const h = build({ size: 1 }, (s) => (s.manualCreates = true));
      await startHeld(h);
      await h.pool.acquire();
      await flush();
      expect(h.source.pendingCreates).toHaveLength(1);
      await h.pool.drain();
      const made = h.source.nextCreate().succeed();
      await flush();
      expect(h.source.removedIds).toContain(made.id);
      expect(h.emitted).toContainEqual({ event: 'destroyed', payload: { reason: 'not needed' } });
      expect(h.pool.stats()).toMatchObject({ idle: 0 });
    });

    it('does not reuse a released container while draining', async () => {
      const h = build({ size: 1, singleUse: false });
      await h.pool.initialize();
      const c = await h.pool.acquire();
      await h.pool.drain();
      h.pool.release(c);
      await flush();
      expect(h.source.removedIds).toContain(c.id);
      expect(h.pool.stats().idle).toBe(0);
    });

    it('resume retries at once, skipping the back-off', async () => {
      const h = build({ size: 1 }, (s) => (s.createError = new ContainerCreateError('boom')));
      await h.pool.initialize();
      expect(h.source.createCalls).toBe(1);
      await h.pool.drain();
      h.source.createError = null;
      h.pool.resume();
      await flush();
      expect(h.source.createCalls).toBe(2);
      expect(h.pool.stats()).toMatchObject({ idle: 1, lastError: null });
    });
  });

  // ---------------------------------------------------------------- replenish

  describe('replenish', () => {
    it('tops up now, skipping the wait for running executions, and resolves when full', async () => {
      const h = build({ size: 4, maxContainers: 8 }, (s) => (s.manualCreates = true));
      await startHeld(h);
      const c = await h.pool.acquire();
      h.startExecution(c);
      await flush();
      // Healthy stock (3 of 4) while an execution runs: the top-up waits.
      expect(h.source.pendingCreates).toHaveLength(0);
      const r = observe(h.pool.replenish());
      await flush();
      expect(h.source.pendingCreates).toHaveLength(1);
      expect(r.settled).toBe(false);
      h.source.nextCreate().succeed();
      await flush();
      expect(r.value).toMatchObject({ idle: 4, leased: 1 });
    });

    it('skips the back-off', async () => {
      const h = build({ size: 1 }, (s) => (s.createError = new ContainerCreateError('boom')));
      await h.pool.initialize();
      h.source.createError = null;
      const stats = await h.pool.replenish();
      expect(h.source.createCalls).toBe(2);
      expect(stats).toMatchObject({ idle: 1, lastError: null });
    });

    it('resolves with the error in the stats when creates fail for another reason', async () => {
      const h = build({ size: 2 }, (s) => (s.createError = new ContainerCreateError('EAGAIN')));
      await h.pool.initialize();
      const stats = await h.pool.replenish();
      expect(stats.idle).toBe(0);
      expect(stats.lastError).toMatch(/EAGAIN/);
    });

    it('throws a pool-wide error', async () => {
      const error = imageMissing();
      const h = build({ size: 1 }, (s) => (s.createError = error));
      await expect(h.pool.initialize()).rejects.toBe(error);
      await expect(h.pool.replenish()).rejects.toBe(error);
      // The image error made the pool prepare again first.
      expect(h.source.prepareCalls).toBe(2);
    });

    it('throws the preparation error', async () => {
      const h = build({ size: 1 }, (s) => (s.prepareError = noSeccomp()));
      await expect(h.pool.initialize()).rejects.toBeInstanceOf(SandboxUnsupportedError);
      await expect(h.pool.replenish()).rejects.toBeInstanceOf(SandboxUnsupportedError);
    });

    it('initializes a pool that was not started', async () => {
      const h = build({ size: 2 });
      const stats = await h.pool.replenish();
      expect(h.source.startCalls).toBe(1);
      expect(stats.idle).toBe(2);
    });

    it('rejects once the pool is shutting down', async () => {
      const h = build({ size: 1 });
      await h.pool.initialize();
      void h.pool.shutdown();
      await expect(h.pool.replenish()).rejects.toBeInstanceOf(PoolShuttingDownError);
    });
  });

  // ---------------------------------------------------------------- refill timing

  describe('the wait for running executions', () => {
    it('a healthy stock tops up once the executions end', async () => {
      const h = build({ size: 4, maxContainers: 8 });
      await h.pool.initialize();
      const c = await h.pool.acquire();
      const e = h.startExecution(c);
      await flush();
      expect(h.source.createCalls).toBe(4);
      e.finish();
      await flush();
      expect(h.source.createCalls).toBe(5);
    });

    it('waits at most REFILL_DEFER_MAX_MS', async () => {
      const h = build({ size: 4, maxContainers: 8 });
      await h.pool.initialize();
      h.startExecution(await h.pool.acquire());
      await flush();
      await advance(1_999);
      expect(h.source.createCalls).toBe(4);
      await advance(1);
      expect(h.source.createCalls).toBe(5);
    });

    it('a low stock refills at once while executions run', async () => {
      const h = build({ size: 2, maxContainers: 8 });
      await h.pool.initialize();
      h.startExecution(await h.pool.acquire());
      h.startExecution(await h.pool.acquire());
      await flush();
      expect(h.source.createCalls).toBe(4);
    });
  });

  // ---------------------------------------------------------------- tick

  describe('the periodic tick', () => {
    it('recycles expired idle containers and refills', async () => {
      const h = build({ size: 2, replenishIntervalMs: 1_000 }, (s) => (s.lifetimeMs = 2_500));
      await h.pool.initialize();
      const first = h.source.created.map((c) => c.id);
      await advance(2_000);
      expect(h.source.removeCalls).toBe(0);
      await advance(1_000);
      expect(h.source.removedIds.sort()).toEqual([...first].sort());
      expect(h.emitted.filter((e) => e.event === 'destroyed')).toHaveLength(2);
      expect(h.pool.stats()).toMatchObject({ idle: 2 });
    });

    it('trims idle surplus (reused containers beyond size)', async () => {
      const h = build({ size: 1, maxContainers: 4, singleUse: false, replenishIntervalMs: 1_000 });
      await h.pool.initialize();
      const a = await h.pool.acquire();
      const b = await h.pool.acquire();
      h.pool.release(a);
      h.pool.release(b);
      await flush();
      expect(h.pool.stats().idle).toBeGreaterThanOrEqual(2);
      await advance(1_000);
      expect(h.pool.stats()).toMatchObject({ idle: 1 });
      expect(h.emitted.some((e) => (e.payload as { reason?: string }).reason === 'surplus')).toBe(
        true,
      );
    });

    it('does nothing after shutdown', async () => {
      const h = build({ size: 1, replenishIntervalMs: 1_000 });
      await h.pool.initialize();
      await h.close();
      const calls = h.source.calls.length;
      await advance(5_000);
      expect(h.source.calls).toHaveLength(calls);
    });
  });

  // ---------------------------------------------------------------- shutdown

  describe('shutdown', () => {
    it('rejects waiters, gives executions shutdownGraceMs then kills them, awaits creates, removes everything', async () => {
      const h = build({ size: 1, maxContainers: 2, shutdownGraceMs: 1_000 }, (s) => {
        s.manualCreates = true;
      });
      await startHeld(h);
      const a = await h.pool.acquire();
      await flush();
      expect(h.source.pendingCreates).toHaveLength(1);
      const exec = h.startExecution(a);
      const waiter = observe(h.pool.acquire());
      await flush();
      expect(h.pool.stats()).toMatchObject({ leased: 1, creating: 1, waiting: 1 });
      const mark = h.source.calls.length;

      const done = observe(h.pool.shutdown());
      expect(h.pool.isShuttingDown).toBe(true);
      await flush();
      expect(waiter.error).toBeInstanceOf(PoolShuttingDownError);
      await expect(h.pool.acquire()).rejects.toBeInstanceOf(PoolShuttingDownError);
      expect(h.log.messages('log').join('\n')).toContain(
        'shutdown: waiting up to 1000 ms for 1 execution(s)',
      );

      await advance(999);
      expect(exec.killedWith).toBeNull();
      expect(h.source.removeCalls).toBe(0);
      await advance(1);
      expect(exec.killedWith).toBeInstanceOf(PoolShuttingDownError);
      await flush();
      // The create in flight is awaited.
      expect(done.settled).toBe(false);
      expect(h.source.removeCalls).toBe(0);
      const late = h.source.nextCreate().succeed();
      await flush();
      expect(done).toMatchObject({ settled: true, error: undefined });
      expect(h.source.calls.slice(mark)).toEqual([
        `remove ${late.name}`,
        `remove ${a.name}`,
        'removeLeftovers',
      ]);
      expect(h.source.live.size).toBe(0);
      expect(h.pool.stats()).toMatchObject({
        idle: 0,
        leased: 0,
        creating: 0,
        destroying: 0,
        waiting: 0,
        shuttingDown: true,
      });
      expect(h.totals).toMatchObject({ created: 2, destroyed: 2 });
    });

    it('does not wait out the grace when the executions end sooner', async () => {
      const h = build({ size: 1, shutdownGraceMs: 60_000 });
      await h.pool.initialize();
      const exec = h.startExecution(await h.pool.acquire());
      const done = observe(h.pool.shutdown());
      await flush();
      expect(done.settled).toBe(false);
      exec.finish();
      await flush();
      expect(done.settled).toBe(true);
      expect(exec.killedWith).toBeNull();
    });

    it('is safe twice: one shutdown, each container removed once', async () => {
      const h = build({ size: 2 });
      await h.pool.initialize();
      await h.pool.acquire();
      const first = h.pool.shutdown();
      const second = h.pool.shutdown();
      expect(second).toBe(first);
      await Promise.all([first, second]);
      await h.pool.shutdown();
      for (const c of h.source.created) expect(h.source.removeCounts.get(c.id)).toBe(1);
      expect(h.source.removeLeftoversCalls).toBe(1);
      expect(h.source.removeCalls).toBe(2);
      expect(h.pool.unavailable()).toBeInstanceOf(PoolShuttingDownError);
    });

    it('skips removeLeftovers when the engine is unavailable, and survives its failure otherwise', async () => {
      const down = build({ size: 1 });
      await down.pool.initialize();
      down.engine.goDown();
      await down.pool.shutdown();
      expect(down.source.removeLeftoversCalls).toBe(0);

      const failing = build({ size: 1 }, (s) => (s.leftoversError = engineDown()));
      await failing.pool.initialize();
      await expect(failing.pool.shutdown()).resolves.toBeUndefined();
      expect(failing.source.removeLeftoversCalls).toBe(1);
    });

    it('completes when removals fail (the containers are let go)', async () => {
      const h = build({ size: 2 });
      await h.pool.initialize();
      for (const c of h.source.created) {
        h.source.removeErrors.set(c.id, new ContainerRemoveError(c.name, 'busy'));
      }
      await h.pool.shutdown();
      expect(h.source.letGoIds).toHaveLength(2);
      expect(h.pool.stats()).toMatchObject({ idle: 0, destroying: 0 });
    });

    it('waits for removals in flight', async () => {
      const h = build({ size: 1 }, (s) => (s.manualRemoves = true));
      await h.pool.initialize();
      const c = await h.pool.acquire();
      h.pool.release(c);
      await flush();
      const done = observe(h.pool.shutdown());
      await flush();
      expect(done.settled).toBe(false);
      h.source.settleAll();
      await flush();
      // The refilled idle container's removal is held too.
      h.source.settleAll();
      await flush();
      expect(done.settled).toBe(true);
      expect(h.source.live.size).toBe(0);
    });

    it('stops listening to the engine status and starts no create afterwards', async () => {
      const h = build({ size: 1 });
      await h.pool.initialize();
      expect(h.engine.listenerCount).toBe(1);
      await h.pool.shutdown();
      expect(h.engine.listenerCount).toBe(0);
      const calls = h.source.createCalls;
      h.engine.reconnect();
      h.pool.resume();
      await flush();
      expect(h.source.createCalls).toBe(calls);
    });

    it('ignores creates that fail during shutdown', async () => {
      const h = build({ size: 1 }, (s) => (s.manualCreates = true));
      const init = observe(h.pool.initialize());
      await flush();
      const done = observe(h.pool.shutdown());
      h.source.nextCreate().fail(new ContainerCreateError('late'));
      await flush();
      expect(done.settled).toBe(true);
      expect(init.settled).toBe(true);
      expect(h.pool.stats().lastError).toBeNull();
      expect(h.totals.failedCreates).toBe(1);
    });
  });

  // ---------------------------------------------------------------- stats and friends

  describe('stats, containers, find', () => {
    it('counts every state and the totals', async () => {
      const h = build({ size: 2, maxContainers: 4 }, (s) => {
        s.manualCreates = true;
        s.manualRemoves = true;
      });
      await startHeld(h);
      const a = await h.pool.acquire();
      await flush();
      expect(h.pool.stats()).toEqual({
        name: 'test',
        profile: 'test',
        image: 'fake:latest',
        idle: 1,
        leased: 1,
        creating: 1,
        destroying: 0,
        waiting: 0,
        size: 2,
        maxContainers: 4,
        draining: false,
        shuttingDown: false,
        engineAvailable: true,
        lastError: null,
        totals: expect.objectContaining({
          created: 2,
          destroyed: 0,
          failedCreates: 0,
          acquired: 1,
          acquireTimeouts: 0,
          containersLost: 0,
        }),
      });
      h.source.nextCreate().fail(new ContainerCreateError('EAGAIN'));
      h.pool.release(a);
      await flush();
      expect(h.pool.stats()).toMatchObject({ idle: 1, leased: 0, creating: 0, destroying: 1 });
      expect(h.pool.stats().lastError).toMatch(/EAGAIN/);
      h.source.pendingRemoves[0].finish();
      await flush();
      expect(h.pool.stats().totals).toMatchObject({ created: 2, destroyed: 1, failedCreates: 1 });
    });

    it('counts into the totals object it was given and hands out copies', async () => {
      const h = build({ size: 1 });
      await h.pool.initialize();
      const stats = h.pool.stats();
      expect(stats.totals).not.toBe(h.totals);
      stats.totals.created = 99;
      expect(h.pool.stats().totals.created).toBe(1);
      h.totals.orphansRemoved = 3;
      expect(h.pool.stats().totals.orphansRemoved).toBe(3);
    });

    it('lists containers, creates in flight with the expiry they will have', async () => {
      const h = build(
        { size: 1, containerLifetimeMs: 600_000, maxExecTimeoutMs: 60_000 },
        (s) => (s.manualCreates = true),
      );
      await startHeld(h);
      await h.pool.acquire();
      await flush();
      const rows = h.pool.containers();
      expect(rows.map((r) => r.state).sort()).toEqual(['creating', 'leased']);
      const creating = rows.find((r) => r.state === 'creating')!;
      expect(creating.id).toBe('');
      expect(creating.image).toBe('fake:latest');
      expect(creating.expiry.getTime() - creating.createdAt.getTime()).toBe(
        600_000 - 60_000 - LIFETIME_SAFETY_MARGIN_MS,
      );
    });

    it('finds a container by name or id prefix', async () => {
      const h = build({ size: 2 });
      await h.pool.initialize();
      const [a, b] = h.source.created;
      expect(h.pool.find(a.name)?.id).toBe(a.id);
      expect(h.pool.find(b.id.slice(0, 12))?.id).toBe(b.id);
      expect(h.pool.find('nope')).toBeUndefined();
    });

    it('unavailable() says why acquires cannot be served', async () => {
      const h = build({ size: 1 });
      expect(h.pool.unavailable()).toBeNull();
      await h.pool.initialize();
      expect(h.pool.unavailable()).toBeNull();
      await h.pool.drain();
      expect(h.pool.unavailable()).toBeInstanceOf(PoolDrainedError);
      h.pool.resume();
      h.engine.goDown();
      expect(h.pool.unavailable()).toBeInstanceOf(EngineUnavailableError);
      await h.pool.shutdown();
      expect(h.pool.unavailable()).toBeInstanceOf(PoolShuttingDownError);
    });

    it('rejects only with ContainerPoolErrors', async () => {
      const h = build({ size: 0, maxContainers: 1, maxWaiters: 0 });
      await h.pool.initialize();
      await h.pool.acquire();
      const errors = await Promise.all([
        h.pool.acquire().catch((e: unknown) => e),
        h.pool.acquire({ execTimeoutMs: 1e9 }).catch((e: unknown) => e),
      ]);
      for (const e of errors) expect(e).toBeInstanceOf(ContainerPoolError);
    });
  });
});

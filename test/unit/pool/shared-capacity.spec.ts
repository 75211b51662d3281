/**
 * The limits several warm pools (profiles) of one module share: the global cap (maxContainersTotal), a
 * profile's ceiling (maxContainersTotal - sum(other profiles' size)), who gets a freed slot (a profile below its
 * size first, then waiters FIFO across profiles) and the create slots (round-robin). First SharedCapacity's
 * decision alone on plain members, then two WarmPools on fake container sources sharing one SharedCapacity.
 * Timers are jest's fake clock (setImmediate stays real for flush()), as in warm-pool.spec.ts.
 */
import {
  ImageUnavailableError,
  InvalidRequestError,
} from '../../../src/container-pool/errors/container-pool.errors';
import { SharedCapacity } from '../../../src/container-pool/pool/shared-capacity';
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

// ---------------------------------------------------------------- the decision alone

/** What a test sets of a plain member. */
interface MemberFields {
  target?: number;
  /** Its size as the others' ceilings see it (default: `target`). */
  reserved?: number;
  maxContainers?: number;
  idle?: number;
  creating?: number;
  total?: number;
  waiterTimes?: number[];
  /** What wanted() says: the creates it would start by its own rules (0: it cannot create now). */
  want?: number;
  /** Its creates in flight, as inFlight() returns them. */
  flights?: Promise<void>[];
}

/** A member whose counts the test sets. */
function member(name: string, fields: MemberFields = {}) {
  const m = {
    name,
    target: 0,
    maxContainers: 100,
    idle: 0,
    creating: 0,
    total: 0,
    waiterTimes: [] as number[],
    want: 100,
    flights: [] as Promise<void>[],
    pumps: 0,
    trims: 0,
    ...fields,
    reserved: fields.reserved ?? fields.target ?? 0,
    wanted: () => m.want,
    inFlight: () => m.flights,
    trimSurplus() {
      m.trims++;
    },
    pump() {
      m.pumps++;
    },
  };
  return m;
}

describe('SharedCapacity.allocate', () => {
  it('never allows more creates than the global cap leaves free', () => {
    const cap = new SharedCapacity(5, 10);
    const a = member('a', { total: 3, waiterTimes: [1, 2, 3, 4] });
    const b = member('b', { total: 1, waiterTimes: [5, 6] });
    cap.join(a);
    cap.join(b);
    const alloc = cap.allocate();
    expect(alloc.get(a)! + alloc.get(b)!).toBe(1);
    // The one free slot goes to the oldest waiter (a's).
    expect(alloc.get(a)).toBe(1);
  });

  it("caps a profile at maxTotal minus the other profiles' size, even with slots free", () => {
    const cap = new SharedCapacity(10, 10);
    const a = member('a', { target: 1, total: 1, idle: 0, waiterTimes: [1, 2, 3, 4, 5, 6, 7, 8] });
    // b has nothing yet (not started, or failing) but its size is reserved.
    const b = member('b', { target: 4 });
    cap.join(a);
    cap.join(b);
    const alloc = cap.allocate();
    // a may hold 10 - 4 = 6: it has 1, so 5 more.
    expect(alloc.get(a)).toBe(5);
    expect(alloc.get(b)).toBe(4);
    expect(cap.allowance(a)).toBe(5);
  });

  it("keeps a profile over its size (leases) from a slot the other's size needs, even when first", () => {
    // a: size 2, burst to its ceiling 10 - 4 = 6 (all leased); b: size 4, one short after a removal.
    const cap = new SharedCapacity(10, 20);
    const a = member('a', { target: 2, total: 6, waiterTimes: [1, 2] });
    const b = member('b', { target: 4, idle: 3, total: 3 });
    cap.join(a);
    cap.join(b);
    cap.started(b, 1); // a is first in the round-robin now
    expect(cap.allowance(a)).toBe(0);
    expect(cap.allowance(b)).toBe(1);
  });

  it('gives a freed slot to a profile below its size before any waiter', () => {
    const cap = new SharedCapacity(4, 10);
    const a = member('a', { target: 0, total: 3, waiterTimes: [1] });
    const b = member('b', { target: 1, total: 0 });
    cap.join(a);
    cap.join(b);
    expect(cap.allowance(b)).toBe(1);
    expect(cap.allowance(a)).toBe(0);
  });

  it('serves waiters in FIFO order across profiles, whatever the round-robin start', () => {
    for (const [aTime, bTime] of [
      [1, 2],
      [2, 1],
    ]) {
      const cap = new SharedCapacity(3, 10);
      const a = member('a', { total: 1, waiterTimes: [aTime] });
      const b = member('b', { total: 1, waiterTimes: [bTime] });
      cap.join(a);
      cap.join(b);
      // Move the round-robin start to b and back: neither may decide who waited longer.
      for (const first of [a, b]) {
        cap.started(first === a ? b : a, 1);
        const alloc = cap.allocate();
        expect(alloc.get(aTime < bTime ? a : b)).toBe(1);
        expect(alloc.get(aTime < bTime ? b : a)).toBe(0);
      }
    }
  });

  it('hands out the create slots one at a time round-robin, from the member after the last starter', () => {
    const cap = new SharedCapacity(100, 3);
    const a = member('a', { target: 5 });
    const b = member('b', { target: 5 });
    cap.join(a);
    cap.join(b);
    expect([cap.allowance(a), cap.allowance(b)]).toEqual([2, 1]);
    cap.started(a, 2);
    // Without a's creates in flight (say they finished), b is first now.
    expect([cap.allowance(a), cap.allowance(b)]).toEqual([1, 2]);
    // Creates in flight take slots: 3 - 2 = 1, and it goes to the member after the last starter.
    a.creating = 2;
    cap.started(b, 1);
    expect([cap.allowance(a), cap.allowance(b)]).toEqual([1, 0]);
  });

  it('gives no create slot to a member that cannot create now, but keeps its share of the cap', () => {
    const cap = new SharedCapacity(6, 1);
    const a = member('a', { target: 2, waiterTimes: [1, 2, 3, 4, 5] });
    // b: its image is missing (backing off) or its engine side is being prepared.
    const b = member('b', { target: 3, want: 0 });
    cap.join(a);
    cap.join(b);
    // b would be first in the round-robin: it must not take the only slot it cannot use.
    cap.started(a, 1);
    expect(cap.allowance(b)).toBe(0);
    expect(cap.allowance(a)).toBe(1);
    // a's share stays 6 - b's size 3 = 3, even with the slots free.
    const wide = new SharedCapacity(6, 10);
    wide.join(a);
    wide.join(b);
    expect(wide.allowance(a)).toBe(3);
  });

  it("slotsHeldFor() names the others' creates only when the create slots are what stops a member", () => {
    const cap = new SharedCapacity(4, 1);
    const bCreate = Promise.resolve();
    const a = member('a', { target: 2, want: 2 });
    const b = member('b', { target: 2, creating: 1, total: 1, flights: [bCreate] });
    cap.join(a);
    cap.join(b);
    expect(cap.memberCount).toBe(2);
    // The cap would let a create; b's create holds the only slot.
    expect(cap.allowance(a)).toBe(0);
    expect(cap.slotsHeldFor(a)).toEqual([bCreate]);
    // a wants nothing (full, or holding its refill off): nothing to wait for.
    a.want = 0;
    expect(cap.slotsHeldFor(a)).toEqual([]);
    // a below its target but its ceiling (4 - b's size 2) is what stops it: nothing to wait for either.
    a.want = 2;
    a.total = 2;
    expect(cap.slotsHeldFor(a)).toEqual([]);
  });

  it('changed() pumps every member, and again when one changes something while pumping', () => {
    const cap = new SharedCapacity(10, 2);
    const b = member('b');
    const a = member('a');
    let reentered = false;
    a.pump = () => {
      a.pumps++;
      if (!reentered) {
        reentered = true;
        cap.changed();
      }
    };
    cap.join(a);
    cap.join(b);
    cap.changed();
    expect(a.pumps).toBe(2);
    expect(b.pumps).toBe(2);
  });
});

// ---------------------------------------------------------------- two warm pools sharing it

interface Profile {
  name: 'A' | 'B';
  h: WarmPoolHarness;
}

describe('SharedCapacity across two WarmPools (fake container sources)', () => {
  const harnesses: WarmPoolHarness[] = [];
  /** Every create either source saw, as `A` / `B`, in order. */
  let createOrder: string[];
  /** Every moment the global cap or a ceiling was exceeded. */
  let violations: string[];

  beforeEach(() => {
    jest.useFakeTimers({
      doNotFake: ['nextTick', 'queueMicrotask', 'setImmediate', 'clearImmediate'],
    });
    createOrder = [];
    violations = [];
  });

  afterEach(async () => {
    for (const h of harnesses.splice(0)) await h.close(() => jest.advanceTimersByTime(100));
    jest.useRealTimers();
  });

  const poolTotal = (h: WarmPoolHarness) => {
    const s = h.pool.stats();
    return s.idle + s.leased + s.creating + s.destroying;
  };
  const onEngine = (h: WarmPoolHarness) => h.source.live.size + h.source.creatingNow;

  /**
   * Two pools A and B on one SharedCapacity(maxTotal, maxConcurrentCreates) and one engine status, each on its
   * own fake source. Every create and every `check()` verifies the global cap (the pools' counts and the
   * containers on the fake engine, across both) and each pool's ceiling.
   */
  function pair(
    setup: {
      maxTotal: number;
      maxConcurrentCreates: number;
      a: Partial<WarmPoolOptions>;
      b: Partial<WarmPoolOptions>;
    },
    configure: (a: FakeContainerSource, b: FakeContainerSource) => void = () => undefined,
  ) {
    const capacity = new SharedCapacity(setup.maxTotal, setup.maxConcurrentCreates);
    const engine = new FakeEngineStatus();
    const build = (name: 'A' | 'B', options: Partial<WarmPoolOptions>) => {
      const source = new FakeContainerSource(engine);
      const h = buildWarmPool(
        {
          name: 'mod',
          profile: name,
          maxContainers: setup.maxTotal,
          maxConcurrentCreates: setup.maxConcurrentCreates,
          ...options,
        },
        { source, engine, capacity },
      );
      harnesses.push(h);
      return h;
    };
    const A: Profile = { name: 'A', h: build('A', setup.a) };
    const B: Profile = { name: 'B', h: build('B', setup.b) };
    configure(A.h.source, B.h.source);
    /** What a profile reserves of the cap: its size, drained or not. */
    const reservedBy = (p: Profile) => p.h.pool.stats().size;
    const check = (when: string, adding = 0) => {
      const pools = poolTotal(A.h) + poolTotal(B.h);
      const engineCount = onEngine(A.h) + onEngine(B.h);
      if (pools + adding > setup.maxTotal || engineCount + adding > setup.maxTotal) {
        violations.push(`${when}: pools=${pools} engine=${engineCount} (+${adding})`);
      }
      // No profile is ever over its ceiling, and a create never takes it there.
      for (const [p, other] of [
        [A, B],
        [B, A],
      ] as const) {
        const ceiling = setup.maxTotal - reservedBy(other);
        const own = poolTotal(p.h);
        if (own + (when === `create ${p.name}` ? adding : 0) > ceiling) {
          violations.push(`${when}: ${p.name} holds ${own} over its ceiling ${ceiling}`);
        }
      }
    };
    for (const p of [A, B]) {
      // Called before the create is counted anywhere: it must fit.
      p.h.source.onCreate = () => {
        createOrder.push(p.name);
        check(`create ${p.name}`, 1);
      };
    }
    return { capacity, A, B, check };
  }

  it('never exceeds the global cap under a burst on one profile, and caps it at its ceiling', async () => {
    const { A, B, check } = pair({
      maxTotal: 6,
      maxConcurrentCreates: 2,
      a: { size: 2, maxWaiters: 50 },
      b: { size: 2 },
    });
    await Promise.all([A.h.pool.initialize(), B.h.pool.initialize()]);
    expect(A.h.pool.stats()).toMatchObject({ idle: 2 });
    expect(B.h.pool.stats()).toMatchObject({ idle: 2 });

    const burst = Array.from({ length: 20 }, () => observe(A.h.pool.acquire()));
    let peakA = 0;
    for (let step = 0; burst.some((b) => !b.settled); step++) {
      expect(step).toBeLessThan(100);
      await flush();
      check(`step ${step}`);
      peakA = Math.max(peakA, poolTotal(A.h));
      // A's ceiling: 6 - B's size 2 = 4 containers, however many wait.
      expect(poolTotal(A.h)).toBeLessThanOrEqual(4);
      // Give back what the burst holds (single-use: each is removed, freeing a slot).
      for (const b of burst) {
        if (b.value && b.value.state === 'leased') A.h.pool.release(b.value);
      }
    }
    expect(burst.every((b) => b.value !== undefined)).toBe(true);
    expect(peakA).toBe(4);
    // B kept its stock throughout.
    expect(B.h.pool.stats()).toMatchObject({ idle: 2, leased: 0, waiting: 0 });
    expect(B.h.source.createCalls).toBe(2);
    expect(violations).toEqual([]);
  });

  it('keeps a profile at its ceiling while the other profile has none of its size yet', async () => {
    // B never starts (or cannot create): its size stays reserved, A may not take the free slots.
    const { A, B, check } = pair({
      maxTotal: 5,
      maxConcurrentCreates: 3,
      a: { size: 0, maxWaiters: 50 },
      b: { size: 2 },
    });
    await A.h.pool.initialize();
    const burst = Array.from({ length: 6 }, () => observe(A.h.pool.acquire({ timeoutMs: 1_000 })));
    await flush();
    check('burst');
    expect(B.h.pool.stats().idle).toBe(0);
    expect(A.h.pool.stats()).toMatchObject({ leased: 3, waiting: 3, creating: 0 });
    expect(A.h.source.createCalls).toBe(3);
    // More time does not help: the 2 free slots are B's.
    jest.advanceTimersByTime(500);
    await flush();
    expect(A.h.source.createCalls).toBe(3);
    expect(burst.filter((b) => b.value).length).toBe(3);
    expect(violations).toEqual([]);
  });

  it("never lets a profile over its size take the slot the other's size needs", async () => {
    const { A, B, check } = pair({
      maxTotal: 10,
      maxConcurrentCreates: 4,
      a: { size: 2, maxWaiters: 50 },
      b: { size: 4 },
    });
    await Promise.all([A.h.pool.initialize(), B.h.pool.initialize()]);
    // A bursts to its ceiling 10 - 4 = 6, all leased, with waiters; A is below its size (no idle).
    const burst = Array.from({ length: 10 }, () => observe(A.h.pool.acquire({ timeoutMs: 5_000 })));
    await flush();
    expect(A.h.pool.stats()).toMatchObject({ leased: 6, idle: 0, creating: 0 });
    // B's containers are used and replaced, a few times (so that A comes first in the round-robin too).
    for (let turn = 0; turn < 3; turn++) {
      const c = await B.h.pool.acquire();
      B.h.pool.release(c);
      await flush();
      check(`B turn ${turn}`);
      expect(B.h.pool.stats()).toMatchObject({ idle: 4, leased: 0 });
      expect(poolTotal(A.h)).toBe(6);
    }
    expect(burst.filter((x) => x.value)).toHaveLength(6);
    expect(violations).toEqual([]);
  });

  it("refuses to resize a profile beyond what the others' sizes leave of the cap", async () => {
    const { A, B } = pair({
      maxTotal: 10,
      maxConcurrentCreates: 2,
      a: { size: 2 },
      b: { size: 4 },
    });
    await Promise.all([A.h.pool.initialize(), B.h.pool.initialize()]);
    let err: unknown;
    try {
      A.h.pool.resize({ size: 7 });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InvalidRequestError);
    expect(err).toMatchObject({ field: 'size' });
    expect((err as Error).message).toContain(
      "must not exceed maxContainersTotal (10) minus the other profiles' sizes (4): at most 6",
    );
    expect(A.h.pool.stats().size).toBe(2);
    // Exactly what is left is fine; a drained profile still keeps its size.
    expect(A.h.pool.resize({ size: 6 }).size).toBe(6);
    await A.h.pool.drain();
    expect(() => B.h.pool.resize({ size: 5 })).toThrow(/other profiles' sizes \(6\): at most 4/);
  });

  it('gives a freed slot to a profile below its size before a waiter of another profile', async () => {
    const { A, B, check } = pair({
      maxTotal: 4,
      maxConcurrentCreates: 2,
      a: { size: 0 },
      b: { size: 1 },
    });
    await Promise.all([A.h.pool.initialize(), B.h.pool.initialize()]);
    expect(B.h.pool.stats().idle).toBe(1);
    const a1 = await A.h.pool.acquire();
    await A.h.pool.acquire();
    // B takes its idle one and refills it: 2 of A + 1 of B leased + 1 of B idle = the cap.
    const b1 = await B.h.pool.acquire();
    await flush();
    expect(B.h.pool.stats()).toMatchObject({ idle: 1, leased: 1 });
    // B takes the refill too: B is below its size now and the cap is full.
    await B.h.pool.acquire();
    await flush();
    expect(B.h.pool.stats()).toMatchObject({ idle: 0, leased: 2 });
    const bCreates = B.h.source.createCalls;
    // A's waiter: A holds 2 of its ceiling 3, but the cap is full.
    const aWaiter = observe(A.h.pool.acquire());
    await flush();
    expect(A.h.pool.stats().waiting).toBe(1);
    expect(A.h.source.createCalls).toBe(2);

    A.h.pool.release(a1);
    await flush();
    check('after A released');
    // The slot went to B's refill, not to A's (older, only) waiter.
    expect(B.h.source.createCalls).toBe(bCreates + 1);
    expect(B.h.pool.stats()).toMatchObject({ idle: 1, leased: 2 });
    expect(aWaiter.settled).toBe(false);
    expect(A.h.pool.stats()).toMatchObject({ waiting: 1, leased: 1 });

    // B at its size: the next freed slot is the waiter's.
    B.h.pool.release(b1);
    await flush();
    check('after B released');
    expect(aWaiter.value).toBeDefined();
    expect(A.h.pool.stats()).toMatchObject({ waiting: 0, leased: 2 });
    expect(violations).toEqual([]);
  });

  it("keeps a drained profile's share: the other stays at its ceiling, and the resumed one refills first", async () => {
    const { A, B, check } = pair({
      maxTotal: 4,
      maxConcurrentCreates: 4,
      a: { size: 0, maxWaiters: 10 },
      b: { size: 2 },
    });
    await Promise.all([A.h.pool.initialize(), B.h.pool.initialize()]);
    const burst = Array.from({ length: 4 }, () => observe(A.h.pool.acquire({ timeoutMs: 5_000 })));
    await flush();
    // A's ceiling: 4 - B's size 2.
    expect(A.h.pool.stats()).toMatchObject({ leased: 2, waiting: 2 });
    await B.h.pool.drain();
    await flush();
    check('B drained');
    // B holds nothing now, but its size stays reserved: A does not grow into it.
    expect(B.h.pool.stats()).toMatchObject({ idle: 0, draining: true });
    expect(A.h.pool.stats()).toMatchObject({ leased: 2, waiting: 2 });
    expect(A.h.source.createCalls).toBe(2);
    // Back: B refills at once; A's waiters are served only by A's own returns.
    B.h.pool.resume();
    await flush();
    check('B resumed');
    expect(B.h.pool.stats().idle).toBe(2);
    expect(A.h.pool.stats().waiting).toBe(2);
    for (const b of burst.slice(0, 2)) A.h.pool.release(b.value!);
    await flush();
    check('A released');
    expect(burst.every((b) => b.value)).toBe(true);
    expect(B.h.pool.stats().idle).toBe(2);
    expect(violations).toEqual([]);
  });

  it.each([
    ['B before A', ['B', 'A'] as const],
    ['A before B', ['A', 'B'] as const],
  ])('serves waiters FIFO across profiles (%s)', async (_, [older, newer]) => {
    const { A, B, check } = pair({
      maxTotal: 3,
      maxConcurrentCreates: 2,
      a: { size: 0 },
      b: { size: 0 },
    });
    const byName = { A, B };
    await Promise.all([A.h.pool.initialize(), B.h.pool.initialize()]);
    // The cap is full: 2 of A, 1 of B leased.
    const held = [await A.h.pool.acquire(), await A.h.pool.acquire()];
    const heldB = await B.h.pool.acquire();
    const first = observe(byName[older].h.pool.acquire());
    jest.advanceTimersByTime(5);
    const second = observe(byName[newer].h.pool.acquire());
    await flush();
    expect(A.h.pool.stats().waiting + B.h.pool.stats().waiting).toBe(2);

    // One slot frees (whichever profile gives it back): the older waiter gets it.
    A.h.pool.release(held[0]);
    await flush();
    check('one slot freed');
    expect(first.value).toBeDefined();
    expect(second.settled).toBe(false);
    expect(byName[newer].h.pool.stats().waiting).toBe(1);

    B.h.pool.release(heldB);
    await flush();
    expect(second.value).toBeDefined();
    expect(violations).toEqual([]);
  });

  it('hands out create slots round-robin across profiles (maxConcurrentCreates 1)', async () => {
    const { A, B } = pair(
      { maxTotal: 10, maxConcurrentCreates: 1, a: { size: 3 }, b: { size: 3 } },
      (a, b) => {
        a.manualCreates = true;
        b.manualCreates = true;
      },
    );
    void A.h.pool.initialize().catch(() => undefined);
    void B.h.pool.initialize().catch(() => undefined);
    await flush();
    const pending = () => [...A.h.source.pendingCreates, ...B.h.source.pendingCreates];
    for (let i = 0; pending().length; i++) {
      expect(i).toBeLessThan(20);
      // One create in flight module-wide, never two.
      expect(pending()).toHaveLength(1);
      pending()[0].succeed();
      await flush();
    }
    expect(createOrder).toEqual(['A', 'B', 'A', 'B', 'A', 'B']);
    expect(A.h.pool.stats().idle).toBe(3);
    expect(B.h.pool.stats().idle).toBe(3);
  });

  it('initialize() and replenish() resolve only once the pool is full while another profile takes its turns', async () => {
    const { A, B } = pair(
      { maxTotal: 10, maxConcurrentCreates: 1, a: { size: 3 }, b: { size: 3 } },
      (a, b) => {
        a.manualCreates = true;
        b.manualCreates = true;
      },
    );
    const idleWhenResolved: Record<string, number> = {};
    const watch = (p: 'A' | 'B', h: WarmPoolHarness, promise: Promise<unknown>) =>
      observe(promise.then(() => (idleWhenResolved[p] = h.pool.stats().idle)));
    const initA = watch('A', A.h, A.h.pool.initialize());
    const initB = watch('B', B.h, B.h.pool.initialize());
    const pending = () => [...A.h.source.pendingCreates, ...B.h.source.pendingCreates];
    await flush();
    for (let i = 0; pending().length; i++) {
      expect(i).toBeLessThan(20);
      pending()[0].succeed();
      await flush();
    }
    expect(initA).toMatchObject({ settled: true, error: undefined });
    expect(initB).toMatchObject({ settled: true, error: undefined });
    expect(idleWhenResolved).toEqual({ A: 3, B: 3 });

    // replenish() after a resize up: the same, with B topping up at the same time.
    A.h.pool.resize({ size: 5 });
    B.h.pool.resize({ size: 5 });
    const again = watch('A', A.h, A.h.pool.replenish());
    await flush();
    for (let i = 0; pending().length; i++) {
      expect(i).toBeLessThan(20);
      pending()[0].succeed();
      await flush();
    }
    expect(again).toMatchObject({ settled: true, error: undefined });
    expect(idleWhenResolved.A).toBe(5);
    expect(createOrder.slice(6)).toEqual(['A', 'B', 'A', 'B']);
  });

  it('splits the create slots between profiles instead of letting the first take them all', async () => {
    const { A, B } = pair(
      { maxTotal: 10, maxConcurrentCreates: 2, a: { size: 4 }, b: { size: 4 } },
      (a, b) => {
        a.manualCreates = true;
        b.manualCreates = true;
      },
    );
    void A.h.pool.initialize();
    void B.h.pool.initialize();
    await flush();
    expect(A.h.source.pendingCreates).toHaveLength(1);
    expect(B.h.source.pendingCreates).toHaveLength(1);
    // A's create finishes: the freed slot goes to the profile after the last starter, in turn.
    A.h.source.nextCreate().succeed();
    await flush();
    expect(A.h.source.pendingCreates.length + B.h.source.pendingCreates.length).toBe(2);
    expect(createOrder.slice(0, 3)).toEqual(['A', 'B', 'A']);
    B.h.source.nextCreate().succeed();
    await flush();
    expect(createOrder.slice(0, 4)).toEqual(['A', 'B', 'A', 'B']);
  });

  it("lets the other profile fill while one profile's image is missing (maxConcurrentCreates 1)", async () => {
    const { A, B } = pair(
      { maxTotal: 10, maxConcurrentCreates: 1, a: { size: 3 }, b: { size: 3 } },
      (_, b) => (b.prepareError = new ImageUnavailableError('b:missing', 'no registry (fake)')),
    );
    const b = observe(B.h.pool.initialize());
    await A.h.pool.initialize();
    await flush();
    expect(b.error).toBeInstanceOf(ImageUnavailableError);
    expect(A.h.pool.stats()).toMatchObject({ idle: 3, creating: 0 });
    expect(B.h.source.createCalls).toBe(0);
    // B's acquires fail fast with the typed error; A serves.
    await expect(B.h.pool.acquire()).rejects.toBeInstanceOf(ImageUnavailableError);
    await expect(A.h.pool.acquire()).resolves.toBeDefined();
    await flush();
    expect(A.h.pool.stats().idle).toBe(3);
  });

  it("serves B's acquires from its idle stock, without a create or a wait, while a burst on A saturates the cap", async () => {
    const { A, B, check } = pair({
      maxTotal: 6,
      maxConcurrentCreates: 2,
      a: { size: 1, maxWaiters: 100 },
      b: { size: 2 },
    });
    await Promise.all([A.h.pool.initialize(), B.h.pool.initialize()]);
    const burst = Array.from({ length: 30 }, () => observe(A.h.pool.acquire()));
    await flush();
    // Saturated: A at its ceiling 4 with waiters, B's 2 idle, 6 in all.
    expect(poolTotal(A.h) + poolTotal(B.h)).toBe(6);
    expect(A.h.pool.stats().waiting).toBeGreaterThan(0);

    let bAcquires = 0;
    for (let step = 0; burst.some((x) => !x.settled); step++) {
      expect(step).toBeLessThan(200);
      {
        // B: its acquire takes an idle container that existed before the call, at once.
        const idleBefore = B.h.pool
          .containers()
          .filter((c) => c.state === 'idle')
          .map((c) => c.id);
        expect(idleBefore.length).toBeGreaterThan(0);
        const createsBefore = B.h.source.createCalls;
        const got = observe(B.h.pool.acquire());
        expect(B.h.pool.stats().waiting).toBe(0);
        await Promise.resolve();
        await Promise.resolve();
        expect(got.value).toBeDefined();
        expect(idleBefore).toContain(got.value!.id);
        expect(B.h.source.createCalls).toBe(createsBefore);
        expect(B.h.emitted.filter((e) => e.event === 'acquired').at(-1)?.payload).toEqual({
          waitMs: 0,
        });
        bAcquires++;
        B.h.pool.release(got.value!);
      }
      await flush();
      check(`step ${step}`);
      for (const x of burst) if (x.value && x.value.state === 'leased') A.h.pool.release(x.value);
    }
    expect(bAcquires).toBeGreaterThanOrEqual(6);
    expect(burst.every((x) => x.value !== undefined)).toBe(true);
    expect(B.h.totals.acquireTimeouts).toBe(0);
    expect(violations).toEqual([]);
  });
});

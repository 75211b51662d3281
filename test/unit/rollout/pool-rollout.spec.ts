/**
 * The rollout rules of the warm pool (pool/rollout.ts applied by WarmPool) against a fake container source: each
 * strategy's hand-outs, removals, surge and completion. No Nest, no driver.
 */
import type { PooledContainer } from '../../../src/container-pool/pool/pooled-container';
import {
  countGenerations,
  refillIdle,
  staleToRetire,
} from '../../../src/container-pool/pool/rollout';
import { SharedCapacity } from '../../../src/container-pool/pool/shared-capacity';
import { buildWarmPool, flush, type WarmPoolHarness } from '../../support/fake-source';

describe('rollout rules (pure)', () => {
  const rule = { generation: 'new', strategy: 'rolling' as const, maxSurge: 1 };
  const counts = (freshIdle: number, staleIdle: number) => ({
    freshIdle,
    staleIdle,
    freshLeased: 0,
    staleLeased: 0,
  });

  it('counts generations: a container of any other generation is stale, none before a rollout', () => {
    const cs = [{ generation: 'new' }, { generation: 'old' }, {}];
    expect(countGenerations(cs, [{ generation: 'old' }], rule)).toEqual({
      freshIdle: 1,
      staleIdle: 2,
      freshLeased: 0,
      staleLeased: 1,
    });
    expect(countGenerations(cs, [], null)).toMatchObject({ freshIdle: 3, staleIdle: 0 });
  });

  it('rolling: stale idle ones beyond maxSurge count as idle, so at most maxSurge are created ahead', () => {
    expect(refillIdle(rule, counts(0, 3))).toBe(2);
    expect(refillIdle({ ...rule, maxSurge: 3 }, counts(0, 3))).toBe(0);
    expect(refillIdle({ ...rule, strategy: 'onReplenish' }, counts(1, 3))).toBe(4);
  });

  it('retires all stale idle for recreate, none for onReplenish, those above size for rolling', () => {
    const s = { size: 2, creating: 0, destroying: 0, room: 5 };
    expect(staleToRetire({ ...rule, strategy: 'recreate' }, counts(0, 3), s)).toBe(3);
    expect(staleToRetire({ ...rule, strategy: 'onReplenish' }, counts(0, 3), s)).toBe(0);
    expect(staleToRetire(rule, counts(1, 2), s)).toBe(1);
    expect(staleToRetire(rule, counts(0, 2), s)).toBe(0);
  });

  it('rolling without room: one stale idle is replaced at a time', () => {
    const stuck = { size: 2, creating: 0, destroying: 0, room: 0 };
    expect(staleToRetire(rule, counts(0, 2), stuck)).toBe(1);
    expect(staleToRetire(rule, counts(0, 2), { ...stuck, destroying: 1 })).toBe(0);
    expect(staleToRetire(rule, counts(0, 2), { ...stuck, creating: 1 })).toBe(0);
  });
});

describe('WarmPool rollout (fake container source)', () => {
  const harnesses: WarmPoolHarness[] = [];
  afterEach(async () => {
    for (const h of harnesses.splice(0)) await h.close();
  });

  /** A pool filled with `size` containers of generation `old`. */
  async function filled(options: Parameters<typeof buildWarmPool>[0], capacity?: SharedCapacity) {
    const h = buildWarmPool(options, { capacity });
    harnesses.push(h);
    h.source.generation = 'old';
    await h.pool.initialize();
    await flush();
    return h;
  }

  const gens = (cs: readonly { generation?: string }[]) => cs.map((c) => c.generation);
  const idleGens = (h: WarmPoolHarness) =>
    h.pool
      .containers()
      .filter((r) => r.state === 'idle')
      .map((r) => h.source.created.find((c) => c.id === r.id)!.generation);

  it('recreate: idle old ones are removed at once, no old one is handed out, a leased one goes at release', async () => {
    const h = await filled({ size: 2, maxContainers: 4, singleUse: false });
    const leased = await h.pool.acquire();
    await flush();
    expect(idleGens(h)).toEqual(['old', 'old']);
    // A create of the old generation still in flight when the update comes.
    h.source.manualCreates = true;
    h.pool.resize({ size: 3 });
    const late = h.source.pendingCreates[0];
    h.source.generation = 'new';
    h.pool.rollOut({ generation: 'new', strategy: 'recreate', maxSurge: 1 });
    expect(idleGens(h)).toEqual([]);
    // Not before one of the new generation exists (it could not be made: the deadline reverts).
    expect(h.pool.rolloutProgress()).toEqual({ settled: false, complete: false });
    late.succeed();
    await flush();
    for (const c of [...h.source.pendingCreates]) c.succeed();
    await flush();
    for (const c of [...h.source.pendingCreates]) c.succeed();
    await flush();
    expect(h.pool.rolloutProgress()).toEqual({ settled: true, complete: true });
    const handed: PooledContainer[] = [];
    for (let i = 0; i < 3; i++) handed.push(await h.pool.acquire());
    expect(gens(handed)).toEqual(['new', 'new', 'new']);
    // Not reusable: an old generation's container never goes back to idle.
    h.pool.release(leased);
    await flush();
    expect(leased.state).not.toBe('idle');
    expect(h.source.removedIds).toContain(leased.id);
    for (const c of handed) h.pool.release(c);
  });

  it('onReplenish: old idle ones are used up first, new ones are of the new generation; complete when none is left', async () => {
    const h = await filled({ size: 2, maxContainers: 4 });
    h.source.generation = 'new';
    h.pool.rollOut({ generation: 'new', strategy: 'onReplenish', maxSurge: 1 });
    await flush();
    expect(idleGens(h)).toEqual(['old', 'old']);
    expect(h.pool.rolloutProgress()).toEqual({ settled: true, complete: false });
    const a = await h.pool.acquire();
    const b = await h.pool.acquire();
    expect(gens([a, b])).toEqual(['old', 'old']);
    await flush();
    expect(idleGens(h)).toEqual(['new', 'new']);
    // Leased old ones still count.
    expect(h.pool.rolloutProgress()).toEqual({ settled: true, complete: false });
    h.pool.release(a);
    h.pool.release(b);
    await flush();
    expect(h.pool.rolloutProgress()).toEqual({ settled: true, complete: true });
    expect(h.pool.generations()).toEqual({
      freshIdle: 2,
      staleIdle: 0,
      freshLeased: 0,
      staleLeased: 0,
    });
  });

  it('rolling at the profile cap: new ones warm before old ones go, within maxContainers + maxSurge, never below size - 0 idle', async () => {
    const h = await filled({ size: 2, maxContainers: 2 });
    h.source.manualCreates = true;
    let most = 0;
    let fewestIdle = Infinity;
    const watch = () => {
      const s = h.pool.stats();
      most = Math.max(most, s.idle + s.leased + s.creating + s.destroying);
      fewestIdle = Math.min(fewestIdle, s.idle);
    };
    h.events.on('created', watch);
    h.events.on('destroyed', watch);
    h.source.generation = 'new';
    h.pool.rollOut({ generation: 'new', strategy: 'rolling', maxSurge: 1 });
    watch();
    // One surge create beyond maxContainers (2 + 1), the old ones still idle.
    expect(h.source.pendingCreates).toHaveLength(1);
    expect(idleGens(h)).toEqual(['old', 'old']);
    expect(h.pool.rolloutProgress()).toEqual({ settled: false, complete: false });
    for (let round = 0; round < 5 && h.source.pendingCreates.length; round++) {
      for (const c of [...h.source.pendingCreates]) c.succeed();
      await flush();
      watch();
    }
    expect(idleGens(h).sort()).toEqual(['new', 'new']);
    expect(h.pool.rolloutProgress()).toEqual({ settled: true, complete: true });
    expect(most).toBeLessThanOrEqual(3);
    expect(fewestIdle).toBeGreaterThanOrEqual(2);
  });

  it('rolling: hand-outs during the rollout are warm (an idle container every time)', async () => {
    const h = await filled({ size: 2, maxContainers: 6 });
    h.source.manualCreates = true;
    h.source.generation = 'new';
    h.pool.rollOut({ generation: 'new', strategy: 'rolling', maxSurge: 1 });
    for (let i = 0; i < 6; i++) {
      const createsBefore = h.source.createCalls;
      const idleBefore = h.pool.stats().idle;
      const c = await h.pool.acquire();
      expect(idleBefore).toBeGreaterThan(0);
      // The hand-out took an idle one: the create calls it caused are refills (after the current task).
      expect(h.source.createCalls).toBe(createsBefore);
      h.pool.release(c);
      for (const p of [...h.source.pendingCreates]) p.succeed();
      await flush();
    }
    for (let round = 0; round < 5 && h.source.pendingCreates.length; round++) {
      for (const p of [...h.source.pendingCreates]) p.succeed();
      await flush();
    }
    expect(idleGens(h)).toEqual(['new', 'new']);
  });

  it('rolling, reusable containers: new ones are handed out first, old ones go back to idle until retired, never after', async () => {
    const h = await filled({ size: 2, maxContainers: 2, singleUse: false });
    const held = await h.pool.acquire();
    expect(held.generation).toBe('old');
    h.source.manualCreates = true;
    h.source.generation = 'new';
    h.pool.rollOut({ generation: 'new', strategy: 'rolling', maxSurge: 1 });
    for (let round = 0; round < 6; round++) {
      const idleBefore = h.pool.stats().idle;
      const c = await h.pool.acquire();
      expect(idleBefore).toBeGreaterThan(0);
      h.pool.release(c);
      for (const p of [...h.source.pendingCreates]) p.succeed();
      await flush();
    }
    expect(h.pool.rolloutProgress()).toMatchObject({ settled: true });
    // The held old one takes the second slot of maxContainers 2.
    expect(idleGens(h)).toEqual(['new']);
    // Settled: an old one released now is removed, never idle again.
    h.pool.release(held);
    await flush();
    expect(h.source.removedIds).toContain(held.id);
    for (const p of [...h.source.pendingCreates]) p.succeed();
    await flush();
    expect(idleGens(h)).toEqual(['new', 'new']);
  });

  it('rolling at the module-wide cap: surge counts against maxContainersTotal, one idle replaced at a time', async () => {
    const capacity = new SharedCapacity(4, 2);
    const a = await filled({ name: 'm', profile: 'a', size: 2, maxContainers: 4 }, capacity);
    const b = await filled({ name: 'm', profile: 'b', size: 2, maxContainers: 4 }, capacity);
    const total = () =>
      [a, b].reduce((n, h) => {
        const s = h.pool.stats();
        return n + s.idle + s.leased + s.creating + s.destroying;
      }, 0);
    expect(total()).toBe(4);
    a.source.manualRemoves = true;
    a.source.manualCreates = true;
    let most = 0;
    a.source.onCreate = () => (most = Math.max(most, total() + 1));
    a.source.generation = 'new';
    a.pool.rollOut({ generation: 'new', strategy: 'rolling', maxSurge: 1 });
    for (let round = 0; round < 10; round++) {
      // One at a time: never two old ones being replaced at once.
      expect(a.source.pendingRemoves.length + a.source.pendingCreates.length).toBeLessThanOrEqual(
        1,
      );
      const removal = a.source.pendingRemoves[0];
      const create = a.source.pendingCreates[0];
      if (removal) removal.finish();
      else if (create) create.succeed();
      else break;
      await flush();
    }
    expect(idleGens(a)).toEqual(['new', 'new']);
    expect(idleGens(b)).toEqual(['old', 'old']);
    expect(most).toBeLessThanOrEqual(4);
    expect(a.pool.rolloutProgress()).toMatchObject({ complete: true });
  });
});

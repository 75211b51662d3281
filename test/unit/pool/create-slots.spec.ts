/**
 * maxConcurrentCreates bounds the engine's work: a container the engine has started that only waits for its
 * main process (the runner's hello) holds no create slot, so the next create starts meanwhile (#14: the runner
 * transport's fill and single-use throughput).
 */
import { SharedCapacity } from '../../../src/container-pool/pool/shared-capacity';
import {
  buildWarmPool,
  FakeContainerSource,
  FakeEngineStatus,
  flush,
} from '../../support/fake-source';

describe('create slots', () => {
  it('a started create frees its slot for the next while it waits to be ready; the cap still counts it', async () => {
    const engine = new FakeEngineStatus();
    const source = new FakeContainerSource(engine);
    source.manualCreates = true;
    source.reportsStarted = true;
    const h = buildWarmPool(
      { size: 4, maxContainers: 5, maxConcurrentCreates: 2 },
      { source, engine },
    );
    void h.pool.initialize().catch(() => undefined);
    await flush();
    expect(source.pendingCreates).toHaveLength(2);
    // Both are started on the engine: two more creates may start, no more than size.
    for (const c of [...source.pendingCreates]) c.start();
    await flush();
    expect(source.pendingCreates).toHaveLength(4);
    expect(h.pool.stats().creating).toBe(4);
    // The newer two still hold their slots: nothing more (and size is reached anyway).
    source.pendingCreates[0].succeed();
    await flush();
    expect(source.pendingCreates).toHaveLength(3);
    expect(h.pool.stats()).toMatchObject({ idle: 1, creating: 3 });
    for (const c of [...source.pendingCreates]) c.succeed();
    await flush();
    expect(h.pool.stats()).toMatchObject({ idle: 4, creating: 0 });
    await h.pool.shutdown();
  });

  it('without started, a create holds its slot until it is ready (the exec transport)', async () => {
    const engine = new FakeEngineStatus();
    const source = new FakeContainerSource(engine);
    source.manualCreates = true;
    const h = buildWarmPool(
      { size: 4, maxContainers: 5, maxConcurrentCreates: 2 },
      { source, engine },
    );
    void h.pool.initialize().catch(() => undefined);
    await flush();
    expect(source.pendingCreates).toHaveLength(2);
    for (const c of [...source.pendingCreates]) c.start();
    await flush();
    expect(source.pendingCreates).toHaveLength(2);
    for (const c of [...source.pendingCreates]) c.succeed();
    await flush();
    expect(source.pendingCreates).toHaveLength(2);
    for (const c of [...source.pendingCreates]) c.succeed();
    await flush();
    await h.pool.shutdown();
  });

  it('a create that fails after its start frees everything and backs off as before', async () => {
    const engine = new FakeEngineStatus();
    const source = new FakeContainerSource(engine);
    source.manualCreates = true;
    source.reportsStarted = true;
    const h = buildWarmPool(
      { size: 1, maxContainers: 2, maxConcurrentCreates: 1 },
      { source, engine },
    );
    void h.pool.initialize().catch(() => undefined);
    await flush();
    const [c] = source.pendingCreates;
    c.start();
    await flush();
    // size 1 is covered by the create in flight: no second create.
    expect(source.pendingCreates).toHaveLength(1);
    c.fail(new Error('no hello from the runner'));
    await flush();
    expect(h.pool.stats()).toMatchObject({ creating: 0, idle: 0 });
    expect(h.pool.stats().totals.failedCreates).toBe(1);
    await h.pool.shutdown();
  });

  it('shared capacity counts only the slots held on the engine', () => {
    const capacity = new SharedCapacity(10, 2);
    const member = (creating: number, warming: number) => ({
      target: 4,
      reserved: 4,
      maxContainers: 10,
      idle: 0,
      creating,
      warming,
      total: creating,
      waiterTimes: [],
      wanted: () => 4 - creating,
      trimSurplus: () => undefined,
      inFlight: () => [],
      pump: () => undefined,
    });
    const a = member(2, 2);
    capacity.join(a);
    expect(capacity.allowance(a)).toBe(2);
    const b = member(2, 0);
    const capacity2 = new SharedCapacity(10, 2);
    capacity2.join(b);
    expect(capacity2.allowance(b)).toBe(0);
  });
});

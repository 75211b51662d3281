/**
 * Found in review of the rollout (warm pool rules on a fake source): each test names the bug it pins.
 */
import type { PooledContainer } from '../../../src/container-pool/pool/pooled-container';
import { buildWarmPool, flush, type WarmPoolHarness } from '../../support/fake-source';

describe('rollout review: warm pool', () => {
  const harnesses: WarmPoolHarness[] = [];
  afterEach(async () => {
    for (const h of harnesses.splice(0)) await h.close();
  });

  it('rolling: a create of the old generation in flight at the update never becomes idle after it settled', async () => {
    const h = buildWarmPool({ size: 2, maxContainers: 4 });
    harnesses.push(h);
    h.source.generation = 'old';
    await h.pool.initialize();
    await flush();
    h.source.manualCreates = true;
    // A hand-out: its refill (old generation) is in flight when the update comes.
    const a = await h.pool.acquire();
    await flush();
    expect(h.source.pendingCreates).toHaveLength(1);
    const late = h.source.pendingCreates[0];
    h.source.generation = 'new';
    h.pool.rollOut({ generation: 'new', strategy: 'rolling', maxSurge: 1 });
    for (const p of h.source.pendingCreates.filter((p) => p !== late)) p.succeed();
    await flush();
    // A hand-out takes the last old idle one: settled, with the old create still in flight.
    const b = await h.pool.acquire();
    expect(b.generation).toBe('old');
    expect(h.pool.rolloutProgress()).toMatchObject({ settled: true });
    late.succeed();
    await flush();
    // Two hand-outs before any refill lands: neither may be of the old generation now.
    const first = await h.pool.acquire();
    const second = h.pool.acquire();
    await flush();
    h.source.manualCreates = false;
    for (const p of [...h.source.pendingCreates]) p.succeed();
    const handed: PooledContainer[] = [first, await second];
    expect(handed.map((c) => c.generation)).toEqual(['new', 'new']);
    for (const c of handed) h.pool.release(c);
    h.source.manualCreates = false;
    for (const p of [...h.source.pendingCreates]) p.succeed();
    await flush();
    h.pool.release(a);
    h.pool.release(b);
  });
});

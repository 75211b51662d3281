/**
 * Found in review of the rollout (update() through Nest on a FakeDriver): each test names the bug it pins.
 */
import { LABELS } from '../../../src/container-pool/container-pool.constants';
import { ImageUnavailableError, RolloutFailedError } from '../../../src/container-pool/errors';
import { FakeDriver } from '../../support/fake-driver';
import { useFakePools, waitFor } from '../../support/pool-testing';

describe('rollout review: update() (fake driver)', () => {
  const start = useFakePools();

  async function filled(options: Parameters<typeof start>[0] = {}, driver = new FakeDriver()) {
    const made = await start({ size: 2, maxContainers: 6, ...options }, driver);
    await made.pool.initialize();
    await waitFor(() => made.pool.stats().idle === (options.size ?? 2), 2000, 'filled');
    return made;
  }

  it('a failed rollout reverts the size and maxContainers of its patch too', async () => {
    const { pool, driver } = await filled({ progressDeadlineMs: 1000 });
    driver.createError = new Error('the new generation does not start (fake)');
    const err = await pool
      .update({ memoryBytes: '512m', size: 3, maxContainers: 5 }, { strategy: 'rolling' })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RolloutFailedError);
    expect(pool.stats()).toMatchObject({ size: 2, maxContainers: 6 });
    driver.createError = null;
  });

  it('a patch whose transport check fails changes nothing, its size included', async () => {
    const { pool } = await filled();
    const transport = (pool.pool() as unknown as { transport: { choose: () => Promise<never> } })
      .transport;
    jest.spyOn(transport, 'choose').mockRejectedValue(new Error('no runner there (fake)'));
    await expect(pool.update({ image: 'fake:v2', size: 3 })).rejects.toThrow(/no runner/);
    expect(pool.stats()).toMatchObject({ size: 2, image: 'fake:latest' });
  });

  it('a re-tag whose rollout fails before it applies is not tried again at every event or tick', async () => {
    const { pool, driver } = await filled();
    const transport = (
      pool.pool() as unknown as {
        transport: { choose: (id: string, probe: unknown) => Promise<unknown> };
      }
    ).transport;
    const real = transport.choose.bind(transport);
    const choose = jest
      .spyOn(transport, 'choose')
      .mockImplementation((id: string, probe: unknown) =>
        id === 'sha256:retagged'
          ? Promise.reject(new Error('no runner there (fake)'))
          : real(id, probe),
      );
    driver.imageIds.set('fake:latest', 'sha256:retagged');
    driver.imageEvent('fake:latest');
    await waitFor(() => pool.stats().rollout!.state === 'failed', 2000, 'failed');
    const calls = choose.mock.calls.length;
    for (let i = 0; i < 3; i++) {
      driver.imageEvent('fake:latest');
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(choose.mock.calls.length).toBe(calls);
  });

  it('rolling with one profile: the surge counts against maxContainersTotal on the engine', async () => {
    const driver = new FakeDriver();
    const { pool } = await filled({ size: 2, maxContainers: 2, maxContainersTotal: 2 }, driver);
    let most = 0;
    driver.onCreated = () =>
      (most = Math.max(most, driver.created.filter((c) => !c.removed).length));
    const status = await pool.update({ image: 'fake:v2' }, { strategy: 'rolling', maxSurge: 1 });
    expect(status.state).toBe('complete');
    await waitFor(() => pool.stats().idle === 2, 2000, 'refilled');
    const gens = pool.containers().map((r) => r.generation);
    expect(gens).toEqual([status.generation, status.generation]);
    expect(most).toBeLessThanOrEqual(2);
  });

  it('after a revert the previous generation serves at once: the failures of the new image hold nothing back', async () => {
    const { pool, driver } = await filled({ progressDeadlineMs: 1000, pullPolicy: 'never' });
    const old = pool.stats().rollout!.generation;
    driver.manualCreates = true;
    await pool.update({ image: 'fake:v2' }, { strategy: 'onReplenish' });
    // The old idle ones are used up (and still leased: the rollout cannot complete).
    const held = [await pool.acquire(), await pool.acquire()];
    await waitFor(() => driver.pendingCreates.length > 0, 2000, 'new creates');
    // The new image goes away on the engine: its creates fail as an image the engine lacks.
    driver.missingImages.add('fake:v2');
    for (const p of [...driver.pendingCreates]) {
      p.fail(new ImageUnavailableError('fake:v2', 'No such image (fake)'));
    }
    driver.manualCreates = false;
    await waitFor(() => pool.stats().rollout!.state === 'failed', 3000, 'failed');
    expect(pool.stats().rollout).toMatchObject({ state: 'failed', generation: old });
    // The previous generation serves: an acquire is served by it, not refused with the new image's error.
    const c = await pool.acquire();
    expect(driver.created.find((x) => x.id === c.id)!.spec.labels[LABELS.generation]).toBe(old);
    pool.release(c);
    for (const h of held) pool.release(h);
  });

  it('recreate to a generation that cannot be created is not complete: it fails at the deadline and reverts', async () => {
    const { pool, driver } = await filled({ progressDeadlineMs: 1000 });
    const old = pool.stats().rollout!.generation;
    // The new limits are refused by the engine (e.g. more CPUs than the host has).
    driver.createError = new Error('Range of CPUs is from 0.01 to 2.00 (fake)');
    const err = await pool
      .update({ nanoCpus: 64_000_000_000 }, { strategy: 'recreate' })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RolloutFailedError);
    expect(pool.stats().rollout).toMatchObject({ state: 'failed', generation: old });
    driver.createError = null;
    const c = await pool.acquire();
    expect(driver.created.find((x) => x.id === c.id)!.spec.labels[LABELS.generation]).toBe(old);
    expect(driver.created.find((x) => x.id === c.id)!.spec.nanoCpus).toBe(1_000_000_000);
    pool.release(c);
  });

  it('an empty patch is refused naming it, not a 202 that changes nothing', async () => {
    const { pool } = await filled();
    await expect(pool.update({})).rejects.toMatchObject({
      code: 'INVALID_REQUEST',
      field: 'patch',
    });
    await expect(pool.update({ image: undefined })).rejects.toMatchObject({ field: 'patch' });
    expect(pool.stats().rollout!.state).toBe('idle');
  });

  it('a malformed image reference is a 400 naming image (the engine would answer a 400 read as its failure)', async () => {
    const { pool } = await filled();
    for (const image of [
      'Not/A:Valid::Ref',
      'UPPER:case',
      'a b',
      'x'.repeat(2000),
      'repo:tag:tag',
    ]) {
      await expect(pool.update({ image })).rejects.toMatchObject({ field: 'image' });
    }
    for (const image of [
      'busybox',
      'localhost:5000/team/img:v1.2',
      'container-pool-sandbox:bookworm',
    ]) {
      await expect(pool.update({ image }, { strategy: 'onReplenish' })).resolves.toBeDefined();
    }
  });
});

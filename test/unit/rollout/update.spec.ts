/**
 * update() through Nest on a FakeDriver: each strategy, completion, the progress deadline and the revert, a
 * missing image, supersede, a re-tag noticed by the image event and by the tick, the patch's checks and the
 * module-wide cap.
 */
import { LABELS } from '../../../src/container-pool/container-pool.constants';
import {
  ImageUnavailableError,
  InvalidRequestError,
  RolloutFailedError,
  RolloutSupersededError,
} from '../../../src/container-pool/errors';
import type { Container } from '../../../src/container-pool/interfaces/container.interface';
import type { ContainerPoolService } from '../../../src/container-pool/container-pool.service';
import { FakeDriver, type FakeContainer } from '../../support/fake-driver';
import { useFakePools, waitFor } from '../../support/pool-testing';

describe('update() and rollouts (fake driver)', () => {
  const start = useFakePools();
  const drivers: FakeDriver[] = [];
  afterEach(() => {
    for (const d of drivers.splice(0)) {
      d.manualCreates = false;
      d.createError = null;
      for (const p of [...d.pendingCreates]) p.succeed();
    }
  });

  async function filled(options: Parameters<typeof start>[0] = {}) {
    const driver = new FakeDriver();
    drivers.push(driver);
    const made = await start({ size: 2, maxContainers: 6, ...options }, driver);
    await made.pool.initialize();
    await waitFor(() => made.pool.stats().idle === (options.size ?? 2), 2000, 'filled');
    return made;
  }

  const byId = (driver: FakeDriver, id: string): FakeContainer =>
    driver.created.find((c) => c.id === id)!;
  const genOf = (driver: FakeDriver, c: Container) =>
    byId(driver, c.id).spec.labels[LABELS.generation];
  const idleGens = (pool: ContainerPoolService, driver: FakeDriver) =>
    pool
      .containers()
      .filter((r) => r.state === 'idle')
      .map((r) => byId(driver, r.id).spec.labels[LABELS.generation]);

  it('before any update: state idle, the serving generation, the profile default strategy', async () => {
    const { pool, driver } = await filled();
    const r = pool.stats().rollout!;
    expect(r).toMatchObject({ state: 'idle', strategy: 'onReplenish', updated: 2, stale: 0 });
    expect(r.generation).toBe(driver.created[0].spec.labels[LABELS.generation]);
    expect(r.targetGeneration).toBe(r.generation);
    expect(r.startedAt).toBeNull();
  });

  it('recreate: once update() resolves no old container is handed out; a leased one is removed at release', async () => {
    const { pool, driver } = await filled({ singleUse: false });
    const old = pool.stats().rollout!.generation;
    const leased = await pool.acquire();
    const status = await pool.update({ memoryBytes: '512m' }, { strategy: 'recreate' });
    expect(status).toMatchObject({ strategy: 'recreate', state: 'complete' });
    expect(status.generation).not.toBe(old);
    expect(status.targetGeneration).toBe(status.generation);
    // containers() names each one's generation: the leased old one, the new idle ones.
    const rows = pool
      .containers()
      .filter((r) => r.state !== 'destroying' && r.state !== 'creating');
    for (const r of rows)
      expect(r.generation).toBe(byId(driver, r.id).spec.labels[LABELS.generation]);
    expect(rows.find((r) => r.id === leased.id)?.generation).toBe(old);
    expect(idleGens(pool, driver).every((g) => g === status.generation)).toBe(true);
    for (let i = 0; i < 4; i++) {
      const c = await pool.acquire();
      expect(genOf(driver, c)).toBe(status.generation);
      expect(byId(driver, c.id).spec.memoryBytes).toBe(512 * 1024 * 1024);
      pool.release(c);
    }
    pool.release(leased);
    await waitFor(() => byId(driver, leased.id).removed, 2000, 'old leased removed');
    expect(pool.options.profiles[0].memoryBytes).toBe(512 * 1024 * 1024);
  });

  it('onReplenish: resolves at once while progressing; old idle ones go first; complete once none is left', async () => {
    const { pool, driver } = await filled();
    const old = pool.stats().rollout!.generation;
    const status = await pool.update({ image: 'fake:v2' });
    expect(status).toMatchObject({ strategy: 'onReplenish', state: 'progressing', stale: 2 });
    expect(status.generation).toBe(old);
    const target = status.targetGeneration;
    const a = await pool.acquire();
    const b = await pool.acquire();
    expect([genOf(driver, a), genOf(driver, b)]).toEqual([old, old]);
    await waitFor(() => pool.stats().idle === 2, 2000, 'refilled');
    expect(idleGens(pool, driver)).toEqual([target, target]);
    expect(driver.created.at(-1)!.spec.image).toBe('sha256:fake-fake:v2');
    expect(pool.stats().rollout!.state).toBe('progressing');
    pool.release(a);
    pool.release(b);
    await waitFor(() => pool.stats().rollout!.state === 'complete', 2000, 'complete');
    expect(pool.stats().rollout).toMatchObject({ generation: target, stale: 0, updated: 2 });
    expect(pool.stats().image).toBe('fake:v2');
  });

  it('rolling: new ones are warmed before old ones go; no acquire meanwhile creates or waits', async () => {
    // Room for the surge under the module-wide cap (by default the sum of maxContainers: 2).
    const { pool, driver } = await filled({ maxContainers: 2, maxContainersTotal: 3 });
    driver.manualCreates = true;
    const updated = pool.update({ image: 'fake:v2' }, { strategy: 'rolling', maxSurge: 1 });
    let resolved = false;
    void updated.then(() => (resolved = true));
    await waitFor(() => driver.pendingCreates.length === 1, 2000, 'surge create');
    const createsBefore = driver.createCalls;
    for (let round = 0; round < 4 && !resolved; round++) {
      // Acquire while the rollout runs: an idle container at once, no create of its own.
      expect(pool.stats().idle).toBeGreaterThan(0);
      const c = await pool.acquire();
      pool.release(c);
      for (const p of [...driver.pendingCreates]) p.succeed();
      await waitFor(() => driver.pendingCreates.length > 0 || resolved, 2000, 'next step');
    }
    driver.manualCreates = false;
    for (const p of [...driver.pendingCreates]) p.succeed();
    const status = await updated;
    expect(status).toMatchObject({ strategy: 'rolling', state: 'complete' });
    expect(driver.createCalls).toBeGreaterThan(createsBefore);
    await waitFor(() => pool.stats().idle === 2, 2000, 'filled again');
    expect(idleGens(pool, driver)).toEqual([status.generation, status.generation]);
  });

  it('fails after progressDeadlineMs, reverts to the previous generation, which serves throughout', async () => {
    const { pool, driver } = await filled({ progressDeadlineMs: 1000 });
    const old = pool.stats().rollout!.generation;
    const oldIds = pool.containers().map((c) => c.id);
    // The new generation's containers cannot be made.
    driver.createError = new Error('the new image does not start (fake)');
    const err = await pool
      .update({ memoryBytes: '512m' }, { strategy: 'rolling' })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RolloutFailedError);
    expect((err as Error).message).toMatch(/progressDeadlineMs \(1000 ms\)/);
    expect(pool.stats().rollout).toMatchObject({ state: 'failed', generation: old });
    expect(pool.stats().rollout!.reason).toMatch(/not complete after progressDeadlineMs/);
    // The old ones were never removed, and serve.
    expect(pool.containers().map((c) => c.id)).toEqual(oldIds);
    expect(pool.options.profiles[0].memoryBytes).toBe(256 * 1024 * 1024);
    driver.createError = null;
    const c = await pool.acquire();
    expect(genOf(driver, c)).toBe(old);
    pool.release(c);
    await waitFor(() => pool.stats().idle === 2, 3000, 'refilled');
    expect(idleGens(pool, driver)).toEqual([old, old]);
  });

  it('onReplenish past its deadline: failed, the new idle ones removed, the old generation again', async () => {
    const { pool, driver } = await filled({ progressDeadlineMs: 1000 });
    const old = pool.stats().rollout!.generation;
    await pool.update({ image: 'fake:v2' }, { strategy: 'onReplenish' });
    const a = await pool.acquire();
    await waitFor(() => pool.stats().idle === 2, 2000, 'refilled');
    await waitFor(() => pool.stats().rollout!.state === 'failed', 3000, 'failed');
    expect(pool.stats().image).toBe('fake:latest');
    await waitFor(() => idleGens(pool, driver).every((g) => g === old), 2000, 'old again');
    pool.release(a);
  });

  it('an update to a missing image fails at once and changes nothing', async () => {
    const { pool, driver } = await filled();
    const old = pool.stats().rollout!.generation;
    const oldIds = pool.containers().map((c) => c.id);
    driver.missingImages.add('missing:img');
    await expect(
      pool.update({ image: 'missing:img' }, { strategy: 'recreate' }),
    ).rejects.toBeInstanceOf(ImageUnavailableError);
    expect(pool.stats().rollout).toMatchObject({ state: 'failed', generation: old });
    expect(pool.stats().rollout!.reason).toMatch(/missing:img/);
    expect(pool.containers().map((c) => c.id)).toEqual(oldIds);
    expect(pool.stats().image).toBe('fake:latest');
    const c = await pool.acquire();
    expect(genOf(driver, c)).toBe(old);
    pool.release(c);
  });

  it('a second update supersedes the first: the first rejects with RolloutSupersededError', async () => {
    const { pool, driver } = await filled();
    driver.manualCreates = true;
    const first = pool.update({ image: 'fake:v2' }, { strategy: 'rolling' });
    await waitFor(() => driver.pendingCreates.length > 0, 2000, 'first rolling');
    const second = pool.update({ image: 'fake:v3' }, { strategy: 'recreate' });
    const err = await first.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RolloutSupersededError);
    expect((err as Error).message).toMatch(/superseded.*stats\(\)\.rollout/s);
    driver.manualCreates = false;
    for (const p of [...driver.pendingCreates]) p.succeed();
    const status = await second;
    expect(status).toMatchObject({ strategy: 'recreate', state: 'complete' });
    await waitFor(() => pool.stats().idle === 2, 2000, 'refilled');
    expect(idleGens(pool, driver)).toEqual([status.generation, status.generation]);
    expect(driver.created.at(-1)!.spec.image).toBe('sha256:fake-fake:v3');
  });

  it('a re-tag of the image is noticed by the image event and rolled out with the default strategy', async () => {
    const { pool, driver } = await filled({ updateStrategy: 'recreate' });
    const old = pool.stats().rollout!.generation;
    driver.imageIds.set('fake:latest', 'sha256:retagged');
    driver.imageEvent('fake:latest');
    await waitFor(() => pool.stats().rollout!.state === 'complete', 2000, 'rolled out');
    const r = pool.stats().rollout!;
    expect(r.strategy).toBe('recreate');
    expect(r.generation).not.toBe(old);
    await waitFor(() => pool.stats().idle === 2, 2000, 'refilled');
    expect(driver.created.at(-1)!.spec.image).toBe('sha256:retagged');
    expect(pool.profiles()[0].imageId).toBe('sha256:retagged');
  });

  it('a re-tag is noticed by the scheduled tick too', async () => {
    const { pool, driver } = await filled({ replenishIntervalMs: 100 });
    driver.imageIds.set('fake:latest', 'sha256:retagged');
    await waitFor(() => pool.stats().rollout!.state !== 'idle', 3000, 'noticed');
    expect(pool.stats().rollout!.strategy).toBe('onReplenish');
    const c = await pool.acquire();
    await waitFor(() => pool.stats().idle === 2, 2000, 'refilled');
    expect(driver.created.at(-1)!.spec.image).toBe('sha256:retagged');
    pool.release(c);
  });

  it('a size-only update is a resize: no rollout; it respects maxContainersTotal', async () => {
    const driver = new FakeDriver();
    drivers.push(driver);
    const { pool } = await start(
      {
        name: 'm',
        maxContainersTotal: 4,
        defaultProfile: 'a',
        profiles: { a: { size: 2 }, b: { size: 2 } },
      },
      driver,
    );
    await expect(pool.update({ size: 3 }, { profile: 'a' })).rejects.toMatchObject({
      code: 'INVALID_REQUEST',
      field: 'size',
    });
    const status = await pool.update({ size: 1 }, { profile: 'b' });
    expect(status.state).toBe('idle');
    expect(pool.pool('b').stats().size).toBe(1);
    // A refused size changes nothing else of the update either.
    await expect(
      pool.update({ size: 4, memoryBytes: '512m' }, { profile: 'a', strategy: 'recreate' }),
    ).rejects.toMatchObject({ field: 'size' });
    expect(pool.pool('a').stats().rollout!.state).toBe('idle');
  });

  it('checks the patch and the options, naming the field', async () => {
    const { pool } = await filled();
    const field = (p: Promise<unknown>) =>
      p.then(
        () => null,
        (e: unknown) => (e instanceof InvalidRequestError ? e.field : e),
      );
    expect(await field(pool.update({ user: '0:0' } as never))).toBe('user');
    expect(await field(pool.update({ image: '' }))).toBe('image');
    expect(await field(pool.update({ memoryBytes: 'lots' }))).toBe('memoryBytes');
    expect(await field(pool.update({ pidsLimit: 1 }))).toBe('pidsLimit');
    expect(await field(pool.update({ tmpSizeBytes: '1g' }))).toBe('tmpSizeBytes');
    expect(await field(pool.update({ image: 'x' }, { strategy: 'bluegreen' as never }))).toBe(
      'strategy',
    );
    expect(await field(pool.update({ image: 'x' }, { strategy: 'rolling', maxSurge: 0 }))).toBe(
      'maxSurge',
    );
    expect(pool.stats().rollout!.state).toBe('idle');
  });
});

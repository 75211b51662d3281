import {
  ContainerCreateError,
  ContainerLostError,
  ContainerRemoveError,
  EngineUnavailableError,
} from '../../src/container-pool/errors/container-pool.errors';
import { FakeDriver, hangingExec } from '../support/fake-driver';
import { tick, useFakePools, waitFor } from '../support/pool-testing';

/** States the pool must always leave by itself (found in review), on the fake driver. */
describe('ContainerPoolService recovery', () => {
  const start = useFakePools();

  it('serves again after the engine comes back, even with size 0 (nothing to create on its own)', async () => {
    const driver = new FakeDriver();
    driver.engineUp = false;
    const { pool } = await start({ size: 0 }, driver);
    await expect(pool.initialize()).rejects.toBeInstanceOf(EngineUnavailableError);
    driver.engineUp = true;
    await waitFor(() => pool.stats().engineAvailable, 3000, 'the engine to be seen again');
    expect(pool.stats().lastError).toBeNull();
    await expect(pool.acquire({ timeoutMs: 1000 })).resolves.toBeDefined();
  });

  it('keeps handing out idle containers while a refill create fails', async () => {
    const driver = new FakeDriver();
    const { pool } = await start({ size: 3 }, driver);
    await pool.initialize();
    driver.createError = new ContainerCreateError('OCI runtime create failed: EAGAIN (fake)');
    const first = await pool.acquire();
    pool.release(first);
    await waitFor(() => pool.stats().totals.failedCreates > 0, 2000, 'a failed refill');
    await expect(pool.acquire()).resolves.toBeDefined();
    await expect(pool.acquire()).resolves.toBeDefined();
  });

  it('is not blocked by a leftover container the engine refuses to remove', async () => {
    const driver = new FakeDriver();
    driver.listed = [
      {
        id: 'stuck',
        name: 'stuck',
        state: 'dead',
        labels: {
          'io.container-pool.managed-by': 'container-pool',
          'io.container-pool.pool': 'default',
          'io.container-pool.owner': 'someone-dead',
        },
        createdAt: new Date(0),
      },
    ];
    driver.removeErrors.set('stuck', new ContainerRemoveError('stuck', 'device or resource busy'));
    const { pool } = await start({ size: 1 }, driver);
    await pool.initialize();
    expect(pool.stats()).toMatchObject({ engineAvailable: true, idle: 1, lastError: null });
  });

  it('lets go of a container whose removal fails, so that it exits by itself', async () => {
    const driver = new FakeDriver();
    const { pool } = await start({ size: 1 }, driver);
    await pool.initialize();
    const c = await pool.acquire();
    const detach = jest.fn();
    (driver.created[0] as unknown as { detach: () => void }).detach = detach;
    driver.removeErrors.set(c.id, new ContainerRemoveError(c.name, 'refused (fake)'));
    await c.destroy();
    expect(detach).toHaveBeenCalledTimes(1);
    expect(pool.stats()).toMatchObject({ leased: 0, destroying: 0, engineAvailable: true });
  });

  it('backs off when containers die right after their start instead of recreating them in a loop', async () => {
    const driver = new FakeDriver();
    driver.onCreated = (c) => setImmediate(() => c.die('exited at once (fake bad image)'));
    const { pool } = await start({ size: 2 }, driver);
    void pool.initialize().catch(() => undefined);
    await tick(1500);
    // 250, 500, 1000 ms back-off: a handful of creates in 1.5 s, not hundreds.
    expect(driver.createCalls).toBeGreaterThanOrEqual(2);
    expect(driver.createCalls).toBeLessThanOrEqual(10);
    expect(pool.stats().lastError).toMatch(/right after|after its start/);
  });

  it('lets an acquire wait for an on-demand create even with maxWaiters 0', async () => {
    const { pool } = await start({ size: 0, maxWaiters: 0, maxContainers: 2 });
    await pool.initialize();
    const a = await pool.acquire();
    const b = await pool.acquire();
    expect(a.id).not.toBe(b.id);
    // At the cap now: with maxWaiters 0 nobody may wait.
    await expect(pool.acquire()).rejects.toThrow(/Too many callers/);
  });

  it('replenish() resolves while executions keep the pool busy', async () => {
    const driver = new FakeDriver();
    driver.createDelayMs = 5;
    const { pool } = await start({ size: 2, maxContainers: 8 }, driver);
    await pool.initialize();
    let stop = false;
    const workers = Array.from({ length: 3 }, async () => {
      while (!stop) await pool.run({ cmd: ['true'] });
    });
    await tick(50);
    const t0 = Date.now();
    await pool.replenish();
    expect(Date.now() - t0).toBeLessThan(2000);
    stop = true;
    await Promise.all(workers);
  });

  it('reports OOM from the cgroup counter when no oom event arrives', async () => {
    const driver = new FakeDriver();
    driver.execBehaviour = (_req, c) => {
      driver.oomKills.set(c.id, 1);
      return {
        exitCode: 137,
        stdout: Buffer.alloc(0),
        stderr: Buffer.alloc(0),
        truncated: false,
        aborted: false,
      };
    };
    const { pool } = await start({ size: 1 }, driver);
    await pool.initialize();
    const r = await pool.run({ cmd: ['python3', '-c', 'bomb'] });
    expect(r).toMatchObject({ exitCode: 137, oomKilled: true });
  });

  it('does not call a program that killed itself with SIGKILL an OOM', async () => {
    const driver = new FakeDriver();
    driver.execBehaviour = () => ({
      exitCode: 137,
      stdout: Buffer.alloc(0),
      stderr: Buffer.alloc(0),
      truncated: false,
      aborted: false,
    });
    const { pool } = await start({ size: 1 }, driver);
    await pool.initialize();
    const r = await pool.run({ cmd: ['sh', '-c', 'kill -9 $$'] });
    expect(r).toMatchObject({ exitCode: 137, oomKilled: false, timedOut: false });
  });
});

describe('a container that dies of the OOM killer during an execution', () => {
  const start = useFakePools();

  /** The execution hangs until the test kills its container (the runner, PID 1, may be the OOM victim). */
  async function runWhileContainerDies(withOom: boolean) {
    const driver = new FakeDriver();
    driver.execBehaviour = hangingExec;
    const { pool } = await start({ size: 1 }, driver);
    await pool.initialize();
    const running = pool.run({ cmd: ['python3', '-c', 'bomb'] });
    await waitFor(
      () => driver.live.some((c) => c.alive) && pool.stats().leased === 1,
      2000,
      'the lease',
    );
    const c = driver.live[0];
    if (withOom) driver.handlers?.onEvent({ type: 'oom', containerId: c.id, timeMs: Date.now() });
    c.die('the container stopped');
    return running;
  }

  it('resolves as oomKilled (exit 137), not as a lost container', async () => {
    await expect(runWhileContainerDies(true)).resolves.toMatchObject({
      exitCode: 137,
      oomKilled: true,
      timedOut: false,
    });
  });

  it('without an oom event it is a lost container', async () => {
    await expect(runWhileContainerDies(false)).rejects.toBeInstanceOf(ContainerLostError);
  });
});

import {
  AcquireTimeoutError,
  ContainerLostError,
  EngineUnavailableError,
  ExecutionAbortedError,
  ImageUnavailableError,
  PoolShuttingDownError,
  TooManyWaitersError,
} from '../../src/container-pool/errors/container-pool.errors';
import { ContainerPoolService } from '../../src/container-pool/container-pool.service';
import { tick, useFakePools, waitFor } from '../support/pool-testing';
import { FakeDriver, hangingExec } from '../support/fake-driver';

describe('ContainerPoolService (fake driver)', () => {
  const start = useFakePools();

  it('fills to size on init and hands out an idle container without creating', async () => {
    const { pool, driver } = await start({ size: 2 });
    await pool.initialize();
    expect(pool.stats()).toMatchObject({ idle: 2, leased: 0, creating: 0, size: 2 });
    const c = await pool.acquire();
    expect(driver.created.map((d) => d.id)).toContain(c.id);
    expect(pool.stats()).toMatchObject({ leased: 1 });
    expect(c.expiry.getTime()).toBeGreaterThan(Date.now());
    expect(c.name).toMatch(/^cpool-default-/);
  });

  it('labels containers with managed-by, pool, owner, created-at and generation', async () => {
    const { pool, driver } = await start({ size: 1, name: 'lab' });
    await pool.initialize();
    const labels = driver.created[0].spec.labels;
    expect(labels).toMatchObject({
      'io.container-pool.managed-by': 'container-pool',
      'io.container-pool.pool': 'lab',
      'io.container-pool.owner': pool.instanceId,
    });
    expect(labels['io.container-pool.created-at']).toMatch(/^\d{4}-/);
    expect(labels['io.container-pool.generation']).toMatch(/^[0-9a-f]{16}$/);
    expect(labels['io.container-pool.config-hash']).toBeUndefined();
    // Created by the image's id, never by its name.
    expect(driver.created[0].spec.image).toMatch(/^sha256:fake-/);
  });

  it('creates at once when none is idle and the cap allows', async () => {
    const { pool, driver } = await start({ size: 0 });
    await pool.initialize();
    expect(driver.created).toHaveLength(0);
    const c = await pool.acquire();
    expect(driver.created).toHaveLength(1);
    expect(c.id).toBe(driver.created[0].id);
  });

  it('replenish() creates up to size', async () => {
    const { pool, driver } = await start({ size: 0 });
    await pool.initialize();
    pool.resize({ size: 3 });
    await pool.replenish();
    expect(pool.stats().idle).toBe(3);
    expect(driver.created).toHaveLength(3);
  });

  it('is single-use: release removes the container in the background and refills', async () => {
    const { pool, driver } = await start({ size: 1 });
    await pool.initialize();
    const c = await pool.acquire();
    pool.release(c);
    pool.release(c); // twice is harmless
    await waitFor(() => driver.removedIds.includes(c.id), 1000, 'removal');
    await waitFor(() => pool.stats().idle === 1, 1000, 'refill');
    expect(driver.removeCounts.get(c.id)).toBe(1);
    const next = await pool.acquire();
    expect(next.id).not.toBe(c.id);
  });

  it('reuses containers when singleUse is false', async () => {
    const { pool, driver } = await start({ size: 1, singleUse: false });
    await pool.initialize();
    const c = await pool.acquire();
    pool.release(c);
    const again = await pool.acquire();
    expect(again.id).toBe(c.id);
    expect(driver.removedIds).toHaveLength(0);
  });

  it('queues at the cap in FIFO order and serves waiters as slots free up', async () => {
    const { pool } = await start({ size: 0, maxContainers: 1 });
    await pool.initialize();
    const first = await pool.acquire();
    const order: number[] = [];
    const w1 = pool.acquire().then((c) => (order.push(1), c));
    const w2 = pool.acquire().then((c) => (order.push(2), c));
    await tick(10);
    expect(pool.stats().waiting).toBe(2);
    pool.release(first);
    const c1 = await w1;
    pool.release(c1);
    await w2;
    expect(order).toEqual([1, 2]);
  });

  it('never has more than maxContainers, counting creates and removals in flight', async () => {
    const driver = new FakeDriver();
    driver.createDelayMs = 5;
    const { pool } = await start(
      { size: 0, maxContainers: 3, maxConcurrentCreates: 3, maxWaiters: 50 },
      driver,
    );
    await pool.initialize();
    let peak = 0;
    const sample = setInterval(() => {
      const s = pool.stats();
      peak = Math.max(peak, s.idle + s.leased + s.creating + s.destroying, driver.live.length);
    }, 1);
    const runs = Array.from({ length: 20 }, async () => {
      const c = await pool.acquire();
      await tick(2);
      pool.release(c);
    });
    await Promise.all(runs);
    clearInterval(sample);
    expect(peak).toBeLessThanOrEqual(3);
    expect(peak).toBeGreaterThan(0);
  });

  it('keeps at most maxConcurrentCreates creates in flight', async () => {
    const driver = new FakeDriver();
    driver.createDelayMs = 20;
    const { pool } = await start({ size: 4, maxContainers: 6, maxConcurrentCreates: 2 }, driver);
    await pool.initialize();
    expect(pool.stats().idle).toBe(4);
    expect(driver.maxCreatingAtOnce).toBe(2);
  });

  it('rejects with AcquireTimeoutError after timeoutMs and forgets the waiter', async () => {
    const { pool } = await start({ size: 0, maxContainers: 1 });
    await pool.initialize();
    await pool.acquire();
    const t0 = Date.now();
    await expect(pool.acquire({ timeoutMs: 50 })).rejects.toBeInstanceOf(AcquireTimeoutError);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(45);
    expect(pool.stats().waiting).toBe(0);
    expect(pool.stats().totals.acquireTimeouts).toBe(1);
  });

  it('rejects at once when more than maxWaiters wait', async () => {
    const { pool } = await start({ size: 0, maxContainers: 1, maxWaiters: 1 });
    await pool.initialize();
    await pool.acquire();
    const waiting = pool.acquire({ timeoutMs: 200 });
    await expect(pool.acquire()).rejects.toBeInstanceOf(TooManyWaitersError);
    await expect(waiting).rejects.toBeInstanceOf(AcquireTimeoutError);
  });

  it('gives up waiting when the caller aborts', async () => {
    const { pool } = await start({ size: 0, maxContainers: 1 });
    await pool.initialize();
    await pool.acquire();
    const ac = new AbortController();
    const p = pool.acquire({ signal: ac.signal });
    await tick(5);
    ac.abort();
    await expect(p).rejects.toBeInstanceOf(ExecutionAbortedError);
    expect(pool.stats().waiting).toBe(0);
  });

  it('never hands out a container that died while idle', async () => {
    const { pool, driver } = await start({ size: 2 });
    await pool.initialize();
    const [dead] = driver.created;
    dead.die('killed outside the pool');
    await tick(1);
    const c = await pool.acquire();
    expect(c.id).not.toBe(dead.id);
    expect(pool.stats().totals.containersLost).toBe(1);
    await waitFor(() => pool.stats().idle === 2, 1000, 'refill after loss');
  });

  it('fails an execution whose container is lost with an error naming it', async () => {
    const driver = new FakeDriver();
    driver.execBehaviour = hangingExec;
    const { pool } = await start({ size: 1 }, driver);
    await pool.initialize();
    const c = await pool.acquire();
    const running = c.execute(['sleep', '100']);
    await tick(5);
    driver.created[0].die('the engine restarted');
    await expect(running).rejects.toThrow(ContainerLostError);
    await expect(running).rejects.toThrow(c.name);
  });

  it('times out an execution, reports timedOut with output so far and removes the container', async () => {
    const driver = new FakeDriver();
    driver.execBehaviour = hangingExec;
    const { pool } = await start({ size: 1 }, driver);
    await pool.initialize();
    const r = await pool.run({ cmd: ['sleep', '100'], timeoutMs: 50 });
    expect(r.timedOut).toBe(true);
    expect(r.exitCode).toBeNull();
    expect(r.stdout).toBe('partial');
    expect(driver.removedIds).toContain(r.containerId);
  });

  it('kills the container and rejects when the caller aborts mid-execution', async () => {
    const driver = new FakeDriver();
    driver.execBehaviour = hangingExec;
    const { pool } = await start({ size: 1 }, driver);
    await pool.initialize();
    const ac = new AbortController();
    const p = pool.run({ cmd: ['sleep', '100'], signal: ac.signal });
    await tick(10);
    ac.abort();
    await expect(p).rejects.toBeInstanceOf(ExecutionAbortedError);
    expect(driver.removedIds).toHaveLength(1);
    expect(pool.stats().leased).toBe(0);
  });

  it('reports OOM from the engine event that follows a SIGKILLed exec', async () => {
    const driver = new FakeDriver();
    driver.execBehaviour = (_req, c) => {
      setTimeout(
        () => driver.handlers?.onEvent({ type: 'oom', containerId: c.id, timeMs: Date.now() }),
        20,
      );
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
    const r = await pool.run({ cmd: ['python3', '-c', 'x'] });
    expect(r).toMatchObject({ exitCode: 137, oomKilled: true, timedOut: false });
    expect(pool.stats().totals.ooms).toBe(1);
  });

  it('passes code framed on stdin ahead of the caller stdin', async () => {
    const driver = new FakeDriver();
    let seen: Buffer | null = null;
    driver.execBehaviour = (req) => {
      seen = req.stdin;
      return {
        exitCode: 0,
        stdout: Buffer.alloc(0),
        stderr: Buffer.alloc(0),
        truncated: false,
        aborted: false,
      };
    };
    const { pool } = await start({ size: 1 }, driver);
    await pool.initialize();
    await pool.run({ code: 'print(1)', stdin: 'abc' });
    expect(seen!.toString()).toBe('8\nprint(1)abc');
  });

  it('starts while the engine is down, fails acquires fast, then recovers by itself', async () => {
    const driver = new FakeDriver();
    driver.engineUp = false;
    const { pool } = await start({ size: 1 }, driver);
    await expect(pool.initialize()).rejects.toBeInstanceOf(EngineUnavailableError);
    const t0 = Date.now();
    await expect(pool.acquire()).rejects.toBeInstanceOf(EngineUnavailableError);
    expect(Date.now() - t0).toBeLessThan(500);
    expect(pool.stats().engineAvailable).toBe(false);
    driver.engineUp = true;
    await waitFor(() => pool.stats().idle === 1, 3000, 'recovery');
    expect(pool.stats().engineAvailable).toBe(true);
    await expect(pool.acquire()).resolves.toBeDefined();
  });

  it('backs off on a missing image: clear error, waiters rejected, no hot loop', async () => {
    const driver = new FakeDriver();
    driver.imagePresent = false;
    const { pool } = await start({ size: 2 }, driver);
    await expect(pool.initialize()).rejects.toBeInstanceOf(ImageUnavailableError);
    await expect(pool.acquire()).rejects.toThrow(/fake:latest/);
    await tick(600);
    // 250 ms, 500 ms ... back-off: a handful of attempts, never a loop.
    expect(driver.createCalls).toBe(0);
    expect(pool.stats().lastError).toMatch(/not available/);
  });

  it('backs off on create failures and logs the streak once', async () => {
    const driver = new FakeDriver();
    driver.createError = new Error('boom');
    const { pool } = await start({ size: 1 }, driver);
    await pool.initialize();
    await tick(700);
    expect(driver.createCalls).toBeGreaterThanOrEqual(2);
    expect(driver.createCalls).toBeLessThanOrEqual(4);
    driver.createError = null;
    await pool.replenish();
    expect(pool.stats().idle).toBe(1);
    expect(pool.stats().lastError).toBeNull();
  });

  it('refuses to serve when the engine has no seccomp', async () => {
    const driver = new FakeDriver();
    driver.seccomp = false;
    const { pool } = await start({ size: 1 }, driver);
    await expect(pool.initialize()).rejects.toThrow(/seccomp/);
    await expect(pool.acquire()).rejects.toThrow(/seccomp/);
    expect(driver.createCalls).toBe(0);
  });

  it('removes its own dead leftovers on start but never a sibling running container', async () => {
    const driver = new FakeDriver();
    const labels = (owner: string) => ({
      'io.container-pool.managed-by': 'container-pool',
      'io.container-pool.pool': 'default',
      'io.container-pool.owner': owner,
    });
    driver.listed = [
      { id: 'dead1', name: 'a', state: 'exited', labels: labels('x'), createdAt: new Date() },
      { id: 'sibling', name: 'b', state: 'running', labels: labels('y'), createdAt: new Date() },
      { id: 'fresh', name: 'c', state: 'created', labels: labels('y'), createdAt: new Date() },
      { id: 'stale', name: 'd', state: 'created', labels: labels('x'), createdAt: new Date(0) },
    ];
    const removed: string[] = [];
    const orig = driver.removeContainer.bind(driver);
    driver.removeContainer = (id: string) => (removed.push(id), orig(id));
    const { pool } = await start({ size: 0 }, driver);
    await pool.initialize();
    expect(removed.sort()).toEqual(['dead1', 'stale']);
    expect(pool.stats().totals.orphansRemoved).toBe(2);
  });

  it('shutdown rejects waiters, stops executions after the grace, removes everything, twice is safe', async () => {
    const driver = new FakeDriver();
    driver.execBehaviour = hangingExec;
    const { pool } = await start({ size: 2, maxContainers: 3, shutdownGraceMs: 50 }, driver);
    await pool.initialize();
    const c = await pool.acquire();
    const running = c.execute(['sleep', '100']);
    const a = await pool.acquire();
    await pool.acquire();
    const waiter = pool.acquire();
    expect(a).toBeDefined();
    await tick(5);
    const s1 = pool.shutdown();
    const s2 = pool.shutdown();
    await expect(waiter).rejects.toBeInstanceOf(PoolShuttingDownError);
    await expect(running).rejects.toBeInstanceOf(PoolShuttingDownError);
    await Promise.all([s1, s2]);
    expect(driver.live).toHaveLength(0);
    for (const made of driver.created) expect(driver.removeCounts.get(made.id)).toBe(1);
    await expect(pool.acquire()).rejects.toBeInstanceOf(PoolShuttingDownError);
  });

  it('beforeApplicationShutdown starts the shutdown without waiting for it; onApplicationShutdown awaits the same one', async () => {
    const driver = new FakeDriver();
    driver.execBehaviour = hangingExec;
    const { pool } = await start({ size: 1, shutdownGraceMs: 100 }, driver);
    await pool.initialize();
    const c = await pool.acquire();
    const running = c.execute(['sleep', '100']);
    const close = jest.spyOn(driver, 'close');
    expect(pool.beforeApplicationShutdown()).toBeUndefined();
    // No more hand-outs at once; the running execution gets the grace.
    await expect(pool.acquire()).rejects.toBeInstanceOf(PoolShuttingDownError);
    let settled = false;
    void running.catch(() => (settled = true));
    await tick(30);
    expect(settled).toBe(false);
    const t0 = Date.now();
    await pool.onApplicationShutdown();
    expect(Date.now() - t0).toBeLessThan(1000);
    await expect(running).rejects.toBeInstanceOf(PoolShuttingDownError);
    expect(driver.live).toHaveLength(0);
    expect(close).toHaveBeenCalledTimes(1);
  });

  it('waits for creates in flight at shutdown and removes what arrives', async () => {
    const driver = new FakeDriver();
    let open!: () => void;
    driver.createGate = new Promise<void>((r) => (open = r));
    const { pool } = await start({ size: 2 }, driver);
    void pool.initialize().catch(() => undefined);
    await waitFor(() => pool.stats().creating === 2, 1000, 'creates in flight');
    const s = pool.shutdown();
    open();
    await s;
    expect(driver.created).toHaveLength(2);
    expect(driver.live).toHaveLength(0);
  });

  it('is an injectable service resolved by type', async () => {
    const { pool } = await start();
    expect(pool).toBeInstanceOf(ContainerPoolService);
  });
});

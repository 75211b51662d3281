import type { INestApplication } from '@nestjs/common';
import { REFILL_DEFER_MAX_MS } from '../../src/container-pool/container-pool.constants';
import { FakeDriver, type FakeExecResult } from '../support/fake-driver';
import { createFakePool, tick, waitFor } from '../support/pool-testing';

/** Executions held by the test until it lets them finish. */
function gatedExecs(driver: FakeDriver) {
  const open: Array<() => void> = [];
  driver.execBehaviour = () =>
    new Promise<FakeExecResult>((resolve) =>
      open.push(() =>
        resolve({
          exitCode: 0,
          stdout: Buffer.from('ok\n'),
          stderr: Buffer.alloc(0),
          truncated: false,
          aborted: false,
        }),
      ),
    );
  return {
    running: () => open.length,
    finishAll: () => open.splice(0).forEach((f) => f()),
  };
}

/** After setImmediate callbacks and a few timer turns. */
const settle = () => tick(5);

/**
 * When the pool tops up: a create costs the engine more CPU than an execution, so with a healthy stock it waits
 * for the running executions; with a low stock or waiters it overlaps with them.
 */
describe('ContainerPoolService refill timing (fake driver)', () => {
  let app: INestApplication | undefined;
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  async function start(options: { size: number; maxContainers?: number }) {
    const made = await createFakePool({ maxContainers: 8, ...options });
    app = made.app;
    await app.init();
    await made.pool.initialize();
    return made;
  }

  it('with a healthy stock, tops up after the execution rather than during it', async () => {
    const { pool, driver } = await start({ size: 4 });
    expect(driver.createCalls).toBe(4);
    const gate = gatedExecs(driver);
    const run = pool.run({ cmd: ['true'] });
    await waitFor(() => gate.running() === 1, 2000, 'the execution to start');
    await settle();
    expect(driver.createCalls).toBe(4);
    expect(pool.stats()).toMatchObject({ idle: 3, leased: 1, creating: 0 });

    gate.finishAll();
    await expect(run).resolves.toMatchObject({ exitCode: 0 });
    await waitFor(() => pool.stats().idle === 4, 2000, 'the refill');
    expect(driver.createCalls).toBe(5);
  });

  it('with a low stock, refills at once while executions run', async () => {
    const { pool, driver } = await start({ size: 2 });
    const gate = gatedExecs(driver);
    const runs = [pool.run({ cmd: ['true'] }), pool.run({ cmd: ['true'] })];
    await waitFor(() => gate.running() === 2, 2000, 'both executions to start');
    // Both idle containers are leased: the stock is empty, so the refill does not wait.
    await waitFor(() => pool.stats().idle === 2, 2000, 'the refill during the executions');
    expect(gate.running()).toBe(2);
    expect(driver.createCalls).toBe(4);
    gate.finishAll();
    await Promise.all(runs);
  });

  it('waits for executions at most REFILL_DEFER_MAX_MS', async () => {
    const { pool, driver } = await start({ size: 4 });
    const gate = gatedExecs(driver);
    const started = Date.now();
    const run = pool.run({ cmd: ['true'] });
    await waitFor(() => gate.running() === 1, 2000, 'the execution to start');
    await waitFor(() => driver.createCalls === 5, REFILL_DEFER_MAX_MS + 2000, 'the bounded wait');
    expect(Date.now() - started).toBeGreaterThanOrEqual(REFILL_DEFER_MAX_MS - 50);
    expect(gate.running()).toBe(1);
    gate.finishAll();
    await run;
  });

  it('tops up at once after an acquire that runs nothing', async () => {
    const { pool, driver } = await start({ size: 2 });
    const c = await pool.acquire();
    await waitFor(() => driver.createCalls === 3, 2000, 'the refill after acquire()');
    pool.release(c);
  });

  it('never makes a waiter wait for the deferral', async () => {
    const { pool, driver } = await start({ size: 2, maxContainers: 4 });
    const gate = gatedExecs(driver);
    const runs = [1, 2, 3].map(() => pool.run({ cmd: ['true'] }));
    // Two idle containers leased, the third caller waits: it gets a new container while the others run.
    await waitFor(() => gate.running() === 3, 2000, 'the third execution to start');
    expect(driver.createCalls).toBeGreaterThanOrEqual(3);
    gate.finishAll();
    await Promise.all(runs);
  });
});

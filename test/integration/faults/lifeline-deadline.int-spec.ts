import { LABELS } from '../../../src';
import { onEngine, SlowCreateDriver } from '../../support/faults';
import {
  BUSYBOX_IMAGE,
  docker,
  engineContainers,
  eventually,
  expectNoContainersLeft,
  startPool,
} from '../../support/integration';

const LIFETIME_MS = 12_000;
const CREATE_DELAY_MS = 3_000;
const BOUND_MS = 2_000;

/**
 * 26. The pool stamps created-at and expires-at (created-at + containerLifetimeMs) before it calls the engine;
 * the lifeline is given that absolute deadline and computes what is left of it when it starts, so whatever the
 * create and start took (up to createTimeoutMs, 60 s by default) is never added to the container's life.
 */
describe('faults: a container lives at most containerLifetimeMs from its creation, even when its create was slow', () => {
  it(`a container whose create took ${CREATE_DELAY_MS} ms is gone within containerLifetimeMs + ${BOUND_MS} ms of its created-at`, async () => {
    const driver = new SlowCreateDriver();
    driver.delayMs = CREATE_DELAY_MS;
    driver.where = 'before';
    const { app, pool, name } = await startPool(
      {
        image: BUSYBOX_IMAGE,
        size: 0,
        maxContainers: 1,
        execTimeoutMs: 1_000,
        maxExecTimeoutMs: 1_000,
        replenishIntervalMs: 500,
        containerLifetimeMs: LIFETIME_MS,
      },
      driver,
    );
    try {
      await pool.initialize();
      // Held, never released: the owner is alive and never recycles a leased container itself.
      const c = await pool.acquire();
      const [row] = await engineContainers(name);
      const expiresAt = Date.parse(row.Labels[LABELS.expiresAt]);
      const startedAt = Date.parse((await docker.getContainer(c.id).inspect()).State.StartedAt);
      await eventually(async () => !(await onEngine(c.id)), LIFETIME_MS + 20_000, 'container gone');
      const goneAt = Date.now();
      console.log(
        `slow create: started ${startedAt - (expiresAt - LIFETIME_MS)} ms after created-at, gone ` +
          `${goneAt - expiresAt} ms after expires-at (${goneAt - startedAt - LIFETIME_MS} ms after start + lifetime)`,
      );
      expect(goneAt - expiresAt).toBeLessThanOrEqual(BOUND_MS);
    } finally {
      await app.close();
      await expectNoContainersLeft(name);
    }
  }, 60_000);
});

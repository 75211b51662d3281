import type { INestApplication } from '@nestjs/common';
import type { ContainerPoolService } from '../../../src/container-pool/container-pool.service';
import { DockerDriver } from '../../../src/container-pool/engine/docker/docker.driver';
import { ImageUnavailableError } from '../../../src/container-pool/errors/container-pool.errors';
import type { PullPolicy } from '../../../src/container-pool/interfaces/container-pool-options.interface';
import { expectPoolHealthy } from '../../support/hostile';
import {
  BUSYBOX_IMAGE,
  docker,
  eventually,
  expectNoContainersLeft,
  startPool,
  uniquePoolName,
} from '../../support/integration';

/** Counts image checks (each one is a pull attempt when the image is missing). */
class CountingDriver extends DockerDriver {
  ensureCalls: number[] = [];
  override ensureImage(image: string, policy: PullPolicy, log: (message: string) => void) {
    this.ensureCalls.push(Date.now());
    return super.ensureImage(image, policy, log);
  }
}

/** 19. The sandbox image is missing and there is no registry to pull it from. */
describe('faults: image missing, no registry', () => {
  let app: INestApplication | undefined;
  const repo = `container-pool-test-missing-${process.pid}`;

  afterEach(async () => {
    await app?.close();
    app = undefined;
    try {
      await docker.getImage(`${repo}:latest`).remove({ noprune: true });
    } catch {
      // the tag was not made
    }
  });

  for (const pullPolicy of ['if-not-present', 'never'] as const) {
    it(`pullPolicy ${pullPolicy}: clear error, back-off without a hot loop, no waiter left hanging, recovers when the image appears`, async () => {
      const driver = new CountingDriver();
      const name = uniquePoolName('noimage');
      const image = `${repo}:latest`;
      const host = await startPool(
        { name, image, pullPolicy, size: 2, acquireTimeoutMs: 30_000 },
        driver,
      );
      app = host.app;
      const pool: ContainerPoolService = host.pool;

      // A waiter that arrives while the first pull is still failing is rejected with the cause, not left waiting.
      const t0 = Date.now();
      const early = await pool.acquire().then(
        () => null,
        (e: unknown) => e,
      );
      expect(early).toBeInstanceOf(ImageUnavailableError);
      expect(Date.now() - t0).toBeLessThan(10_000);
      const message = (early as Error).message;
      expect(message).toContain(image);
      expect(message).toMatch(pullPolicy === 'never' ? /pullPolicy is never/ : /pull failed/);
      expect(message).toMatch(/build-sandbox-image\.sh|POOL_IMAGE/);
      expect(pool.stats()).toMatchObject({ idle: 0, leased: 0, creating: 0, waiting: 0 });
      expect(pool.stats().lastError).toContain(image);

      // Later acquires fail at once with the same typed error.
      const t1 = Date.now();
      await expect(pool.run({ cmd: ['true'] })).rejects.toBeInstanceOf(ImageUnavailableError);
      expect(Date.now() - t1).toBeLessThan(1_000);

      // Back-off: over 4 s, a handful of attempts (250 ms doubling), never a loop.
      const from = driver.ensureCalls.length;
      await new Promise((r) => setTimeout(r, 4_000));
      const attempts = driver.ensureCalls.length - from;
      expect(attempts).toBeGreaterThanOrEqual(1);
      expect(attempts).toBeLessThanOrEqual(5);
      const gaps = driver.ensureCalls.slice(1).map((t, i) => t - driver.ensureCalls[i]);
      for (let i = 1; i < gaps.length; i++)
        expect(gaps[i]).toBeGreaterThanOrEqual(gaps[i - 1] * 0.8);
      expect(
        (
          await docker.listContainers({
            all: true,
            filters: { label: [`io.container-pool.pool=${name}`] },
          })
        ).length,
      ).toBe(0);

      // The image appears (tagged locally, as an operator would build it): the pool serves without a restart.
      await docker.getImage(BUSYBOX_IMAGE).tag({ repo, tag: 'latest' });
      await eventually(
        () => pool.stats().idle === 2,
        40_000,
        'the pool filled once the image exists',
      );
      expect(pool.stats().lastError).toBeNull();
      await expectPoolHealthy(pool, name);
      await app.close();
      app = undefined;
      await expectNoContainersLeft(name);
    }, 60_000);
  }
});

import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { ContainerPoolModule } from '../../src/container-pool/container-pool.module';
import { ContainerPoolService } from '../../src/container-pool/container-pool.service';
import { CONTAINER_DRIVER } from '../../src/container-pool/container-pool.constants';
import type { ContainerPoolModuleOptions } from '../../src/container-pool/interfaces/container-pool-options.interface';
import { FakeDriver } from './fake-driver';

/** A Nest testing module with the pool on a FakeDriver. */
export async function createFakePool(
  options: ContainerPoolModuleOptions = {},
  driver = new FakeDriver(),
) {
  const moduleRef = await Test.createTestingModule({
    imports: [
      ContainerPoolModule.forRoot({
        image: 'fake:latest',
        size: 0,
        maxContainers: 4,
        replenishIntervalMs: 60_000,
        ...options,
      }),
    ],
  })
    .overrideProvider(CONTAINER_DRIVER)
    .useValue(driver)
    .compile();
  const app = moduleRef.createNestApplication({ logger: false });
  const pool = app.get(ContainerPoolService);
  return { app, pool, driver };
}

/**
 * For a describe block: `start(options, driver?)` boots a pool on a FakeDriver (app.init() included) and every
 * app it started is closed after each test.
 */
export function useFakePools() {
  const apps: INestApplication[] = [];
  afterEach(async () => {
    for (const app of apps.splice(0)) await app.close();
  });
  return async function start(options: ContainerPoolModuleOptions = {}, driver = new FakeDriver()) {
    const made = await createFakePool(options, driver);
    apps.push(made.app);
    await made.app.init();
    return made;
  };
}

/** Polls until `check` holds (or throws after `timeoutMs`). */
export async function waitFor(
  check: () => boolean,
  timeoutMs = 2000,
  what = 'condition',
): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

export const tick = (ms = 0) => new Promise((r) => setTimeout(r, ms));

import { INestApplication, Module } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import Dockerode from 'dockerode';
import { ContainerPoolModule } from '../../src/container-pool/container-pool.module';
import { ContainerPoolService } from '../../src/container-pool/container-pool.service';
import type { ContainerPoolModuleOptions } from '../../src/container-pool/interfaces/container-pool-options.interface';

/** The Python sandbox image the test scripts build (or POOL_IMAGE when set). */
export const SANDBOX_IMAGE = process.env.POOL_IMAGE || 'container-pool-sandbox:bookworm';
/** A tiny busybox image for fast shell-only tests. */
export const BUSYBOX_IMAGE = process.env.BUSYBOX_IMAGE || 'container-pool-busybox:latest';

/** Every container a test creates outside the pool carries this label (and is removed by the test). */
export const TEST_LABEL = 'io.container-pool.test';

export const docker = new Dockerode();

let seq = 0;
/**
 * A pool name unique to this test run, so that suites never see each other's containers. Every test pool name
 * starts with `test-` (global-teardown checks those for leaks).
 */
export function uniquePoolName(prefix = 'it'): string {
  return `test-${prefix}-${process.pid}-${Date.now().toString(36)}-${++seq}`;
}

/** Containers of a pool as the engine lists them (any state). */
export async function engineContainers(pool: string, extra: Record<string, string> = {}) {
  const label = [
    `io.container-pool.pool=${pool}`,
    ...Object.entries(extra).map(([k, v]) => `${k}=${v}`),
  ];
  return docker.listContainers({ all: true, filters: { label } });
}

/** Waits until the engine lists no container of the pool. */
export async function expectNoContainersLeft(pool: string, withinMs = 5000): Promise<void> {
  const until = Date.now() + withinMs;
  for (;;) {
    const left = await engineContainers(pool);
    if (!left.length) return;
    if (Date.now() > until) {
      throw new Error(
        `containers of pool ${pool} left behind: ${left.map((c) => `${c.Names[0]} ${c.State}`).join(', ')}`,
      );
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Starts a Nest app hosting a pool on the real engine. Close it with app.close(). */
export async function startPool(
  options: ContainerPoolModuleOptions = {},
): Promise<{ app: INestApplication; pool: ContainerPoolService; name: string }> {
  const name = options.name ?? uniquePoolName();
  @Module({
    imports: [
      ContainerPoolModule.forRoot({
        image: SANDBOX_IMAGE,
        pullPolicy: 'never',
        size: 1,
        maxContainers: 4,
        ...options,
        name,
      }),
    ],
  })
  class HostModule {}
  const moduleRef = await Test.createTestingModule({ imports: [HostModule] }).compile();
  const app = moduleRef.createNestApplication({ logger: ['error', 'warn'] });
  await app.init();
  return { app, pool: app.get(ContainerPoolService), name };
}

/** Polls until `check` holds. */
export async function eventually(
  check: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
  what = 'condition',
): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

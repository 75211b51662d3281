import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { CONTAINER_DRIVER } from '../../src/container-pool/container-pool.constants';
import { ContainerPoolModule } from '../../src/container-pool/container-pool.module';
import type { ContainerPoolModuleExtras } from '../../src/container-pool/container-pool.module-definition';
import { ContainerPoolService } from '../../src/container-pool/container-pool.service';
import type {
  ContainerDriver,
  ContainerSpec,
  DriverContainer,
} from '../../src/container-pool/driver/container-driver.interface';
import { DockerDriver } from '../../src/container-pool/driver/docker.driver';
import type { ContainerPoolModuleOptions } from '../../src/container-pool/interfaces/container-pool-options.interface';
import { docker, SANDBOX_IMAGE, uniquePoolName } from './integration';

/**
 * Starts a host app with the pool on the real engine, optionally through a driver of the test's making (a
 * DockerDriver subclass that injects delays or counts calls) in place of the module's own.
 */
export async function startPoolWith(
  options: ContainerPoolModuleOptions & ContainerPoolModuleExtras = {},
  driver?: ContainerDriver,
): Promise<{ app: INestApplication; pool: ContainerPoolService; name: string }> {
  const name = options.name ?? uniquePoolName('fault');
  let builder = Test.createTestingModule({
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
  });
  if (driver) builder = builder.overrideProvider(CONTAINER_DRIVER).useValue(driver);
  const moduleRef = await builder.compile();
  const app = moduleRef.createNestApplication({ logger: ['error', 'warn'] });
  await app.init();
  return { app, pool: app.get(ContainerPoolService), name };
}

/** A DockerDriver whose creates take `delayMs` longer, before the engine sees them or after they started. */
export class SlowCreateDriver extends DockerDriver {
  delayMs = 0;
  /** 'before': the engine is slow to accept; 'after': the container runs but is reported late. */
  where: 'before' | 'after' = 'before';
  inFlight = 0;
  maxInFlight = 0;
  calls = 0;

  override async createContainer(
    spec: ContainerSpec,
    signal?: AbortSignal,
  ): Promise<DriverContainer> {
    this.calls++;
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      if (this.where === 'before') await new Promise((r) => setTimeout(r, this.delayMs));
      const made = await super.createContainer(spec, signal);
      if (this.where === 'after') await new Promise((r) => setTimeout(r, this.delayMs));
      return made;
    } finally {
      this.inFlight--;
    }
  }
}

/** Is the container still on the engine (any state)? */
export async function onEngine(id: string): Promise<boolean> {
  try {
    await docker.getContainer(id).inspect();
    return true;
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode === 404) return false;
    throw err;
  }
}

/** Counts of the active handles and requests of this process, by type (sockets, timers, ...). */
export function activeResources(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const type of process.getActiveResourcesInfo()) counts[type] = (counts[type] ?? 0) + 1;
  return counts;
}

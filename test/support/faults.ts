import type {
  ContainerSpec,
  DriverContainer,
} from '../../src/container-pool/engine/container-driver.interface';
import { DockerDriver } from '../../src/container-pool/engine/docker/docker.driver';
import { docker } from './integration';

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

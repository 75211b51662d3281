import type { ContainerPoolError } from '../errors/container-pool.errors';
import type { PoolStats } from '../interfaces/container.interface';

/** What readiness reads of a pool (a profile). */
export interface ReadinessSource {
  stats(): PoolStats;
  availabilityError(): ContainerPoolError | null;
  /** How many more containers it may have now (its own cap and the module-wide one); default from stats. */
  room?(): number;
}

/**
 * Why the pool cannot serve now, or null when it can (an idle container, or room to create one).
 * `resumeHint` says how an operator resumes a drained pool (e.g. the admin route).
 */
export function notReadyReason(pool: ReadinessSource, resumeHint?: string): string | null {
  const s = pool.stats();
  if (s.shuttingDown) return 'the pool is shutting down';
  if (s.draining) {
    return `the pool is drained by an operator (${resumeHint ?? 'ContainerPoolService.resume()'} to serve again)`;
  }
  const unavailable = pool.availabilityError();
  if (unavailable) return unavailable.message;
  if (!s.engineAvailable) return s.lastError ?? 'the Docker engine has not answered yet';
  if (s.idle > 0) return null;
  if (s.lastError) return s.lastError;
  const total = s.idle + s.leased + s.creating + s.destroying;
  if (total >= s.maxContainers) {
    return `saturated: all ${s.maxContainers} containers are in use (${s.leased} leased, ${s.waiting} waiting)`;
  }
  if (pool.room && pool.room() <= 0 && s.creating === 0) {
    return (
      `saturated: the module's maxContainersTotal is reached by the other profiles (this one holds ${total}, ` +
      `${s.waiting} waiting)`
    );
  }
  return null;
}

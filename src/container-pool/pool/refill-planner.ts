import { REFILL_DEFER_MAX_MS } from '../container-pool.constants';

/** What the refill decision looks at: the pool's counts and targets at one moment. */
export interface RefillState {
  size: number;
  maxContainers: number;
  maxConcurrentCreates: number;
  draining: boolean;
  waiting: number;
  idle: number;
  creating: number;
  /** Of `creating`, those started by the engine that wait for their main process (no create slot held). */
  warming?: number;
  /** Every container the pool has: idle, leased, creating and being removed. */
  total: number;
  /** Executions running now. */
  executing: number;
  /** Skip the wait for running executions (replenish()). */
  force: boolean;
  /** Creates the limits shared with other pools allow now (SharedCapacity); unlimited when absent. */
  allowance?: number;
  /** When the current top-up started waiting for executions (0: none waits). */
  deferredSince: number;
  now: number;
}

export interface RefillPlan {
  /** Creates to start now. */
  creates: number;
  /** The new value of deferredSince. */
  deferredSince: number;
  /** Set when the top-up waits for running executions: decide again after this long at the latest. */
  retryInMs?: number;
}

/**
 * How many creates to start now: the deficit against `size` plus the waiters, bounded by the create concurrency
 * and the cap. A create costs the engine about as much CPU as several executions, and an execution running
 * meanwhile pays for it in latency. So while executions run, nobody waits and the stock is healthy (at least half
 * of `size` idle or being created), the top-up waits until they end, for at most REFILL_DEFER_MAX_MS. Low stock
 * and waiters are served at once: under sustained load the refill overlaps with the executions.
 */
export function planRefill(s: RefillState): RefillPlan {
  const target = (s.draining ? 0 : s.size) + s.waiting;
  const deficit = target - s.idle - s.creating;
  // Full again: a later top-up's wait for executions starts afresh.
  let deferredSince = deficit <= 0 ? 0 : s.deferredSince;
  const creates = Math.min(
    deficit,
    s.maxConcurrentCreates - (s.creating - (s.warming ?? 0)),
    s.maxContainers - s.total,
    s.allowance ?? Infinity,
  );
  if (creates <= 0) return { creates: 0, deferredSince };
  if (s.force) return { creates, deferredSince };
  const healthy = !s.waiting && s.idle + s.creating >= Math.ceil(s.size / 2);
  if (!s.executing || !healthy) return { creates, deferredSince: 0 };
  deferredSince ||= s.now;
  const leftMs = deferredSince + REFILL_DEFER_MAX_MS - s.now;
  if (leftMs <= 0) return { creates, deferredSince: 0 };
  return { creates: 0, deferredSince, retryInMs: leftMs };
}

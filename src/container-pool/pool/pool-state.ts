import type { PoolTotals } from '../interfaces/container.interface';
import { Backoff } from './backoff';
import type { PooledContainer } from './pooled-container';
import {
  countGenerations,
  GenerationCounts,
  refillIdle,
  refillMaxContainers,
  RolloutRule,
} from './rollout';
import type { CapacityMember } from './shared-capacity';
import { Stock } from './stock';
import { WaitQueue } from './wait-queue';

/** The state one warm pool's parts share: its containers, waiters, back-off, targets and flags. */
export class PoolState {
  readonly stock = new Stock();
  readonly waiters = new WaitQueue<PooledContainer>();
  readonly backoff = new Backoff();
  size: number;
  maxContainers: number;
  draining = false;
  shuttingDown = false;
  /** initialize() was called (the pool refills only then). */
  started = false;
  /** Executions in flight: a top-up waits for them while the stock is healthy (see planRefill). */
  executing = 0;
  /** When the current top-up started waiting for executions (0: none waits). */
  deferredSince = 0;
  /** The generation of new containers and how older ones are replaced; null before any rollout. */
  rollout: RolloutRule | null = null;

  /** The idle and leased containers by generation (fresh: the rollout's, stale: any other). */
  generations(): GenerationCounts {
    return countGenerations(this.stock.idle, this.stock.leased, this.rollout);
  }

  /** The idle count the refill plans with (see refillIdle: a rolling rollout's surge). */
  refillIdle(): number {
    if (!this.rollout) return this.stock.idle.length;
    return refillIdle(this.rollout, this.generations());
  }

  /**
   * The module-wide cap when no SharedCapacity applies it (a module of one profile whose maxContainers is within
   * maxContainersTotal): a rolling rollout's surge stays within it too.
   */
  maxTotal = Infinity;

  /** The cap the refill plans with (maxContainers, plus a rolling rollout's surge within maxTotal). */
  refillMaxContainers(): number {
    if (!this.rollout) return this.maxContainers;
    const cap = refillMaxContainers(this.rollout, this.maxContainers, this.generations());
    return Math.min(cap, Math.max(this.maxContainers, this.maxTotal));
  }

  /** This pool as the limits shared with other pools see it. */
  asCapacityMember(hooks: CapacityHooks): CapacityMember {
    return capacityMemberOf(this, hooks);
  }

  constructor(
    targets: { size: number; maxContainers: number },
    readonly totals: PoolTotals,
  ) {
    this.size = targets.size;
    this.maxContainers = targets.maxContainers;
  }
}

/** What the shared limits ask of a pool beyond its counts. */
type CapacityHooks = Pick<CapacityMember, 'pump' | 'wanted' | 'trimSurplus' | 'inFlight'>;

function capacityMemberOf(state: PoolState, hooks: CapacityHooks): CapacityMember {
  return {
    get target() {
      return state.draining ? 0 : state.size;
    },
    get reserved() {
      return state.size;
    },
    get maxContainers() {
      return state.refillMaxContainers();
    },
    get idle() {
      return state.refillIdle();
    },
    get creating() {
      return state.stock.creating;
    },
    get warming() {
      return state.stock.warmingNames.size;
    },
    get total() {
      return state.stock.total;
    },
    get waiterTimes() {
      return state.waiters.times();
    },
    pump: () => hooks.pump(),
    wanted: () => hooks.wanted(),
    trimSurplus: () => hooks.trimSurplus(),
    inFlight: () => hooks.inFlight(),
  };
}

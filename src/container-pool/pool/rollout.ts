import type { RolloutStrategy } from '../interfaces/rollout.interface';

/**
 * The rollout rules a warm pool applies once a profile was updated: which generation new containers are of, and
 * how containers of any other generation (stale ones) are replaced. Pure functions of the pool's counts; the
 * pool applies them at each scheduling step, the layer above decides what a generation is and when to give up.
 */
export interface RolloutRule {
  /** The generation of new containers: every other one is stale. */
  generation: string;
  strategy: RolloutStrategy;
  /** With `rolling`: containers warmed beyond the idle target at once (at least 1). */
  maxSurge: number;
}

/** A container's generation as the rules see it (none: made before the pool knew generations). */
export interface Generational {
  readonly generation?: string;
}

/** How many of the pool's containers are of the rule's generation (fresh) and of any other (stale). */
export interface GenerationCounts {
  freshIdle: number;
  staleIdle: number;
  freshLeased: number;
  staleLeased: number;
}

/** Whether `c` is of another generation than the rule's (never, before any rollout). */
export function isStale(c: Generational, rule: RolloutRule | null): boolean {
  return rule !== null && c.generation !== rule.generation;
}

export function countGenerations(
  idle: Iterable<Generational>,
  leased: Iterable<Generational>,
  rule: RolloutRule | null,
): GenerationCounts {
  const counts: GenerationCounts = { freshIdle: 0, staleIdle: 0, freshLeased: 0, staleLeased: 0 };
  for (const c of idle) counts[isStale(c, rule) ? 'staleIdle' : 'freshIdle']++;
  for (const c of leased) counts[isStale(c, rule) ? 'staleLeased' : 'freshLeased']++;
  return counts;
}

/** Whether a stale idle container may still be handed out: not with `recreate` (it is removed instead). */
export function handsOutStale(rule: RolloutRule | null): boolean {
  return rule?.strategy !== 'recreate';
}

/**
 * Whether hand-outs take an idle container of the new generation before older ones: with `rolling` in a pool
 * that reuses containers (they come back warm, while the old ones wait to be retired). A single-use pool hands
 * the old ones out first, as each hand-out uses one up anyway.
 */
export function handsOutFreshFirst(rule: RolloutRule | null, singleUse: boolean): boolean {
  return rule?.strategy === 'rolling' && !singleUse;
}

/**
 * Whether a released stale container that could be reused goes back to idle: only with `rolling` while stale
 * idle ones remain (the rollout has not settled), where it is retired in turn once a new one is warm; otherwise
 * it is removed (recreate: at its release; onReplenish: used up).
 */
export function reusesStale(rule: RolloutRule | null, counts: GenerationCounts): boolean {
  return rule?.strategy === 'rolling' && counts.staleIdle > 0;
}

/**
 * Whether a create of a stale generation that finishes now (it started before the rule came into force) goes to
 * idle: with `onReplenish` (used up first), with `rolling` only while stale idle ones remain (the rollout has not
 * settled); never with `recreate`. Otherwise it is removed at once, so that once update() resolved no old one
 * becomes idle again.
 */
export function keepsStaleCreated(rule: RolloutRule | null, counts: GenerationCounts): boolean {
  return rule?.strategy === 'onReplenish' || reusesStale(rule, counts);
}

/**
 * The idle count the refill plans with. With `rolling`, stale idle containers beyond `maxSurge` count as
 * idle, the others do not: so new ones are created (at most `maxSurge` beyond the target at once) while the
 * old ones still serve, and each new one ready retires an old one (see staleToRetire).
 */
export function refillIdle(rule: RolloutRule | null, counts: GenerationCounts): number {
  if (rule?.strategy !== 'rolling') return counts.freshIdle + counts.staleIdle;
  return counts.freshIdle + Math.max(0, counts.staleIdle - rule.maxSurge);
}

/** The cap the refill plans with: `maxContainers`, plus `maxSurge` while a rolling rollout has old idle ones. */
export function refillMaxContainers(
  rule: RolloutRule | null,
  maxContainers: number,
  counts: GenerationCounts,
): number {
  if (rule?.strategy !== 'rolling' || !counts.staleIdle) return maxContainers;
  return maxContainers + rule.maxSurge;
}

/** What else the retirement of old idle containers looks at. */
export interface RetireState {
  /** The idle target. */
  size: number;
  creating: number;
  /** Containers being removed. */
  destroying: number;
  /** How many more containers the pool may have now (its cap with the surge, and the module-wide one). */
  room: number;
}

/**
 * How many stale idle containers (oldest first) to remove now:
 * - `recreate`: all of them;
 * - `onReplenish`: none (they are handed out first, and recycled at their expiry);
 * - `rolling`: those above the target now that new ones are warm; and when no create can start (no room under
 *   the caps, the module-wide one included) and none is in flight or being removed, one: it is replaced by a
 *   new one, one at a time.
 */
export function staleToRetire(
  rule: RolloutRule | null,
  counts: GenerationCounts,
  s: RetireState,
): number {
  if (!rule || !counts.staleIdle) return 0;
  switch (rule.strategy) {
    case 'recreate':
      return counts.staleIdle;
    case 'onReplenish':
      return 0;
    case 'rolling': {
      const over = Math.min(
        counts.staleIdle,
        Math.max(0, counts.freshIdle + counts.staleIdle - s.size),
      );
      if (over > 0) return over;
      const stuck = s.room <= 0 && s.creating === 0 && s.destroying === 0;
      return stuck && counts.freshIdle < s.size ? 1 : 0;
    }
  }
}

/**
 * Whether update() may resolve: new creates are of the new generation already (the rule is in force), and for
 * `recreate` and `rolling` no stale container is idle and (with a warm target) one of the new generation exists.
 * `onReplenish` resolves at once.
 */
export function rolloutSettled(rule: RolloutRule, counts: GenerationCounts, target = 0): boolean {
  return rule.strategy === 'onReplenish' || (counts.staleIdle === 0 && proven(counts, target));
}

/**
 * Whether the new generation has shown it can be made: a pool that keeps containers warm (`target` > 0) has one
 * of it. Until then a `recreate` that removed every old container is not complete, so that a generation the
 * engine refuses (its image gone, its limits refused) fails at the deadline and reverts.
 */
function proven(counts: GenerationCounts, target: number): boolean {
  return target <= 0 || counts.freshIdle + counts.freshLeased > 0;
}

/**
 * Whether the rollout is complete: settled, and for `onReplenish` no stale container is idle or leased either
 * (leased ones of `recreate` and `rolling` are removed at their release; they never go back to idle).
 */
export function rolloutComplete(rule: RolloutRule, counts: GenerationCounts, target = 0): boolean {
  if (rule.strategy === 'onReplenish') return counts.staleIdle === 0 && counts.staleLeased === 0;
  return counts.staleIdle === 0 && proven(counts, target);
}

/**
 * How a profile's containers of an older generation are replaced after an update (see ContainerPool.update):
 * - `recreate`: once update() resolves, no old container is handed out; idle ones are removed at once, leased
 *   ones when released;
 * - `onReplenish`: old idle containers are handed out first, every new one is of the new generation;
 * - `rolling`: new containers are warmed (at most `maxSurge` beyond the idle target) before old idle ones go,
 *   so hand-outs stay warm throughout.
 */
export type RolloutStrategy = 'recreate' | 'onReplenish' | 'rolling';

export const ROLLOUT_STRATEGIES: readonly RolloutStrategy[] = [
  'recreate',
  'onReplenish',
  'rolling',
];

/** What update() may change of a profile at run time (not persisted: change the configuration too). */
export interface ProfilePatch {
  /** The image by name; its engine id at the time of the update decides the new generation. */
  image?: string;
  size?: number;
  maxContainers?: number;
  memoryBytes?: number | string;
  nanoCpus?: number;
  pidsLimit?: number;
  nofileLimit?: number;
  fileSizeLimitBytes?: number | string;
  tmpSizeBytes?: number | string;
  workdirSizeBytes?: number | string;
  shmSizeBytes?: number | string;
}

export interface UpdateOptions {
  /** Default: the profile's `updateStrategy` (`onReplenish` unless configured otherwise). */
  strategy?: RolloutStrategy;
  /** With `rolling`: new containers warmed beyond the target at once. Default: the profile's `maxSurge`. */
  maxSurge?: number;
}

export type RolloutState = 'idle' | 'progressing' | 'complete' | 'failed';

/** stats().rollout: where the profile's last update stands. */
export interface RolloutStatus {
  /** Strategy of the last rollout (the profile's default before any). */
  strategy: RolloutStrategy;
  /** The generation serving now: the target once complete, the previous one while progressing or failed. */
  generation: string | null;
  /** The generation being (or last) rolled out. */
  targetGeneration: string | null;
  /** `idle`: no rollout yet; `failed`: the profile went back to `generation` (see reason). */
  state: RolloutState;
  reason?: string;
  /** Containers (idle or leased) of the target generation. */
  updated: number;
  /** Containers (idle or leased) of any other generation. */
  stale: number;
  /** When the rollout started (ISO 8601), null before any. */
  startedAt: string | null;
}

/** Injection token of the engine driver (see ContainerDriver). Override it to test without Docker. */
export const CONTAINER_DRIVER = Symbol('CONTAINER_POOL_DRIVER');

/** Injection token of the validated, fully resolved options (ResolvedContainerPoolOptions). */
export const CONTAINER_POOL_RESOLVED_OPTIONS = Symbol('CONTAINER_POOL_RESOLVED_OPTIONS');

/** Injection token of this module instance's id: the owner label of its containers (a UUID per process). */
export const CONTAINER_POOL_INSTANCE_ID = Symbol('CONTAINER_POOL_INSTANCE_ID');

/**
 * Injection token of one profile's ContainerPool (`@InjectContainerPool(name)` injects it). Without a name: the
 * default profile's.
 */
export function getContainerPoolToken(profile?: string): string {
  // "(default)" is no valid profile name, so it never collides with a profile's token.
  return `ContainerPool:${profile ?? '(default)'}`;
}

/** Prefix of every label the pool puts on its containers. */
export const LABEL_PREFIX = 'io.container-pool';

export const LABELS = {
  managedBy: `${LABEL_PREFIX}.managed-by`,
  pool: `${LABEL_PREFIX}.pool`,
  profile: `${LABEL_PREFIX}.profile`,
  owner: `${LABEL_PREFIX}.owner`,
  createdAt: `${LABEL_PREFIX}.created-at`,
  expiresAt: `${LABEL_PREFIX}.expires-at`,
  /** The container's generation (see generationOf): what a rollout replaces. */
  generation: `${LABEL_PREFIX}.generation`,
} as const;

export const MANAGED_BY_VALUE = 'container-pool';

/** A container is only handed out when it has this much life left beyond the execution's timeout. */
export const LIFETIME_SAFETY_MARGIN_MS = 5_000;

/** How long execute() waits for the engine's `oom` event after an exec was SIGKILLed. */
export const OOM_EVENT_GRACE_MS = 300;

/** Refill back-off after engine or create failures. */
export const BACKOFF_INITIAL_MS = 250;
export const BACKOFF_MAX_MS = 30_000;

/** A container found in state `created` younger than this may be a sibling's create in flight. */
export const STALE_CREATED_CONTAINER_MS = 120_000;

/** Longest a top-up waits for running executions while the stock is healthy (see ContainerPoolService). */
export const REFILL_DEFER_MAX_MS = 2_000;

/** A container that dies sooner than this after its start counts as a failed create (back-off, no loop). */
export const EARLY_DEATH_MS = 2_000;

/** Injection token of the module's resolved HTTP settings (ContainerPoolHttpSettings). */
export const CONTAINER_POOL_HTTP_SETTINGS = Symbol('CONTAINER_POOL_HTTP_SETTINGS');

/**
 * Where a runner container sees its direct channel's directory (docs/runner-protocol.md, Direct channel): no
 * profile's mount (the work dir) may be, contain or lie in it.
 */
export const DIRECT_CHANNEL_DIR = '/run/container-pool';

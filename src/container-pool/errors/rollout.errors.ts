import { ContainerPoolError } from './container-pool.errors';

/** Another update() of the profile started while this one was progressing: the newer one is rolled out. */
export class RolloutSupersededError extends ContainerPoolError {
  readonly code = 'ROLLOUT_SUPERSEDED';
  constructor(readonly profile: string) {
    super(
      `The update of profile "${profile}" was superseded by a newer update before it completed: the newer one ` +
        `is being rolled out. Follow stats().rollout (GET .../profiles/${profile}) for its progress, and update ` +
        `again if the newer update is not what you want.`,
    );
  }
}

/**
 * The rollout did not complete within progressDeadlineMs (or its new containers could not be made): the profile
 * went back to the previous generation, which keeps serving.
 */
export class RolloutFailedError extends ContainerPoolError {
  readonly code = 'ROLLOUT_FAILED';
  constructor(
    readonly profile: string,
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(
      `The update of profile "${profile}" failed and the profile reverted to its previous generation: ${reason}. ` +
        `Check the new image and limits (stats().lastError, the log), raise progressDeadlineMs if the rollout ` +
        `only needs longer, then update again.`,
      options,
    );
  }
}

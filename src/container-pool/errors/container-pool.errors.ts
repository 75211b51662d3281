/**
 * Base class of every error the pool raises for infrastructure reasons (never for what the user's code did:
 * a non-zero exit, a timeout, an OOM or truncated output resolve as an ExecResult).
 * `code` is stable and meant for programs; `message` says what to do.
 */
export abstract class ContainerPoolError extends Error {
  abstract readonly code: string;
  /** Whether trying again later may succeed. */
  readonly retryable: boolean = false;

  protected constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The Docker engine does not answer (or answered with a failure that is not about the request). */
export class EngineUnavailableError extends ContainerPoolError {
  readonly code = 'ENGINE_UNAVAILABLE';
  override readonly retryable = true;
  constructor(detail: string, options?: { cause?: unknown }) {
    super(
      `Docker engine unavailable: ${detail}. Check that dockerd runs and that DOCKER_HOST (or the pool's ` +
        `\`docker\` option) points at it; the pool reconnects by itself once it answers.`,
      options,
    );
  }
}

/** The engine lacks a control the sandbox requires (e.g. seccomp) or rejects the container configuration. */
export class SandboxUnsupportedError extends ContainerPoolError {
  readonly code = 'SANDBOX_UNSUPPORTED';
  constructor(
    /** What the engine said, without this error's own words. */
    readonly detail: string,
    options?: { cause?: unknown },
  ) {
    super(`The engine cannot run the sandbox as configured: ${detail}`, options);
  }
}

/**
 * The sandbox image is missing and could not be pulled. Retryable unless only an operator can fix it (the image
 * is missing and the pull policy is `never`).
 */
export class ImageUnavailableError extends ContainerPoolError {
  readonly code = 'IMAGE_UNAVAILABLE';
  override readonly retryable: boolean;
  constructor(
    readonly image: string,
    detail: string,
    options?: { cause?: unknown; retryable?: boolean },
  ) {
    super(
      `Image ${image} is not available: ${detail}. Pull or build it on the engine (without a registry: ` +
        `\`npx container-pool image build\`, then POOL_IMAGE=container-pool-sandbox:bookworm), or set ` +
        `POOL_IMAGE to an image the engine has.`,
      options,
    );
    this.retryable = options?.retryable ?? true;
  }
}

/** Creating or starting a container failed for another reason. */
export class ContainerCreateError extends ContainerPoolError {
  readonly code = 'CONTAINER_CREATE_FAILED';
  override readonly retryable = true;
  constructor(detail: string, options?: { cause?: unknown }) {
    super(
      `Could not create a sandbox container: ${detail}. The pool retries with back-off; check the engine's log.`,
      options,
    );
  }
}

/** The engine refused to remove a container (it is still let go: its lifeline is dropped, so it exits). */
export class ContainerRemoveError extends ContainerPoolError {
  readonly code = 'CONTAINER_REMOVE_FAILED';
  override readonly retryable = true;
  constructor(
    readonly container: string,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super(
      `Could not remove container ${container}: ${detail}. It exits by itself once let go; if it stays, ` +
        `remove it with \`docker rm -f ${container}\` and check the engine's log.`,
      options,
    );
  }
}

/** No container became available within the acquire timeout. */
export class AcquireTimeoutError extends ContainerPoolError {
  readonly code = 'ACQUIRE_TIMEOUT';
  override readonly retryable = true;
  constructor(
    readonly timeoutMs: number,
    /** Why, as the pool saw it when the time ran out. */
    why = 'every container is in use (maxContainers)',
  ) {
    super(
      `No container became available within ${timeoutMs} ms: ${why}. ` +
        `Retry later, raise maxContainers or acquireTimeoutMs, or release containers sooner.`,
    );
  }
}

/** More than `maxWaiters` acquires are already waiting. */
export class TooManyWaitersError extends ContainerPoolError {
  readonly code = 'TOO_MANY_WAITERS';
  override readonly retryable = true;
  constructor(readonly maxWaiters: number) {
    super(
      `Too many callers are waiting for a container (maxWaiters ${maxWaiters}). Retry later or raise ` +
        `maxWaiters/maxContainers.`,
    );
  }
}

/** The pool is shutting down and accepts no more work. */
export class PoolShuttingDownError extends ContainerPoolError {
  readonly code = 'POOL_SHUTTING_DOWN';
  constructor() {
    super(
      'The container pool is shutting down; no container can be acquired. Send the work elsewhere.',
    );
  }
}

/** The pool is drained (an operator stopped it) and hands out nothing until resumed. */
export class PoolDrainedError extends ContainerPoolError {
  readonly code = 'POOL_DRAINED';
  override readonly retryable = true;
  constructor() {
    super(
      'The container pool is drained by an operator; resume it to serve again (ContainerPoolService.resume(), ' +
        'or POST <admin prefix>/resume on the admin API).',
    );
  }
}

/** The container died or vanished outside the pool's control (killed, removed, engine restarted). */
export class ContainerLostError extends ContainerPoolError {
  readonly code = 'CONTAINER_LOST';
  override readonly retryable = true;
  constructor(
    readonly containerName: string,
    /** What happened to it. */
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(
      `Container ${containerName} was lost: ${reason}. Its output is incomplete; run the execution again.`,
      options,
    );
  }
}

/**
 * The container's runner (transport `runner`) broke the protocol: a malformed or oversized frame, an unknown
 * type, a frame for another job, output after the exit. Nothing of what it sent is trusted: the container was
 * killed, and the execution may be run again in another one.
 */
export class RunnerProtocolError extends ContainerPoolError {
  readonly code = 'RUNNER_PROTOCOL';
  override readonly retryable = true;
  constructor(
    readonly containerName: string,
    /** The rule it broke. */
    readonly violation: string,
    options?: { cause?: unknown },
  ) {
    super(
      `Container ${containerName} broke the runner protocol (${violation}); it was killed. Run the ` +
        'execution again: a container that does this again runs code that attacks the runner.',
      options,
    );
  }
}

/** The container has too little life left for the requested execution. */
export class ContainerExpiredError extends ContainerPoolError {
  readonly code = 'CONTAINER_EXPIRED';
  constructor(containerName: string, leftMs: number, neededMs: number) {
    super(
      `Container ${containerName} is recycled in ${leftMs} ms, too soon for an execution of up to ${neededMs} ms; ` +
        `release it and acquire a fresh one.`,
    );
  }
}

/** The container was released or destroyed and cannot be used any more. */
export class ContainerReleasedError extends ContainerPoolError {
  readonly code = 'CONTAINER_RELEASED';
  constructor(containerName: string) {
    super(`Container ${containerName} was already released or destroyed; acquire a new one.`);
  }
}

/** The caller's AbortSignal fired. */
export class ExecutionAbortedError extends ContainerPoolError {
  readonly code = 'ABORTED';
  constructor(what: string, reason?: unknown) {
    super(`${what} was aborted by the caller.`, { cause: reason });
  }
}

/** The request itself is invalid (names the field). */
export class InvalidRequestError extends ContainerPoolError {
  readonly code = 'INVALID_REQUEST';
  constructor(
    readonly field: string,
    /** What is wrong with it, e.g. `must be an absolute path`. */
    readonly detail: string,
  ) {
    super(`Invalid ${field}: ${detail}`);
  }
}

/** A setting is invalid; thrown at startup, naming the setting. */
export class InvalidPoolConfigError extends ContainerPoolError {
  readonly code = 'INVALID_CONFIG';
  constructor(readonly problems: string[]) {
    super(`Invalid container pool configuration: ${problems.join('; ')}`);
  }
}

/** A profile name the module does not have (names the known ones). */
export class UnknownProfileError extends ContainerPoolError {
  readonly code = 'UNKNOWN_PROFILE';
  /** The request field that named it. */
  readonly field = 'profile';
  constructor(
    readonly profile: string,
    readonly known: string[],
  ) {
    // JSON-quoted: the name may be a caller's text (a request body or path), never trusted in a log line.
    super(
      `Unknown profile ${JSON.stringify(profile)}: the module has ${known.map((k) => `"${k}"`).join(', ')}.`,
    );
  }
}

/**
 * A file operation failed inside the container for a reason of the container's state, not of the request: the
 * disk (tmpfs) is full, the sandbox user lacks a permission, the operation timed out. Names the path.
 */
export class FileOperationError extends ContainerPoolError {
  readonly code = 'FILE_OPERATION_FAILED';
  constructor(
    readonly path: string,
    readonly detail: string,
    options?: { cause?: unknown },
  ) {
    super(`File operation on ${JSON.stringify(path)} failed: ${detail}`, options);
  }
}

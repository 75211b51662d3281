import type { EventEmitter } from 'node:events';
import { containerSpecOf, generationOf, parseValue, SETTINGS } from '../config';
import type { ProvisionTarget } from '../engine/provisioner';
import {
  ContainerPoolError,
  InvalidRequestError,
  PoolShuttingDownError,
} from '../errors/container-pool.errors';
import { RolloutFailedError, RolloutSupersededError } from '../errors/rollout.errors';
import type { ResolvedContainerPoolOptions } from '../interfaces/container-pool-options.interface';
import type { ContainerPoolEventMap } from '../interfaces/events.interface';
import {
  ROLLOUT_STRATEGIES,
  type ProfilePatch,
  type RolloutState,
  type RolloutStatus,
  type RolloutStrategy,
  type UpdateOptions,
} from '../interfaces/rollout.interface';
import type { PoolLog } from '../pool/container-source';
import type { WarmPool } from '../pool/warm-pool';

/** What the controller needs of the provisioner: the target of new creates and the image's id. */
export interface RolloutTargetSource {
  readonly imageId: string | null;
  readonly generation: string | null;
  retarget(target: ProvisionTarget | null): void;
  resolveImage(
    image: string,
    pullPolicy: ResolvedContainerPoolOptions['pullPolicy'],
  ): Promise<string>;
}

export interface RolloutControllerDeps {
  /** The profile's live options: an update changes them in place (and a revert changes them back). */
  options: ResolvedContainerPoolOptions;
  warm: WarmPool;
  target: RolloutTargetSource;
  /**
   * Chooses the transport for an image id (auto: probed once per id) and resolves with its identity, part of
   * every generation (see generationOf).
   */
  transportFor(imageId: string): Promise<string>;
  /** The profile's events: progress is checked again on each container created, acquired or destroyed. */
  events: EventEmitter<ContainerPoolEventMap>;
  log: PoolLog;
  /** Image events of the engine (a re-tag): the callback is called on each; returns the unsubscribe. */
  watchImages?(onImageEvent: () => void): () => void;
}

/** The patch fields that change what containers are made of (a new generation). */
const GENERATION_KEYS = [
  'image',
  'memoryBytes',
  'nanoCpus',
  'pidsLimit',
  'nofileLimit',
  'fileSizeLimitBytes',
  'tmpSizeBytes',
  'workdirSizeBytes',
  'shmSizeBytes',
] as const;
type GenerationKey = (typeof GENERATION_KEYS)[number];
type GenerationFields = Partial<Pick<ResolvedContainerPoolOptions, GenerationKey>>;
const SIZE_KEYS = ['size', 'maxContainers'] as const;
const PATCH_KEYS: readonly string[] = [...GENERATION_KEYS, ...SIZE_KEYS];

/** Docker's image reference grammar (distribution/reference): [domain[:port]/]path[:tag][@digest], or an image id. */
const DOMAIN =
  '(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\\[[0-9a-fA-F:]+\\])(?::[0-9]+)?';
const COMPONENT = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
const IMAGE_REFERENCE = new RegExp(
  `^(?:${DOMAIN}/)?${COMPONENT}(?:/${COMPONENT})*(?::[\\w][\\w.-]{0,127})?` +
    '(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?$',
);
const IMAGE_ID = /^(?:sha256:)?[0-9a-f]{12,64}$/;

/** A patch checked and parsed: the generation fields and the resize. */
interface ParsedPatch {
  fields: GenerationFields;
  resize: { size?: number; maxContainers?: number } | null;
}

/** Checks every field of a patch (InvalidRequestError naming the first bad one) and parses the byte sizes. */
export function parsePatch(patch: unknown, current: ResolvedContainerPoolOptions): ParsedPatch {
  if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) {
    throw new InvalidRequestError('patch', 'must be an object of the settings to change');
  }
  const fields: Record<string, unknown> = {};
  const resize: Record<string, number> = {};
  for (const [key, raw] of Object.entries(patch as Record<string, unknown>)) {
    if (raw === undefined) continue;
    if (!PATCH_KEYS.includes(key)) {
      throw new InvalidRequestError(
        key,
        `is not a setting update() changes (it changes ${PATCH_KEYS.join(', ')})`,
      );
    }
    if (key === 'image') {
      if (typeof raw !== 'string' || !raw.trim()) {
        throw new InvalidRequestError('image', 'must be a non-empty image name');
      }
      const image = raw.trim();
      // The engine answers a malformed reference with a 400 that would read as the engine failing.
      // (The configured one is known to the engine already: a re-tag rolls it out as it is.)
      const wellFormed = IMAGE_REFERENCE.test(image) || IMAGE_ID.test(image);
      if (image !== current.image && (image.length > 1024 || !wellFormed)) {
        throw new InvalidRequestError(
          'image',
          `must be an image reference such as repo/name:tag (lower case), got ${JSON.stringify(image.slice(0, 100))}`,
        );
      }
      fields.image = image;
      continue;
    }
    const setting = SETTINGS[key as keyof typeof SETTINGS];
    let value: unknown = raw;
    if (setting.kind === 'bytes' && typeof raw === 'string') {
      const parsed = parseValue('bytes', raw);
      if (parsed.error) throw new InvalidRequestError(key, parsed.error);
      value = parsed.value;
    }
    if (typeof value !== 'number' || !Number.isSafeInteger(value)) {
      throw new InvalidRequestError(key, `must be an integer, got ${JSON.stringify(raw)}`);
    }
    if (setting.min !== undefined && value < setting.min) {
      throw new InvalidRequestError(key, `must be at least ${setting.min}, got ${value}`);
    }
    if ((SIZE_KEYS as readonly string[]).includes(key)) resize[key] = value;
    else fields[key] = value;
  }
  if (!Object.keys(fields).length && !Object.keys(resize).length) {
    throw new InvalidRequestError(
      'patch',
      `names no setting to change (it changes ${PATCH_KEYS.join(', ')})`,
    );
  }
  const next = { ...current, ...fields };
  const tmpfs = next.tmpSizeBytes + next.workdirSizeBytes + next.shmSizeBytes;
  if (tmpfs >= next.memoryBytes) {
    const field =
      ['memoryBytes', 'tmpSizeBytes', 'workdirSizeBytes', 'shmSizeBytes'].find(
        (k) => k in fields,
      ) ?? 'memoryBytes';
    throw new InvalidRequestError(
      field,
      `tmpSizeBytes + workdirSizeBytes + shmSizeBytes (${tmpfs}) must be below memoryBytes ` +
        `(${next.memoryBytes}): tmpfs pages count against the memory limit`,
    );
  }
  return {
    fields: fields,
    resize: Object.keys(resize).length ? resize : null,
  };
}

/** What the profile served with when its last rollout completed (a revert goes back to it). */
interface Stable {
  fields: GenerationFields;
  target: ProvisionTarget | null;
  generation: string | null;
}

/** One update in progress. */
interface Attempt {
  strategy: RolloutStrategy;
  maxSurge: number;
  /** Its rule is in force (the pool and the provisioner were switched). */
  applied: boolean;
  /** The new image's id, once resolved. */
  imageId?: string;
  /** update() has resolved or rejected. */
  answered: boolean;
  /** Complete, failed or superseded: nothing more happens to it. */
  done: boolean;
  timer?: NodeJS.Timeout;
  /** What update() resolves with (see start()). */
  settled: Promise<RolloutStatus>;
  /** Resolves once the rollout is complete. */
  completed: Promise<RolloutStatus>;
  /** Resolves once its rule is in force (the image's id resolved, the pool switched). */
  applied$: Promise<RolloutStatus>;
  markApplied(status: RolloutStatus): void;
  /** Settles update() (the first call wins). */
  resolve(status: RolloutStatus): void;
  /** Rejects update() unless it settled, and the completion. */
  reject(error: Error): void;
  complete(status: RolloutStatus): void;
}

/** A promise and its settlers; a rejection nobody awaits is not reported as unhandled. */
function deferred<T>() {
  let resolve!: (value: T) => void;
  let reject!: (error: Error) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(() => undefined);
  return { promise, resolve, reject };
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * A profile's updates at run time: checks the patch, resolves the new image's id, switches the provisioner and
 * the warm pool to the new generation with the strategy, follows the progress to completion, gives up after
 * `progressDeadlineMs` (the profile reverts to the previous generation), lets a newer update supersede an older
 * one, and notices an image re-tagged on the engine (its image events and the scheduled tick).
 */
export class RolloutController {
  private state: RolloutState = 'idle';
  private reason?: string;
  private strategy: RolloutStrategy;
  private startedAt: string | null = null;
  private targetGeneration: string | null = null;
  private current: Attempt | null = null;
  private stable: Stable | null = null;
  /** An image id whose rollout failed: the re-tag check does not try it again. */
  private failedImageId: string | null = null;
  private checkingImage = false;
  /** The sizes before the first resize of an update since the last complete rollout (a revert restores them). */
  private resizedFrom: { size: number; maxContainers: number } | null = null;
  private stopped = false;
  private readonly unsubscribe: (() => void)[] = [];

  constructor(private readonly deps: RolloutControllerDeps) {
    this.strategy = deps.options.updateStrategy;
    // After the current task's bookkeeping: `created` is emitted before the container joins the pool's stock.
    const check = () => queueMicrotask(() => this.check());
    for (const event of ['created', 'acquired', 'destroyed'] as const) {
      deps.events.on(event, check);
      this.unsubscribe.push(() => deps.events.off(event, check));
    }
    const off = deps.watchImages?.(() => this.checkImage());
    if (off) this.unsubscribe.push(off);
  }

  private get o(): ResolvedContainerPoolOptions {
    return this.deps.options;
  }

  /** stats().rollout. */
  status(): RolloutStatus {
    const counts = this.deps.warm.generations();
    const serving = this.stable?.generation ?? this.deps.target.generation;
    const generation = this.state === 'complete' ? this.targetGeneration : serving;
    return {
      strategy: this.strategy,
      generation,
      targetGeneration: this.targetGeneration ?? generation,
      state: this.state,
      ...(this.reason !== undefined && { reason: this.reason }),
      updated: counts.freshIdle + counts.freshLeased,
      stale: counts.staleIdle + counts.staleLeased,
      startedAt: this.startedAt,
    };
  }

  /**
   * Changes the profile at run time (see ContainerPool.update). A patch of size and maxContainers only is a resize:
   * no rollout. Anything else rolls out a new generation, unless it comes to the one serving.
   */
  async update(
    patch: ProfilePatch,
    opts: UpdateOptions = {},
    imageId?: string,
  ): Promise<RolloutStatus> {
    return this.start(patch, opts, imageId).settled;
  }

  /**
   * update(), split: checks the patch and starts the rollout at once (throwing InvalidRequestError naming the
   * field), then `settled` is what update() resolves with and `completed` resolves once the rollout is complete
   * (it rejects as update() would, and when the rollout fails later). Neither is an unhandled rejection.
   */
  start(
    patch: ProfilePatch,
    opts: UpdateOptions = {},
    imageId?: string,
  ): {
    status: RolloutStatus;
    applied: Promise<RolloutStatus>;
    settled: Promise<RolloutStatus>;
    completed: Promise<RolloutStatus>;
  } {
    if (this.stopped) throw new PoolShuttingDownError();
    const parsed = parsePatch(patch, this.o);
    const strategy = opts.strategy ?? this.o.updateStrategy;
    if (!ROLLOUT_STRATEGIES.includes(strategy)) {
      throw new InvalidRequestError(
        'strategy',
        `must be one of ${ROLLOUT_STRATEGIES.join(', ')}, got ${JSON.stringify(strategy)}`,
      );
    }
    const maxSurge = opts.maxSurge ?? this.o.maxSurge;
    if (!Number.isSafeInteger(maxSurge) || maxSurge < 1) {
      throw new InvalidRequestError('maxSurge', 'must be an integer of at least 1');
    }
    // A refused size is a 400 before anything changes.
    if (parsed.resize) this.deps.warm.checkResize(parsed.resize);
    if (!Object.keys(parsed.fields).length) {
      if (parsed.resize) this.deps.warm.resize(parsed.resize);
      const status = this.status();
      // A resize alone completes nothing: what progresses goes on.
      const completed =
        this.current && !this.current.done ? this.current.completed : Promise.resolve(status);
      return {
        status,
        applied: Promise.resolve(status),
        settled: Promise.resolve(status),
        completed,
      };
    }
    const attempt = this.begin(strategy, maxSurge);
    this.run(attempt, parsed, imageId).catch((err: unknown) => {
      if (!attempt.done) this.fail(attempt, messageOf(err), err);
    });
    return {
      status: this.status(),
      applied: attempt.applied$,
      settled: attempt.settled,
      completed: attempt.completed,
    };
  }

  /** Supersedes the update in progress and starts the clock of a new one. */
  private begin(strategy: RolloutStrategy, maxSurge: number): Attempt {
    const previous = this.current;
    if (previous && !previous.done) {
      previous.done = true;
      clearTimeout(previous.timer);
      previous.reject(new RolloutSupersededError(this.o.profile));
    }
    const settled = deferred<RolloutStatus>();
    const completed = deferred<RolloutStatus>();
    const applied = deferred<RolloutStatus>();
    const attempt: Attempt = {
      strategy,
      maxSurge,
      applied: false,
      answered: false,
      done: false,
      settled: settled.promise,
      completed: completed.promise,
      applied$: applied.promise,
      markApplied: (status) => applied.resolve(status),
      resolve: (status) => {
        attempt.answered = true;
        settled.resolve(status);
      },
      reject: (error) => {
        attempt.answered = true;
        settled.reject(error);
        completed.reject(error);
        applied.reject(error);
      },
      complete: (status) => completed.resolve(status),
    };
    this.current = attempt;
    this.strategy = strategy;
    this.state = 'progressing';
    this.reason = undefined;
    this.startedAt = new Date().toISOString();
    // setTimeout fires at once beyond 2^31 - 1 ms: a longer deadline is that long (about 24.8 days).
    const deadlineMs = Math.min(this.o.progressDeadlineMs, 2 ** 31 - 1);
    attempt.timer = setTimeout(() => this.deadline(attempt), deadlineMs);
    attempt.timer.unref();
    return attempt;
  }

  private async run(attempt: Attempt, parsed: ParsedPatch, knownImageId?: string): Promise<void> {
    const next = { ...this.o, ...parsed.fields };
    let imageId: string;
    try {
      await this.ensureStable();
      imageId =
        knownImageId ??
        (parsed.fields.image !== undefined || !this.deps.target.imageId
          ? await this.deps.target.resolveImage(next.image, next.pullPolicy)
          : this.deps.target.imageId);
    } catch (err) {
      if (attempt.done) return;
      // Nothing was switched: the serving generation never stopped serving.
      this.fail(attempt, `image ${next.image}: ${messageOf(err)}`, err);
      return;
    }
    if (attempt.done) return;
    attempt.imageId = imageId;
    let transportIdentity: string;
    try {
      transportIdentity = await this.deps.transportFor(imageId);
    } catch (err) {
      if (attempt.done) return;
      // The new image cannot run this profile's transport (transport runner on an image without Python).
      this.fail(attempt, `image ${next.image}: ${messageOf(err)}`, err);
      return;
    }
    if (attempt.done) return;
    if (parsed.resize) {
      // Checked at the start; another profile may have grown meanwhile. Applied only once nothing else can fail
      // before the switch; a failed rollout restores the sizes it had before (see revert).
      const before = this.deps.warm.stats();
      try {
        this.deps.warm.resize(parsed.resize);
      } catch (err) {
        this.fail(attempt, messageOf(err), err);
        return;
      }
      this.resizedFrom ??= { size: before.size, maxContainers: before.maxContainers };
    }
    const generation = generationOf(next, imageId, transportIdentity);
    Object.assign(this.o, parsed.fields);
    this.deps.target.retarget({ shape: containerSpecOf(this.o), imageId, generation });
    this.targetGeneration = generation;
    attempt.applied = true;
    this.deps.warm.rollOut({ generation, strategy: attempt.strategy, maxSurge: attempt.maxSurge });
    attempt.markApplied(this.status());
    this.check();
  }

  /** The generation serving before the first update, as a revert would restore it. */
  private async ensureStable(): Promise<void> {
    if (this.stable) return;
    const fields = Object.fromEntries(
      GENERATION_KEYS.map((k) => [k, this.o[k]]),
    ) as GenerationFields;
    let target: ProvisionTarget | null = null;
    const { target: source } = this.deps;
    if (source.imageId && source.generation) {
      target = {
        shape: containerSpecOf(this.o),
        imageId: source.imageId,
        generation: source.generation,
      };
    } else {
      // Not prepared yet: the id the configured image has now (a failure leaves it to the preparation).
      const imageId = await source.resolveImage(this.o.image, this.o.pullPolicy).catch(() => null);
      if (imageId) {
        const generation = generationOf(this.o, imageId, await this.deps.transportFor(imageId));
        target = { shape: containerSpecOf(this.o), imageId, generation };
        source.retarget(target);
      }
    }
    this.stable ??= { fields, target, generation: target?.generation ?? null };
  }

  /** Settles update() and completes the rollout as the pool's counts allow. */
  private check(): void {
    const attempt = this.current;
    if (!attempt || attempt.done || !attempt.applied) return;
    const progress = this.deps.warm.rolloutProgress();
    if (!progress) return;
    if (progress.complete) {
      attempt.done = true;
      clearTimeout(attempt.timer);
      this.state = 'complete';
      this.resizedFrom = null;
      this.stable = {
        fields: Object.fromEntries(GENERATION_KEYS.map((k) => [k, this.o[k]])),
        target: {
          shape: containerSpecOf(this.o),
          imageId: this.deps.target.imageId ?? this.o.image,
          generation: this.targetGeneration!,
        },
        generation: this.targetGeneration,
      };
      this.deps.log.log(`rollout of generation ${this.targetGeneration} complete`);
    }
    if (progress.settled || progress.complete) attempt.resolve(this.status());
    if (progress.complete) attempt.complete(this.status());
  }

  private deadline(attempt: Attempt): void {
    if (attempt.done) return;
    const { stale } = this.status();
    this.fail(
      attempt,
      `not complete after progressDeadlineMs (${this.o.progressDeadlineMs} ms): ${stale} container(s) of ` +
        `another generation left`,
    );
  }

  /** The rollout failed: the profile goes back to the last complete generation, which keeps serving. */
  private fail(attempt: Attempt, reason: string, cause?: unknown): void {
    attempt.done = true;
    clearTimeout(attempt.timer);
    this.state = 'failed';
    this.reason = reason;
    // Applied or not (its transport check failed): the re-tag check does not try this id again.
    if (attempt.imageId) this.failedImageId = attempt.imageId;
    this.revert();
    this.deps.log.warn(`rollout failed, reverted to the previous generation: ${reason}`);
    attempt.reject(
      cause instanceof ContainerPoolError && !attempt.applied
        ? cause
        : new RolloutFailedError(this.o.profile, reason, { cause }),
    );
  }

  private revert(): void {
    const sizes = this.resizedFrom;
    this.resizedFrom = null;
    if (sizes) {
      try {
        this.deps.warm.resize(sizes);
      } catch (err) {
        // Another profile grew meanwhile: the sizes of the update stay.
        this.deps.log.warn(`revert: could not restore size ${sizes.size}: ${messageOf(err)}`);
      }
    }
    const stable = this.stable;
    const rule = this.deps.warm.rollout;
    if (!stable || !rule || rule.generation === stable.generation) return;
    Object.assign(this.o, stable.fields);
    this.deps.target.retarget(stable.target);
    this.deps.warm.forgetFailures();
    // The new generation's idle containers go at once, its leased ones at their release.
    this.deps.warm.rollOut(
      stable.generation === null
        ? null
        : { generation: stable.generation, strategy: 'recreate', maxSurge: 1 },
    );
  }

  /**
   * From the engine's image events, the scheduled tick and a preparation that found a new id: when the
   * configured image's name now stands for another image, it is rolled out with the profile's default strategy.
   * A rollout in progress is left alone; an id whose rollout failed is not tried again.
   */
  checkImage(): void {
    if (this.stopped || this.checkingImage) return;
    if (this.current && !this.current.done) return;
    const known = this.deps.target.imageId;
    if (!known) return;
    this.checkingImage = true;
    const image = this.o.image;
    this.deps.target
      .resolveImage(image, 'never')
      .then((id) => {
        if (this.stopped || id === this.deps.target.imageId || id === this.failedImageId) return;
        if (this.current && !this.current.done) return;
        this.deps.log.log(`image ${image} is now ${id}: rolling it out (${this.o.updateStrategy})`);
        this.update({ image }, {}, id).catch((err: unknown) =>
          this.deps.log.warn(`rollout of re-tagged image ${image} failed: ${messageOf(err)}`),
        );
      })
      .catch(() => undefined)
      .finally(() => (this.checkingImage = false));
  }

  /** At shutdown: a pending update() rejects, no timer stays. */
  stop(): void {
    this.stopped = true;
    for (const off of this.unsubscribe.splice(0)) off();
    const attempt = this.current;
    if (attempt && !attempt.done) {
      attempt.done = true;
      clearTimeout(attempt.timer);
      attempt.reject(new PoolShuttingDownError());
    }
  }
}

/**
 * The ports of the pool: what a warm pool needs from the world, declared here and implemented above it (the
 * provisioner for containers, the engine monitor for availability, Nest's scheduler for intervals). The pool
 * itself knows no engine, no driver and no framework.
 */
import type { ContainerPoolError } from '../errors/container-pool.errors';

/** A started container as the pool holds it; `handle` is opaque to the pool. */
export interface SourcedContainer {
  readonly id: string;
  readonly name: string;
  /** The image's name, as configured (it is created by the image's id). */
  readonly image: string;
  /** What it was made of (see generationOf); a rollout replaces containers of other generations. */
  readonly generation?: string;
  readonly createdAt: Date;
  /** When the pool recycles it: no hand-out after this. */
  readonly expiry: Date;
  /** When the container kills itself (its lifetime). */
  readonly hardDeadline: Date;
  /** What the layer that made it needs to use it (for the Docker driver: the driver's container). */
  readonly handle: unknown;
}

/** A create in flight. */
export interface PendingContainer {
  readonly name: string;
  readonly createdAt: Date;
  readonly ready: Promise<SourcedContainer>;
  /**
   * Resolves once the engine's part of the create is done (created and started) while `ready` still waits for
   * the container's own start (the runner's hello): from then on the create no longer holds a create slot
   * (maxConcurrentCreates bounds the engine's work). Absent: the slot is held until `ready` settles.
   */
  readonly started?: Promise<void>;
}

/** What happens to a container outside the pool's control. */
export interface ContainerWatch {
  /** The engine reported an OOM kill in the container. */
  oom(): void;
  /** The container died or vanished (its lifeline ended, or the engine said so); says why. */
  gone(reason: string): void;
}

/** Makes and removes the containers of one pool (tarn.js's create/destroy). Errors are ContainerPoolErrors. */
export interface ContainerSource {
  /** Called once, when the pool starts: e.g. subscribe to the engine's events. */
  start(): void;
  /** Checks the engine and the sandbox controls, removes dead leftovers, makes sure the image is there. */
  prepare(): Promise<void>;
  /**
   * Starts creating one container: its name and start time at once, `ready` once it can take work. Aborting
   * gives up (and removes it); the source bounds every create by its own deadline too.
   */
  create(signal?: AbortSignal): PendingContainer;
  /** Follows the container's fate until the returned function is called. */
  watch(container: SourcedContainer, watch: ContainerWatch): () => void;
  /** Removes a container; one already gone counts as removed. */
  remove(container: SourcedContainer): Promise<void>;
  /** Lets go of a container whose removal failed, so that it ends by itself (its lifeline closes). */
  letGo(container: SourcedContainer): void;
  /** Whether the engine answers right now (a container that died young: the engine, or the image?). */
  engineAnswers(): Promise<boolean>;
  /** From the scheduled tick: cheap, occasional upkeep (e.g. sweeping leftovers that appeared since the start). */
  housekeep(): void;
  /** Removes whatever the engine still holds of this pool's instance (after shutdown removed its own). */
  removeLeftovers(): Promise<void>;
}

/** Whether the engine answers, shared by every pool on one engine (the engine monitor). */
export interface EngineStatus {
  readonly available: boolean;
  /** Records that the engine stopped answering (an EngineUnavailableError from any call). */
  markDown(error: ContainerPoolError): void;
  /** `down`: the engine stopped answering; `reconnected`: its event stream is back (retry now). */
  subscribe(
    listener: (event: 'down' | 'reconnected', error?: ContainerPoolError) => void,
  ): () => void;
}

/** Where the pool's one interval is registered (Nest's SchedulerRegistry, or a plain timer). */
export interface IntervalHost {
  add(name: string, timer: NodeJS.Timeout): void;
  remove(name: string): void;
}

/** The logger the pool writes to (Nest's Logger fits). */
export interface PoolLog {
  log(message: string): void;
  warn(message: string): void;
  error(message: string): void;
  debug(message: string): void;
}

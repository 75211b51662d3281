import {
  BeforeApplicationShutdown,
  Inject,
  Injectable,
  Logger,
  OnApplicationShutdown,
  OnModuleInit,
  Optional,
} from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import {
  CONTAINER_DRIVER,
  CONTAINER_POOL_INSTANCE_ID,
  CONTAINER_POOL_RESOLVED_OPTIONS,
} from './container-pool.constants';
import type { ContainerDriver, EngineInfo } from './engine/container-driver.interface';
import { ContainerPoolError, InvalidRequestError } from './errors/container-pool.errors';
import type { ResolvedModuleOptions } from './interfaces/container-pool-options.interface';
import type { Container, ContainerInfo, PoolStats } from './interfaces/container.interface';
import type { ExecResult } from './interfaces/exec-result.interface';
import type { ProfileInfo } from './interfaces/profile-info.interface';
import type { ProfilePatch, RolloutStatus, UpdateOptions } from './interfaces/rollout.interface';
import type { ExecStreamEvent } from './interfaces/output-event.interface';
import type { AcquireOptions, RunRequest, StreamRequest } from './interfaces/run-request.interface';
import { execStream } from './execution/exec-stream';
import type { ContainerPool } from './profiles/container-pool';
import { PoolRegistry } from './profiles/pool-registry';
import type { OpenSessionOptions, Session, SessionInfo } from './interfaces/session.interface';

export type { ContainerPoolEventMap } from './interfaces/events.interface';

/** Which profile a call is for; the default one when omitted. */
export interface ProfileOption {
  profile?: string;
}

/**
 * The warm pools, as other Nest modules inject them: keeps each profile's containers warm, hands them out, runs
 * code in them and removes them. A facade over the module's profiles (`pool(name)` is one profile's
 * ContainerPool); the methods without a profile serve the default one. All engine access goes through the
 * ContainerDriver injected under CONTAINER_DRIVER, which this service (its owner) closes at shutdown.
 */
@Injectable()
export class ContainerPoolService
  implements OnModuleInit, BeforeApplicationShutdown, OnApplicationShutdown
{
  private readonly registry: PoolRegistry;
  private readonly log: Logger;

  constructor(
    /** The default profile's options (module-level values included); `options.profiles` has every profile's. */
    @Inject(CONTAINER_POOL_RESOLVED_OPTIONS) readonly options: ResolvedModuleOptions,
    @Inject(CONTAINER_DRIVER) driver: ContainerDriver,
    /** Unique per process: labels this instance's containers so that siblings never touch them. */
    @Inject(CONTAINER_POOL_INSTANCE_ID) readonly instanceId: string,
    @Optional() scheduler?: SchedulerRegistry,
  ) {
    this.log = new Logger(`ContainerPool:${options.name}`);
    this.registry = new PoolRegistry({
      options,
      driver,
      instanceId,
      logFor: (profile) =>
        profile ? new Logger(`ContainerPool:${options.name}/${profile}`) : this.log,
      intervals: scheduler && {
        add: (name, timer) => scheduler.addInterval(name, timer),
        remove: (name) => scheduler.deleteInterval(name),
      },
    });
  }

  /** acquired / created / createFailed / executed / destroyed of every profile (`profile` in each payload). */
  get events() {
    return this.registry.events;
  }

  onModuleInit(): void {
    // Never block the host app's start on the engine, a pull or the fill.
    this.initialize().catch(() => undefined);
  }

  /**
   * Starts the shutdown before Nest closes the HTTP server, which waits for the requests in flight: the pool stops
   * handing out at once and gives running executions (HTTP ones included) up to `shutdownGraceMs`, so closing the
   * server never waits longer than that. Does not wait for the shutdown itself (the server closes meanwhile and
   * takes no new connection): onApplicationShutdown does.
   */
  beforeApplicationShutdown(): void {
    this.shutdown().catch(() => undefined);
  }

  /** Waits for the shutdown beforeApplicationShutdown started (or starts it: `shutdown()` is idempotent). */
  async onApplicationShutdown(): Promise<void> {
    await this.shutdown();
  }

  /**
   * Connects to the engine, removes the module's dead leftovers, ensures the images and fills every profile.
   * Resolves when the default profile's first fill is done; rejects when its engine or image is unavailable
   * (the pools keep retrying in the background and recover by themselves). Idempotent.
   */
  initialize(): Promise<void> {
    return this.registry.initialize();
  }

  /**
   * Stops accepting acquires, rejects waiters, lets running executions finish for up to `shutdownGraceMs`,
   * waits for creates in flight and removes every container of this instance, in every profile; then closes
   * the engine connection. Safe to call twice.
   */
  shutdown(): Promise<void> {
    this.shutdownPromise ??= (async () => {
      const started = Date.now();
      await this.registry.shutdown();
      const totals = this.registry.all().map((p) => p.stats().totals);
      const sum = (k: 'created' | 'destroyed') => totals.reduce((n, t) => n + t[k], 0);
      this.log.log(
        `shut down in ${Date.now() - started} ms (created ${sum('created')}, destroyed ${sum('destroyed')})`,
      );
    })();
    return this.shutdownPromise;
  }

  private shutdownPromise?: Promise<void>;

  /** One profile's pool (the default one without a name); an unknown name is UnknownProfileError. */
  pool(name?: string): ContainerPool {
    return this.registry.pool(name);
  }

  /** The profiles' names, the default one first. */
  profileNames(): string[] {
    const first = this.registry.pool().name;
    return [first, ...this.registry.names().filter((n) => n !== first)];
  }

  /** Every profile: name, image, image id, transport, whether it serves, stats. */
  profiles(): ProfileInfo[] {
    return this.registry.profiles();
  }

  /**
   * Hands out a warm container of the profile, creating one when none is idle and the cap allows, else waiting
   * in FIFO order until `timeoutMs` (default acquireTimeoutMs) or the signal. Release it with release().
   */
  acquire(opts: AcquireOptions & ProfileOption = {}): Promise<Container> {
    return this.poolFor(opts.profile).then((p) => p.acquire(opts));
  }

  /**
   * Gives a container back (whichever profile it is of). Single-use pools (the default) remove it in the
   * background; release never waits for the removal. Releasing twice is harmless.
   */
  release(container: Container): void {
    const pool = this.registry.poolOf(container);
    if (!pool) throw new InvalidRequestError('container', 'is not a container of this pool');
    pool.release(container);
  }

  /** acquire(), fn(container), release(), whatever fn does. */
  async withContainer<T>(
    fn: (container: Container) => Promise<T> | T,
    opts: AcquireOptions & ProfileOption = {},
  ): Promise<T> {
    return (await this.poolFor(opts.profile)).withContainer(fn, opts);
  }

  /**
   * Acquire, execute, release, in the request's profile. Resolves for every outcome of the code (exit code,
   * timeout, OOM, truncation); rejects only with a ContainerPoolError.
   */
  async run(request: RunRequest & ProfileOption): Promise<ExecResult> {
    const { profile, ...rest } = request ?? {};
    return (await this.poolFor(profile)).run(rest);
  }

  /**
   * run() as an AsyncIterable of output events ending with one result event, in the request's profile.
   * Breaking out of the iteration aborts the run (its container is removed); an infrastructure error rejects it.
   */
  stream(request: StreamRequest & ProfileOption): AsyncIterable<ExecStreamEvent> {
    const { profile, ...rest } = request ?? {};
    return execStream(async ({ onOutput, signal }) => {
      const pool = await this.poolFor(profile);
      return pool.run({ ...rest, onOutput, signal });
    }, request?.signal);
  }

  /** The default profile's operations; `pool(name)` has every profile's. */
  replenish(): Promise<PoolStats> {
    return this.pool().replenish();
  }

  resize(change: { size?: number; maxContainers?: number }): PoolStats {
    return this.pool().resize(change);
  }

  drain(): Promise<PoolStats> {
    return this.pool().drain();
  }

  resume(): PoolStats {
    return this.pool().resume();
  }

  /**
   * Changes a profile (`opts.profile`, default the default one) at run time and rolls its new generation out:
   * see ContainerPool.update. Not persisted: change the configuration too.
   */
  update(patch: ProfilePatch, opts: UpdateOptions & ProfileOption = {}): Promise<RolloutStatus> {
    const { profile, ...rest } = opts;
    return this.poolFor(profile).then((p) => p.update(patch, rest));
  }

  containers(): ContainerInfo[] {
    return this.pool().containers();
  }

  findContainer(ref: string): Container | undefined {
    return this.pool().findContainer(ref);
  }

  availabilityError(): ContainerPoolError | null {
    return this.pool().availabilityError();
  }

  stats(): PoolStats {
    return this.pool().stats();
  }

  /**
   * Opens a code-interpreter session on a warm container of the profile (default the default one): state
   * survives between its calls; see Session. Rejects with TooManySessionsError at maxSessions (in all or for the
   * owner), InvalidRequestError naming `profile` for a profile without the runner transport, InvalidRequestError
   * naming a bad option, and the acquire's errors.
   */
  async openSession(opts: OpenSessionOptions = {}): Promise<Session> {
    const { profile, ...rest } = opts ?? {};
    return (await this.poolFor(profile)).openSession(rest);
  }

  /**
   * The open session of this id. With `owner`, only that owner's: another's is SessionNotFoundError (as an
   * unknown id); a recently closed one is SessionClosedError.
   */
  getSession(id: string, opts: { owner?: string } = {}): Session {
    return this.registry.sessions.get(id, opts.owner);
  }

  /** The open sessions, of one owner or every one. */
  sessions(opts: { owner?: string } = {}): SessionInfo[] {
    return this.registry.sessions.list(opts.owner);
  }

  /** Engine facts from the last successful check, or null. */
  engineInfo(): EngineInfo | null {
    return this.registry.engineInfo();
  }

  /** The profile's pool as a promise: an unknown profile rejects (UnknownProfileError, field `profile`). */
  // eslint-disable-next-line @typescript-eslint/require-await
  private async poolFor(profile: string | undefined): Promise<ContainerPool> {
    return this.registry.pool(profile);
  }
}

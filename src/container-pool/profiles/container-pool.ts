import { EventEmitter } from 'node:events';
import { containerSpecOf, describeSettings, generationOf } from '../config';
import type { ContainerDriver } from '../engine/container-driver.interface';
import type { EngineMonitor } from '../engine/engine-monitor';
import { Provisioner } from '../engine/provisioner';
import { InvalidRequestError } from '../errors/container-pool.errors';
import { normalizeExecRequest, normalizeRunRequest } from '../execution/exec-request';
import { Executor } from '../execution/executor';
import { LeasedFiles } from '../execution/files/container-files';
import { FileOps } from '../execution/files/file-ops';
import { normalizeRunFiles } from '../execution/files/file-request';
import { LeasedContainer, LeaseOwner } from '../execution/leased-container';
import type { ContainerFiles } from '../interfaces/files.interface';
import type { ResolvedContainerPoolOptions } from '../interfaces/container-pool-options.interface';
import type {
  Container,
  ContainerInfo,
  PoolStats,
  PoolTotals,
} from '../interfaces/container.interface';
import { CONTAINER_POOL_EVENTS, ContainerPoolEventMap } from '../interfaces/events.interface';
import type { ExecResult } from '../interfaces/exec-result.interface';
import type { ExecStreamEvent } from '../interfaces/output-event.interface';
import type {
  AcquireOptions,
  ExecOptions,
  RunRequest,
  StreamRequest,
} from '../interfaces/run-request.interface';
import { execStream } from '../execution/exec-stream';
import type { IntervalHost, PoolLog } from '../pool/container-source';
import type { PooledContainer } from '../pool/pooled-container';
import type { SharedCapacity } from '../pool/shared-capacity';
import { WarmPool } from '../pool/warm-pool';
import type { ProfileInfo } from '../interfaces/profile-info.interface';
import { notReadyReason } from './readiness';
import { RolloutController } from './rollout-controller';
import type { ProfilePatch, RolloutStatus, UpdateOptions } from '../interfaces/rollout.interface';
import { SPAN_ATTRIBUTES, setSpanAttributes, withSpan, withSpanSync } from '../tracing';
import { ProfileTransport } from '../transport/profile-transport';
import type { ContainerPoolError } from '../errors/container-pool.errors';
import { ContainerExpiredError } from '../errors/container-pool.errors';
import { LIFETIME_SAFETY_MARGIN_MS } from '../container-pool.constants';
import type { DriverContainer } from '../engine/container-driver.interface';
import type { OpenSessionOptions, Session } from '../interfaces/session.interface';
import { emptySessionTotals, PoolSession } from '../sessions/pool-session';
import type { SessionRegistry } from '../sessions/session-registry';

export interface ContainerPoolDeps {
  /** The profile's options (module-level values included). */
  options: ResolvedContainerPoolOptions;
  driver: ContainerDriver;
  monitor: EngineMonitor;
  /** Owner label value of this process's containers. */
  instanceId: string;
  log: PoolLog;
  intervals?: IntervalHost;
  /** The limits shared with the module's other profiles (none with one profile). */
  capacity?: SharedCapacity;
  /** Names of every container of the module from its create call until its removal (the sweep spares them). */
  held: Set<string>;
  /** Whether the module has several profiles (then the profile is part of container names). */
  multiProfile: boolean;
  /** Whether this profile sweeps the module's leftovers (one per module: the default profile). */
  sweeps?: boolean;
  /** The module's sessions (limits shared by every profile). */
  sessions: SessionRegistry;
}

function emptyTotals(): PoolTotals {
  return {
    created: 0,
    destroyed: 0,
    failedCreates: 0,
    acquired: 0,
    acquireTimeouts: 0,
    executions: 0,
    timeouts: 0,
    ooms: 0,
    truncated: 0,
    containersLost: 0,
    orphansRemoved: 0,
  };
}

/**
 * One pool of containers, wired: the warm pool (rules), its provisioner on the engine, the transport and the
 * executor. Every per-pool operation of ContainerPoolService is here.
 */
export class ContainerPool implements LeaseOwner {
  /** acquired / created / createFailed / executed / destroyed of this profile, its name in each (`profile`). */
  readonly events = new EventEmitter<ContainerPoolEventMap>();
  private readonly warm: WarmPool;
  private readonly provisioner: Provisioner;
  private readonly executor: Executor;
  private readonly fileOps: FileOps;
  private readonly leases = new WeakMap<PooledContainer, LeasedContainer>();
  private readonly totals = emptyTotals();
  private readonly sessionTotals = emptySessionTotals();

  constructor(private readonly deps: ContainerPoolDeps) {
    const o = deps.options;
    const { log, instanceId } = deps;
    // The parts emit into their own emitter; what reaches this.events carries the profile's name.
    const events = new EventEmitter<ContainerPoolEventMap>();
    for (const event of CONTAINER_POOL_EVENTS) {
      events.on(event, (payload: object) =>
        (this.events.emit as (e: string, p: object) => boolean)(event, {
          ...payload,
          profile: o.profile,
        }),
      );
    }
    const shape = containerSpecOf(o);
    const transport = (this.transport = new ProfileTransport(deps.driver, {
      transport: o.transport,
      image: o.image,
      pythonCommand: o.pythonCommand,
      preloadModules: o.preloadModules,
      user: o.user,
      baseEnv: shape.env,
      log,
    }));
    const what = deps.multiProfile
      ? `profile "${o.profile}" of pool "${o.name}"`
      : `pool "${o.name}"`;
    const provisioner = (this.provisioner = new Provisioner(deps.driver, deps.monitor, {
      options: o,
      shape,
      mainProcess: (deadline) => transport.mainProcess(deadline),
      chooseTransport: async (imageId, probe) => {
        await transport.choose(imageId, probe);
        transport.select(imageId);
      },
      instanceId,
      // The transport is chosen for the image first (prepare, a rollout): its identity is part of the generation.
      generationOf: (imageId) => generationOf(o, imageId, transport.identity),
      onRetarget: (target) => transport.select(target.imageId),
      onImageChanged: () => this.rollout.checkImage(),
      onHousekeep: () => this.rollout.checkImage(),
      log,
      startMessage: `${what} (instance ${instanceId}) effective settings: ${describeSettings(o)}`,
      onSwept: (count) => (this.totals.orphansRemoved += count),
      held: deps.held,
      sweeps: deps.sweeps,
      namePrefix: deps.multiProfile ? `cpool-${o.name}-${o.profile}` : `cpool-${o.name}`,
    }));
    this.warm = new WarmPool(o, {
      capacity: deps.capacity,
      maxTotal: o.maxContainersTotal,
      source: provisioner,
      engine: deps.monitor,
      log,
      events,
      totals: this.totals,
      intervals: deps.intervals,
      intervalName: `container-pool:${o.name}:${o.profile}:${instanceId}`,
    });
    this.executor = new Executor({
      pool: this.warm,
      transport,
      options: o,
      events,
      totals: this.totals,
      log,
    });
    this.fileOps = new FileOps({ pool: this.warm, transport, options: o, log });
    this.rollout = new RolloutController({
      options: o,
      warm: this.warm,
      target: provisioner,
      transportFor: async (imageId) =>
        (await transport.choose(imageId, (main) => provisioner.probe(main, imageId))).identity,
      events: this.events,
      log,
      watchImages: (listener) => deps.monitor.watchImages(listener),
    });
  }

  private readonly rollout: RolloutController;

  /**
   * Changes the profile at run time: its image, limits and size (not persisted: change the configuration too).
   * Anything but size and maxContainers makes a new generation, rolled out by `opts.strategy` (default the
   * profile's updateStrategy): see RolloutStrategy. Resolves with stats().rollout once new containers are of the
   * new generation and, for recreate and rolling, no old one is idle; onReplenish resolves at once. Rejects with
   * RolloutSupersededError when a newer update came first, RolloutFailedError (or ImageUnavailableError) when it
   * failed: the profile then serves its previous generation.
   */
  update(patch: ProfilePatch, opts?: UpdateOptions): Promise<RolloutStatus> {
    return this.rollout.update(patch, opts);
  }

  /**
   * update() for the HTTP route: checks and starts at once, `settled` as update(), `completed` once complete.
   * @internal
   */
  startUpdate(patch: ProfilePatch, opts?: UpdateOptions) {
    return this.rollout.start(patch, opts);
  }

  /** The profile's name. */
  get name(): string {
    return this.deps.options.profile;
  }

  /** The profile's options. */
  get options(): ResolvedContainerPoolOptions {
    return this.deps.options;
  }

  private readonly transport: ProfileTransport;

  /** What the profile is and whether it serves now. */
  info(): ProfileInfo {
    const o = this.deps.options;
    return {
      name: o.profile,
      image: o.image,
      imageId: this.provisioner.imageId,
      transport: this.transport.name,
      ready: notReadyReason(this) === null,
      stats: this.stats(),
    };
  }

  /** Whether `container` is one of this profile's. */
  owns(container: Container): boolean {
    return container instanceof LeasedContainer && container.belongsTo(this);
  }

  initialize(): Promise<void> {
    return this.warm.initialize();
  }

  shutdown(): Promise<void> {
    this.rollout.stop();
    return this.warm.shutdown();
  }

  private lease(entry: PooledContainer): LeasedContainer {
    let lease = this.leases.get(entry);
    if (!lease) this.leases.set(entry, (lease = new LeasedContainer(entry, this)));
    return lease;
  }

  private own(container: Container): PooledContainer {
    if (container instanceof LeasedContainer && container.belongsTo(this)) return container.entry;
    throw new InvalidRequestError('container', 'is not a container of this pool');
  }

  acquire(opts?: AcquireOptions): Promise<Container> {
    return this.acquireEntry(opts).then((entry) => this.lease(entry));
  }

  private acquireEntry(opts?: AcquireOptions): Promise<PooledContainer> {
    return withSpan('acquire', { [SPAN_ATTRIBUTES.profile]: this.name }, async (span) => {
      const entry = await this.warm.acquire(opts);
      setSpanAttributes(span, { [SPAN_ATTRIBUTES.containerId]: entry.id });
      return entry;
    });
  }

  release(container: Container): void {
    this.releaseEntry(this.own(container));
  }

  private releaseEntry(entry: PooledContainer): void {
    const attributes = {
      [SPAN_ATTRIBUTES.profile]: this.name,
      [SPAN_ATTRIBUTES.containerId]: entry.id,
    };
    withSpanSync('release', attributes, () => this.warm.release(entry));
  }

  async withContainer<T>(
    fn: (container: Container) => Promise<T> | T,
    opts?: AcquireOptions,
  ): Promise<T> {
    const c = await this.acquire(opts);
    try {
      return await fn(c);
    } finally {
      this.release(c);
    }
  }

  run(request: RunRequest): Promise<ExecResult> {
    return this.runBounded(request, Infinity);
  }

  /**
   * run() with a lower bound on the bytes collected (the HTTP route's, so that the answer fits maxBodyBytes).
   * @internal
   */
  async runBounded(request: RunRequest, collectMaxTotalBytes: number): Promise<ExecResult> {
    const prepared = this.executor.prepare(
      normalizeRunRequest(request, this.deps.options),
      request.onOutput,
    );
    const io = normalizeRunFiles(request, this.deps.options);
    const queuedFrom = performance.now();
    const entry = await this.acquireEntry({
      signal: request.signal,
      execTimeoutMs: prepared.timeoutMs,
    });
    const queuedMs = performance.now() - queuedFrom;
    try {
      await this.fileOps.writeMany(entry, io.files, (i) => `files[${i}].path`);
      const result = await this.executor.run(entry, prepared, request.signal, queuedMs);
      if (!io.collect) return result;
      // Only after the program exited by itself (a timeout, an abort or a loss leaves nothing to collect).
      if (result.timedOut || result.exitCode === null) {
        return { ...result, files: [], filesTruncated: false };
      }
      const o = this.deps.options;
      const collected = await this.fileOps.collect(entry, io.collect, {
        maxFiles: o.maxFiles,
        maxFileBytes: o.maxFileBytes,
        maxTotalBytes: Math.min(o.maxFilesTotalBytes, collectMaxTotalBytes),
      });
      return { ...result, ...collected };
    } finally {
      this.releaseEntry(entry);
    }
  }

  /** Container.files. */
  files(entry: PooledContainer): ContainerFiles {
    return new LeasedFiles(this.fileOps, entry, this.deps.options.maxFileBytes);
  }

  /**
   * run() as an AsyncIterable: output events as they arrive, then one result event (see execStream). Breaking
   * out aborts the run; an infrastructure error rejects the iteration with the typed error.
   */
  stream(request: StreamRequest): AsyncIterable<ExecStreamEvent> {
    return execStream(
      ({ onOutput, signal }) => this.run({ ...request, onOutput, signal }),
      request?.signal,
    );
  }

  /** Container.execute(). */
  async execute(
    entry: PooledContainer,
    cmd: string[],
    opts: ExecOptions = {},
  ): Promise<ExecResult> {
    const prepared = this.executor.prepare(
      normalizeExecRequest(cmd, opts, this.deps.options),
      opts.onOutput,
    );
    return this.executor.run(entry, prepared, opts.signal, 0);
  }

  /** Container.destroy(). */
  destroy(entry: PooledContainer): Promise<void> {
    return this.warm.destroy(entry);
  }

  replenish(): Promise<PoolStats> {
    return this.warm.replenish().then(() => this.stats());
  }

  resize(change: { size?: number; maxContainers?: number }): PoolStats {
    this.warm.resize(change);
    return this.stats();
  }

  drain(): Promise<PoolStats> {
    return this.warm.drain().then(() => this.stats());
  }

  resume(): PoolStats {
    this.warm.resume();
    return this.stats();
  }

  containers(): ContainerInfo[] {
    return this.warm.containers();
  }

  findContainer(ref: string): Container | undefined {
    const entry = this.warm.find(ref);
    return entry && this.lease(entry);
  }

  /** How many more containers it may have now: its maxContainers, and its share of maxContainersTotal. */
  room(): number {
    return this.warm.room();
  }

  availabilityError(): ContainerPoolError | null {
    return this.warm.unavailable();
  }

  stats(): PoolStats {
    return {
      ...this.warm.stats(),
      transport: this.transport.name,
      rollout: this.rollout.status(),
      sessions: { open: this.deps.sessions.countIn(this.name), ...this.sessionTotals },
    };
  }

  /**
   * Opens a session on a warm container of this profile (runner transport): see Session. The container has at
   * least `maxLifetimeMs` + a margin of life left; it is removed when the session closes.
   */
  openSession(opts: OpenSessionOptions = {}): Promise<Session> {
    const o = this.deps.options;
    if (opts === null || typeof opts !== 'object') {
      throw new InvalidRequestError('options', 'must be an object');
    }
    const idleTimeoutMs = positiveInt('idleTimeoutMs', opts.idleTimeoutMs, o.sessionIdleTimeoutMs);
    const maxLifetimeMs = positiveInt('maxLifetimeMs', opts.maxLifetimeMs, o.sessionMaxLifetimeMs);
    if (maxLifetimeMs > o.sessionMaxLifetimeMs) {
      throw new InvalidRequestError(
        'maxLifetimeMs',
        `must not be greater than the profile's sessionMaxLifetimeMs (${o.sessionMaxLifetimeMs})`,
      );
    }
    const owner = opts.owner ?? 'local';
    if (typeof owner !== 'string' || !owner || owner.length > 256) {
      throw new InvalidRequestError('owner', 'must be a string of 1 to 256 characters');
    }
    if (o.transport === 'exec') throw this.noSessions('its transport is exec');
    return this.deps.sessions.add(owner, async () => {
      const entry = await this.acquireEntry({});
      try {
        const leftMs = entry.hardDeadline.getTime() - Date.now();
        if (leftMs < maxLifetimeMs + LIFETIME_SAFETY_MARGIN_MS) {
          throw new ContainerExpiredError(entry.name, leftMs, maxLifetimeMs);
        }
        const channel = this.transport.sessionChannel(entry.source.handle as DriverContainer);
        if (!channel) throw this.noSessions('its image has no Python >= 3.8 the runner can use');
        const session = new PoolSession({
          owner,
          entry,
          channel,
          warm: this.warm,
          options: o,
          files: this.files(entry),
          baseEnv: containerSpecOf(o).env,
          idleTimeoutMs,
          maxLifetimeMs,
          totals: this.sessionTotals,
          log: this.deps.log,
          onClosed: (s, reason) => this.deps.sessions.closedOne(s, reason),
        });
        this.sessionTotals.opened++;
        this.deps.log.log(
          `session ${session.id} opened container=${entry.name} owner=${JSON.stringify(owner)} ` +
            `idleTimeoutMs=${idleTimeoutMs} maxLifetimeMs=${maxLifetimeMs}`,
        );
        return session;
      } catch (err) {
        void this.warm.destroy(entry, 'session not opened');
        throw err;
      }
    });
  }

  /** A profile that cannot hold sessions: the request's choice of profile is wrong. */
  private noSessions(why: string): InvalidRequestError {
    return new InvalidRequestError(
      'profile',
      `"${this.name}" cannot hold sessions: ${why}. Sessions need the runner transport (transport auto or ` +
        'runner, an image with python3 >= 3.8): open one on such a profile',
    );
  }
}

function positiveInt(field: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw new InvalidRequestError(
      field,
      `must be a positive integer (ms), got ${JSON.stringify(value)}`,
    );
  }
  return value;
}

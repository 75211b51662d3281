import {
  LABELS,
  LIFETIME_SAFETY_MARGIN_MS,
  MANAGED_BY_VALUE,
  STALE_CREATED_CONTAINER_MS,
} from '../container-pool.constants';
import { EngineUnavailableError, ImageUnavailableError } from '../errors/container-pool.errors';
import type { ResolvedContainerPoolOptions } from '../interfaces/container-pool-options.interface';
import type {
  ContainerSource,
  ContainerWatch,
  PendingContainer,
  PoolLog,
  SourcedContainer,
} from '../pool/container-source';
import type { ContainerShape } from '../config/container-spec';
import type {
  ContainerDriver,
  ContainerSpec,
  DriverContainer,
  MainProcess,
} from './container-driver.interface';
import { SPAN_ATTRIBUTES, setSpanAttributes, withSpan } from '../tracing';
import type { EngineMonitor } from './engine-monitor';

/** The options a provisioner works with. */
export type ProvisionerOptions = Pick<
  ResolvedContainerPoolOptions,
  | 'name'
  | 'profile'
  | 'image'
  | 'pullPolicy'
  | 'requireSeccomp'
  | 'seccompProfile'
  | 'runtime'
  | 'createTimeoutMs'
  | 'containerLifetimeMs'
  | 'maxExecTimeoutMs'
  | 'sessionMaxLifetimeMs'
  | 'maxSessions'
>;

export interface ProvisionerDeps {
  options: ProvisionerOptions;
  /** What the options decide of every container. */
  shape: ContainerShape;
  /** The transport's main process of a container that must be gone by `deadline`. */
  mainProcess(deadline: Date): MainProcess;
  /**
   * Decides the transport for the image (its id once ensured), at each preparation; `probe` creates a throwaway
   * container with a given main process and removes it.
   */
  /** New containers are made of `target` from now on (its transport was chosen for its image before). */
  onRetarget?(target: ProvisionTarget): void;
  chooseTransport?(
    imageId: string | null,
    probe: (main: (deadline: Date) => MainProcess) => Promise<void>,
  ): Promise<void>;
  /** The owner label value: this process's instance. */
  instanceId: string;
  /** The generation of containers of `shape` made from this image id (see generationOf). */
  generationOf(imageId: string): string;
  /** A later preparation found another id for the image's name (a re-tag): a rollout's business, not ours. */
  onImageChanged?(imageId: string): void;
  /** Called at each scheduled tick (a rollout checks the image's id). */
  onHousekeep?(): void;
  log: PoolLog;
  /** Logged once, when the pool starts (the effective settings). */
  startMessage: string;
  /** Counts leftovers removed by the sweep (the `orphansRemoved` total). */
  onSwept(count: number): void;
  /**
   * Names of every container of the module (all its profiles) from its create call until its removal, shared
   * by the module's provisioners: the start-up sweep removes this instance's containers only when none holds
   * them.
   */
  held: Set<string>;
  /**
   * Whether this provisioner sweeps the module's leftovers (at its preparation and every minute). One per module
   * does (the default profile's): the sweep goes by the module's name, so the others would only repeat it.
   */
  sweeps?: boolean;
  /** Start of the container names, e.g. `cpool-<pool>` (`cpool-<pool>-<profile>` with several profiles). */
  namePrefix: string;
}

/** A pooled container on the engine: the pool's view, holding the driver's container. */
interface EngineContainer extends SourcedContainer {
  readonly handle: DriverContainer;
}

/** What new containers are made of: a rollout switches it (see retarget). */
export interface ProvisionTarget {
  shape: ContainerShape;
  /** The engine's id of the image: containers are created by it, never by the name. */
  imageId: string;
  /** Their generation label. */
  generation: string;
}

/** How often the scheduled tick sweeps again. */
const HOUSEKEEPING_INTERVAL_MS = 60_000;

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * The ContainerSource of one pool on one engine: names and labels its containers (managed-by, pool, owner,
 * created-at, expires-at, generation), bounds each create by `createTimeoutMs`, prepares the engine (sandbox
 * controls, sweep of dead leftovers, image) and follows each container's fate through its lifeline and the
 * engine monitor's events.
 */
export class Provisioner implements ContainerSource {
  private nameCounter = 0;
  private readonly held: Set<string>;
  /** What new containers are made of; set by the first preparation (or a rollout). */
  private target: ProvisionTarget | null = null;
  private readonly labels: Record<string, string>;

  private readonly options: ProvisionerOptions;
  private readonly instanceId: string;
  private readonly log: PoolLog;

  constructor(
    private readonly driver: ContainerDriver,
    private readonly monitor: EngineMonitor,
    private readonly deps: ProvisionerDeps,
  ) {
    const { options, instanceId } = deps;
    this.options = options;
    this.instanceId = instanceId;
    this.log = deps.log;
    this.held = deps.held;
    this.labels = {
      [LABELS.managedBy]: MANAGED_BY_VALUE,
      [LABELS.pool]: options.name,
      [LABELS.profile]: options.profile,
      [LABELS.owner]: instanceId,
    };
  }

  /** The engine's id of the image new containers are created from, once known. */
  get imageId(): string | null {
    return this.target?.imageId ?? null;
  }

  /** The generation of new containers, once known. */
  get generation(): string | null {
    return this.target?.generation ?? null;
  }

  /** New containers are made of this from now on (a rollout, or its revert). */
  retarget(target: ProvisionTarget | null): void {
    this.target = target;
    if (target) this.deps.onRetarget?.(target);
  }

  /** Makes sure the image is there by the policy and resolves with its engine id (its name when unknown). */
  async resolveImage(image: string, pullPolicy: ProvisionerOptions['pullPolicy']): Promise<string> {
    return (await this.driver.ensureImage(image, pullPolicy, (m) => this.log.log(m))) || image;
  }

  start(): void {
    this.log.log(this.deps.startMessage);
    this.monitor.start();
  }

  /** When the last sweep ran (ms since the epoch). */
  private sweptAt = 0;

  /**
   * From the pool's scheduled tick: sweeps again at most once a minute, so leftovers that appear while it runs
   * (a create whose owner died between create and start: it never runs, so the engine never removes it) go too.
   */
  housekeep(): void {
    this.deps.onHousekeep?.();
    if (Date.now() - this.sweptAt < HOUSEKEEPING_INTERVAL_MS) return;
    this.sweptAt = Date.now();
    this.sweep().catch((err: unknown) =>
      this.log.debug(`periodic sweep failed: ${messageOf(err)}`),
    );
  }

  async prepare(): Promise<void> {
    const o = this.options;
    const info = await this.monitor.check();
    this.driver.verifySandbox(info, {
      seccomp: o.requireSeccomp && !o.seccompProfile,
      runtime: o.runtime,
    });
    await this.sweep();
    const imageId = await this.resolveImage(o.image, o.pullPolicy);
    if (!this.target) {
      // The transport is decided for the image (auto: a runner probe) before the generation, which names it.
      await this.deps.chooseTransport?.(imageId, (main) => this.probe(main, imageId));
      this.target = {
        shape: this.deps.shape,
        imageId,
        generation: this.deps.generationOf(imageId),
      };
    } else if (imageId !== this.target.imageId) {
      // Containers are created by id: a new id behind the name changes nothing until it is rolled out.
      this.deps.onImageChanged?.(imageId);
    }
  }

  /**
   * A container of the pool's shape with this main process, created (ready included) and removed at once:
   * labelled as the pool's, so a crash in between leaves nothing the sweep would not remove.
   */
  async probe(main: (deadline: Date) => MainProcess, imageId?: string): Promise<void> {
    const name = `${this.deps.namePrefix}-${this.instanceId.slice(0, 8)}-probe-${++this.nameCounter}`;
    const createdAt = new Date();
    const hardDeadline = new Date(
      createdAt.getTime() + Math.min(this.options.containerLifetimeMs, 60_000),
    );
    const spec: ContainerSpec = {
      ...this.deps.shape,
      ...(imageId ? { image: imageId } : {}),
      ...main(hardDeadline),
      name,
      labels: {
        ...this.labels,
        [LABELS.createdAt]: createdAt.toISOString(),
        [LABELS.expiresAt]: hardDeadline.toISOString(),
      },
    };
    this.held.add(name);
    try {
      const made = await this.driver.createContainer(
        spec,
        AbortSignal.timeout(this.options.createTimeoutMs),
      );
      await this.driver.removeContainer(made.id).catch(() => made.detach?.());
    } finally {
      this.held.delete(name);
    }
  }

  /**
   * Removes this pool's containers left by dead instances: not running (AutoRemove covers most; this covers
   * containers that never started), or past their lifetime. A sibling's live containers are never touched.
   */
  private async sweep(): Promise<void> {
    this.sweptAt = Date.now();
    if (this.deps.sweeps === false) return;
    const rows = await this.driver.listContainers({
      [LABELS.managedBy]: MANAGED_BY_VALUE,
      [LABELS.pool]: this.options.name,
    });
    const now = Date.now();
    const doomed = rows.filter((r) => {
      // This instance's own: the pools remove those they hold; here whatever none of them holds, not running.
      if (r.labels[LABELS.owner] === this.instanceId) {
        return !this.held.has(r.name) && r.state !== 'running';
      }
      if (r.state === 'stopped') return true;
      if (r.state === 'created') return now - r.createdAt.getTime() > STALE_CREATED_CONTAINER_MS;
      const expires = Date.parse(r.labels[LABELS.expiresAt] ?? '');
      return r.state === 'running' && Number.isFinite(expires) && now > expires + 60_000;
    });
    if (!doomed.length) return;
    const results = await Promise.allSettled(doomed.map((r) => this.driver.removeContainer(r.id)));
    const removed = doomed.filter((_, i) => results[i].status === 'fulfilled');
    if (removed.length) {
      this.deps.onSwept(removed.length);
      this.log.warn(
        `removed ${removed.length} leftover container(s) of pool "${this.options.name}": ` +
          removed.map((r) => `${r.name} (${r.engineState})`).join(', '),
      );
    }
    results.forEach((r, i) => {
      if (r.status !== 'rejected') return;
      // The engine going away fails the preparation; one stubborn leftover never does.
      if (r.reason instanceof EngineUnavailableError) throw r.reason;
      this.log.warn(
        `could not remove leftover container ${doomed[i].name}: ${messageOf(r.reason)}`,
      );
    });
  }

  create(signal?: AbortSignal): PendingContainer {
    const o = this.options;
    const name = `${this.deps.namePrefix}-${this.instanceId.slice(0, 8)}-${++this.nameCounter}`;
    const createdAt = new Date();
    const hardDeadline = new Date(createdAt.getTime() + o.containerLifetimeMs);
    // prepare() ran before any create (the pool creates only once prepared).
    const target = this.target ?? {
      shape: this.deps.shape,
      imageId: o.image,
      generation: this.deps.generationOf(o.image),
    };
    const { slowReady, ...main } = this.deps.mainProcess(hardDeadline);
    // A slow main process (the runner): the engine's part is done once its readiness is awaited, and the create
    // slot frees then.
    let markStarted!: () => void;
    const started = slowReady ? new Promise<void>((r) => (markStarted = r)) : undefined;
    const spec: ContainerSpec = {
      ...target.shape,
      image: target.imageId,
      ...main,
      ...(started && {
        // The driver says when the engine's part is done (started); a driver that does not, once it awaits ready.
        started: () => markStarted(),
        ready: (c: DriverContainer, s?: AbortSignal) => {
          markStarted();
          return main.ready(c, s);
        },
      }),
      name,
      labels: {
        ...this.labels,
        [LABELS.generation]: target.generation,
        [LABELS.createdAt]: createdAt.toISOString(),
        [LABELS.expiresAt]: hardDeadline.toISOString(),
      },
    };
    const deadline = new AbortController();
    const timer = setTimeout(
      () => deadline.abort(new Error(`create took longer than ${o.createTimeoutMs} ms`)),
      o.createTimeoutMs,
    );
    const bounded = signal ? AbortSignal.any([signal, deadline.signal]) : deadline.signal;
    this.held.add(name);
    const created = this.driver.createContainer(spec, bounded);
    created.then(
      () => clearTimeout(timer),
      () => {
        clearTimeout(timer);
        this.held.delete(name);
      },
    );
    const ready = withSpan('create', { [SPAN_ATTRIBUTES.profile]: o.profile }, async (span) => {
      const dc = await created.catch((err: unknown) => {
        // The image went away after the start: with pullPolicy never only an operator brings it back.
        if (err instanceof ImageUnavailableError && o.pullPolicy === 'never' && err.retryable) {
          throw new ImageUnavailableError(
            o.image,
            'the engine no longer has it and pullPolicy is never',
            {
              cause: err,
              retryable: false,
            },
          );
        }
        throw err;
      });
      setSpanAttributes(span, { [SPAN_ATTRIBUTES.containerId]: dc.id });
      const made: EngineContainer = {
        id: dc.id,
        name: dc.name,
        image: o.image,
        generation: target.generation,
        createdAt,
        // Recycle early enough that the longest allowed execution (or session) still fits in the lifetime.
        expiry: new Date(hardDeadline.getTime() - handOutLifeMs(o) - LIFETIME_SAFETY_MARGIN_MS),
        hardDeadline,
        handle: dc,
      };
      return made;
    });
    return { name, createdAt, ready, ...(started && { started }) };
  }

  watch(container: SourcedContainer, watch: ContainerWatch): () => void {
    const c = container as EngineContainer;
    let done = false;
    const stop = this.monitor.watchContainer(c.id, (e) => {
      if (done) return;
      if (e.type === 'oom') watch.oom();
      else watch.gone(e.type === 'die' ? 'it exited' : 'it was removed');
    });
    void c.handle.exited.then((reason) => {
      if (!done) watch.gone(reason);
    });
    return () => {
      done = true;
      stop();
    };
  }

  remove(container: SourcedContainer): Promise<void> {
    const forget = () => this.held.delete(container.name);
    const removal = this.driver.removeContainer(container.id);
    removal.then(forget, forget);
    return removal;
  }

  letGo(container: SourcedContainer): void {
    (container as EngineContainer).handle.detach?.();
  }

  engineAnswers(): Promise<boolean> {
    return this.monitor.answers();
  }

  async removeLeftovers(): Promise<void> {
    try {
      const left = await this.driver.listContainers({
        [LABELS.owner]: this.instanceId,
        [LABELS.pool]: this.options.name,
        [LABELS.profile]: this.options.profile,
      });
      await Promise.allSettled(left.map((c) => this.driver.removeContainer(c.id)));
    } catch {
      // The engine went away: the containers' lifelines end with this process anyway.
    }
  }
}

/** The life a container must still have when it is handed out: the longest execution, or session. */
export function handOutLifeMs(
  o: Pick<
    ResolvedContainerPoolOptions,
    'maxExecTimeoutMs' | 'sessionMaxLifetimeMs' | 'maxSessions'
  >,
): number {
  return Math.max(o.maxExecTimeoutMs, o.maxSessions > 0 ? o.sessionMaxLifetimeMs : 0);
}

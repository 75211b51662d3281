import { EventEmitter } from 'node:events';
import {
  Inject,
  Injectable,
  Logger,
  OnApplicationShutdown,
  OnModuleInit,
  Optional,
} from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import { v4 as uuidv4 } from 'uuid';
import { configHash, containerSpecOf, describeSettings } from './config';
import {
  BACKOFF_INITIAL_MS,
  BACKOFF_MAX_MS,
  CONTAINER_DRIVER,
  CONTAINER_POOL_RESOLVED_OPTIONS,
  LABELS,
  LIFETIME_SAFETY_MARGIN_MS,
  MANAGED_BY_VALUE,
  OOM_EVENT_GRACE_MS,
  REFILL_DEFER_MAX_MS,
  EARLY_DEATH_MS,
  STALE_CREATED_CONTAINER_MS,
} from './container-pool.constants';
import type {
  ContainerDriver,
  ContainerSpec,
  EngineEvent,
  EngineInfo,
  EventSubscription,
} from './engine/container-driver.interface';
import {
  AcquireTimeoutError,
  ContainerCreateError,
  ContainerExpiredError,
  ContainerLostError,
  ContainerPoolError,
  ContainerReleasedError,
  EngineUnavailableError,
  ExecutionAbortedError,
  ImageUnavailableError,
  InvalidRequestError,
  PoolDrainedError,
  PoolShuttingDownError,
  SandboxUnsupportedError,
  TooManyWaitersError,
} from './errors/container-pool.errors';
import { normalizeExecOptions, toCommand } from './execution/exec-request';
import type { ResolvedContainerPoolOptions } from './interfaces/container-pool-options.interface';
import type {
  Container,
  ContainerInfo,
  PoolStats,
  PoolTotals,
} from './interfaces/container.interface';
import type { ExecResult } from './interfaces/exec-result.interface';
import type { AcquireOptions, ExecOptions, RunRequest } from './interfaces/run-request.interface';
import { PendingAcquire } from './pool/pending-acquire';
import { ActiveExecution, ContainerOwner, PooledContainer } from './pool/pooled-container';

/** Errors after which nothing can be created until the cause is fixed: acquires fail fast meanwhile. */
function isPoolWide(err: unknown): boolean {
  return (
    err instanceof EngineUnavailableError ||
    err instanceof ImageUnavailableError ||
    err instanceof SandboxUnsupportedError
  );
}

function asPoolError(err: unknown): ContainerPoolError {
  if (err instanceof ContainerPoolError) return err;
  return new ContainerCreateError(err instanceof Error ? err.message : String(err), { cause: err });
}

/** How long a killed execution waits for its container's removal before it returns (the kill is issued). */
const KILL_WAIT_MS = 500;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());

/** Events the pool emits for observers (metrics): see ContainerPoolService.events. */
export interface ContainerPoolEventMap {
  acquired: [{ waitMs: number }];
  created: [{ durationMs: number }];
  createFailed: [{ error: ContainerPoolError }];
  executed: [{ result: ExecResult }];
  destroyed: [{ reason: string }];
}

/**
 * The warm pool: keeps `size` hardened containers started, hands them out, runs code in them and removes them.
 * All engine access goes through the ContainerDriver injected under CONTAINER_DRIVER.
 */
@Injectable()
export class ContainerPoolService implements ContainerOwner, OnModuleInit, OnApplicationShutdown {
  /** Unique per process: labels this instance's containers so that siblings never touch them. */
  readonly instanceId = uuidv4();
  /** acquired / created / createFailed / executed / destroyed, for metrics. */
  readonly events = new EventEmitter<ContainerPoolEventMap>();

  private readonly logger: Logger;
  private readonly spec: Omit<ContainerSpec, 'name' | 'labels'>;
  private readonly labels: Record<string, string>;
  private readonly hash: string;
  private size: number;
  private maxContainers: number;

  private readonly idle: PooledContainer[] = [];
  private readonly leased = new Set<PooledContainer>();
  private readonly byId = new Map<string, PooledContainer>();
  private readonly creatingNames = new Map<string, Date>();
  private destroying = 0;
  private readonly waiters: PendingAcquire<PooledContainer>[] = [];
  private readonly inFlight = new Set<Promise<unknown>>();
  /** Creates in flight (their promises settle, never reject, once the container is in or the create failed). */
  private readonly creates = new Set<Promise<void>>();
  private nameCounter = 0;

  private engine: EngineInfo | null = null;
  private engineAvailable = false;
  private prepared = false;
  private preparing?: Promise<void>;
  private lastError: ContainerPoolError | null = null;
  private failureStreak = 0;
  private backoffUntil = 0;
  private retryTimer?: NodeJS.Timeout;
  /** Executions in flight: a top-up waits for them while the stock is healthy (see deferRefill). */
  private executing = 0;
  /** When the current top-up started waiting for executions (0: none waits). */
  private refillDeferredSince = 0;
  private refillTimer?: NodeJS.Timeout;
  private pumpQueued = false;
  /** Containers died right after their start: a create only counts as a success once one lives on. */
  private earlyDeathSuspected = false;
  private draining = false;
  private shuttingDown = false;
  private initPromise?: Promise<void>;
  private shutdownPromise?: Promise<void>;
  private eventSub?: EventSubscription;
  private intervalName?: string;

  private readonly totals: PoolTotals = {
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

  constructor(
    @Inject(CONTAINER_POOL_RESOLVED_OPTIONS) readonly options: ResolvedContainerPoolOptions,
    @Inject(CONTAINER_DRIVER) private readonly driver: ContainerDriver,
    @Optional() private readonly scheduler?: SchedulerRegistry,
  ) {
    const o = options;
    this.logger = new Logger(`ContainerPool:${o.name}`);
    this.size = o.size;
    this.maxContainers = o.maxContainers;
    this.hash = configHash(o);
    this.labels = {
      [LABELS.managedBy]: MANAGED_BY_VALUE,
      [LABELS.pool]: o.name,
      [LABELS.owner]: this.instanceId,
      [LABELS.configHash]: this.hash,
    };
    this.spec = containerSpecOf(o);
  }

  // ---------------------------------------------------------------- lifecycle

  onModuleInit(): void {
    // Never block the host app's start on the engine, a pull or the fill.
    this.initialize().catch(() => undefined);
  }

  async onApplicationShutdown(): Promise<void> {
    await this.shutdown();
  }

  /**
   * Connects to the engine, removes this pool's dead leftovers, ensures the image and fills the pool. Resolves
   * when the first fill is done; rejects when the engine or image is unavailable (the pool keeps retrying in the
   * background and recovers by itself). Idempotent.
   */
  initialize(): Promise<void> {
    this.initPromise ??= this.doInitialize();
    return this.initPromise;
  }

  private async doInitialize(): Promise<void> {
    if (this.shuttingDown) throw new PoolShuttingDownError();
    const o = this.options;
    this.logger.log(
      `pool "${o.name}" (instance ${this.instanceId}) effective settings: ${describeSettings(o)}`,
    );
    this.startSchedule();
    this.eventSub = this.driver.watchEvents(
      { [LABELS.pool]: o.name, [LABELS.owner]: this.instanceId },
      {
        onEvent: (e) => this.onEngineEvent(e),
        onStatus: (connected) => this.onEventStream(connected),
      },
    );
    await this.prepare();
    await this.replenish();
  }

  /**
   * Stops accepting acquires, rejects waiters, lets running executions finish for up to `shutdownGraceMs`,
   * waits for creates in flight and removes every container of this instance. Safe to call twice.
   */
  shutdown(): Promise<void> {
    this.shutdownPromise ??= this.doShutdown();
    return this.shutdownPromise;
  }

  private async doShutdown(): Promise<void> {
    this.shuttingDown = true;
    const started = Date.now();
    this.stopSchedule();
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.refillTimer) clearTimeout(this.refillTimer);
    for (const w of this.waiters.splice(0)) w.reject(new PoolShuttingDownError());

    const executions = [...this.byId.values()].flatMap((c) => [...c.executions]);
    if (executions.length) {
      this.logger.log(
        `shutdown: waiting up to ${this.options.shutdownGraceMs} ms for ${executions.length} execution(s)`,
      );
      const all = Promise.allSettled(executions.map((e) => e.done));
      await Promise.race([all, sleep(this.options.shutdownGraceMs)]);
      for (const e of executions) e.kill(new PoolShuttingDownError());
      await all;
    }
    await this.settleInFlight();
    await Promise.allSettled([...this.byId.values()].map((c) => this.destroyContainer(c)));
    await this.settleInFlight();
    // Belt and braces: anything of this instance the engine still lists (e.g. a create that timed out).
    if (this.engineAvailable) {
      try {
        const left = await this.driver.listContainers({ [LABELS.owner]: this.instanceId });
        await Promise.allSettled(left.map((c) => this.driver.removeContainer(c.id)));
      } catch {
        // The engine went away: the containers' lifelines end with this process anyway.
      }
    }
    this.eventSub?.close();
    await this.driver.close();
    this.logger.log(
      `shut down in ${Date.now() - started} ms (created ${this.totals.created}, destroyed ${this.totals.destroyed})`,
    );
  }

  private async settleInFlight(): Promise<void> {
    while (this.inFlight.size) await Promise.allSettled([...this.inFlight]);
  }

  private track<T>(promise: Promise<T>): Promise<T> {
    this.inFlight.add(promise);
    const forget = () => this.inFlight.delete(promise);
    promise.then(forget, forget);
    return promise;
  }

  private startSchedule(): void {
    const timer = setInterval(() => this.tick(), this.options.replenishIntervalMs);
    timer.unref();
    if (this.scheduler) {
      this.intervalName = `container-pool:${this.options.name}:${this.instanceId}`;
      this.scheduler.addInterval(this.intervalName, timer);
    } else {
      this.intervalName = undefined;
      this.fallbackTimer = timer;
    }
  }

  private fallbackTimer?: NodeJS.Timeout;

  private stopSchedule(): void {
    if (this.intervalName && this.scheduler) {
      try {
        this.scheduler.deleteInterval(this.intervalName);
      } catch {
        // Already gone (the registry is torn down with the app).
      }
    }
    if (this.fallbackTimer) clearInterval(this.fallbackTimer);
  }

  /**
   * Scheduled top-up: recycle expired idle containers, trim surplus, retry after failures, refill. It is
   * synchronous (creates and removals run in the background), so ticks never overlap.
   */
  private tick(): void {
    if (this.shuttingDown) return;
    const now = Date.now();
    if (
      this.earlyDeathSuspected &&
      this.idle.some((c) => now - c.createdAt.getTime() >= EARLY_DEATH_MS)
    ) {
      this.earlyDeathSuspected = false;
      this.onSuccess();
    }
    for (const c of [...this.idle]) {
      if (c.expiry.getTime() <= now) void this.destroyContainer(c, 'expired');
    }
    const surplus = this.idle.length - (this.draining ? 0 : this.size);
    if (surplus > 0 && !this.waiters.length) {
      for (const c of this.idle.slice(0, surplus)) void this.destroyContainer(c, 'surplus');
    }
    this.pump();
  }

  // ---------------------------------------------------------------- engine

  /**
   * Engine check, seccomp/runtime check, sweep of dead leftovers, image. Cached until the engine fails. A failure
   * is recorded once (back-off, waiters told) however many callers wait for it; success ends a failure streak.
   */
  private prepare(): Promise<void> {
    if (this.prepared) return Promise.resolve();
    this.preparing ??= (async () => {
      const o = this.options;
      let info: EngineInfo;
      try {
        info = await this.driver.info();
      } catch (err) {
        this.markEngineDown(asPoolError(err));
        throw err;
      }
      if (!this.engine || !this.engineAvailable) {
        this.logger.log(
          `engine: ${info.name} at ${info.endpoint} (API ${info.apiVersion}, ${info.os}, runtimes ${info.runtimes.join('/')}, ` +
            `seccomp ${info.seccomp ? 'on' : 'OFF'})`,
        );
      }
      this.engine = info;
      this.engineAvailable = true;
      if (o.requireSeccomp && !o.seccompProfile && !info.seccomp) {
        throw new SandboxUnsupportedError(
          'the engine reports no seccomp support (docker info: SecurityOptions lacks seccomp), so the sandbox ' +
            'would run without a syscall filter. Use an engine built with seccomp, or set requireSeccomp false ' +
            '(POOL_REQUIRE_SECCOMP=false) only if you accept that risk',
        );
      }
      if (o.runtime && !info.runtimes.includes(o.runtime)) {
        throw new SandboxUnsupportedError(
          `runtime "${o.runtime}" is not registered with the engine (it has ${info.runtimes.join(', ')}); ` +
            `add it to daemon.json "runtimes" or unset POOL_RUNTIME`,
        );
      }
      await this.sweep();
      await this.driver.ensureImage(o.image, o.pullPolicy, (m) => this.logger.log(m));
      this.prepared = true;
      this.onSuccess();
    })()
      .catch((err: unknown) => {
        if (!this.shuttingDown) this.onFailure(err);
        throw asPoolError(err);
      })
      .finally(() => {
        this.preparing = undefined;
      });
    return this.preparing;
  }

  /**
   * Removes this pool's containers left by dead instances: not running (AutoRemove covers most; this covers
   * containers that never started), or past their lifetime. A sibling's live containers are never touched.
   */
  private async sweep(): Promise<void> {
    const rows = await this.driver.listContainers({
      [LABELS.managedBy]: MANAGED_BY_VALUE,
      [LABELS.pool]: this.options.name,
    });
    const now = Date.now();
    const doomed = rows.filter((r) => {
      if (r.labels[LABELS.owner] === this.instanceId) {
        return !this.byId.has(r.id) && !this.creatingNames.has(r.name) && r.state !== 'running';
      }
      if (r.state === 'exited' || r.state === 'dead') return true;
      if (r.state === 'created') return now - r.createdAt.getTime() > STALE_CREATED_CONTAINER_MS;
      const expires = Date.parse(r.labels[LABELS.expiresAt] ?? '');
      return r.state === 'running' && Number.isFinite(expires) && now > expires + 60_000;
    });
    if (!doomed.length) return;
    const results = await Promise.allSettled(doomed.map((r) => this.driver.removeContainer(r.id)));
    const removed = doomed.filter((_, i) => results[i].status === 'fulfilled');
    this.totals.orphansRemoved += removed.length;
    if (removed.length) {
      this.logger.warn(
        `removed ${removed.length} leftover container(s) of pool "${this.options.name}": ` +
          removed.map((r) => `${r.name} (${r.state})`).join(', '),
      );
    }
    results.forEach((r, i) => {
      if (r.status !== 'rejected') return;
      const error = asPoolError(r.reason);
      // The engine going away fails the preparation; one stubborn leftover never does.
      if (error instanceof EngineUnavailableError) throw error;
      this.logger.warn(`could not remove leftover container ${doomed[i].name}: ${error.message}`);
    });
  }

  private markEngineDown(err: ContainerPoolError): void {
    if (!(err instanceof EngineUnavailableError)) return;
    this.prepared = false;
    // Logged once, when the engine stops answering; onFailure() logs the retry streak.
    if (this.engineAvailable) this.logger.error(`engine stopped answering: ${err.message}`);
    this.engineAvailable = false;
    this.lastError = err;
  }

  private onEventStream(connected: boolean): void {
    if (this.shuttingDown) return;
    if (connected) {
      if (!this.engineAvailable && this.initPromise) {
        // The engine answers again: retry now rather than at the end of the back-off.
        this.backoffUntil = 0;
        this.pump();
      }
      return;
    }
    // The stream broke: maybe the engine restarted. Check now; lifelines tell which containers died.
    this.driver.info().then(
      () => undefined,
      (err) => this.markEngineDown(asPoolError(err)),
    );
  }

  private onEngineEvent(e: EngineEvent): void {
    const c = this.byId.get(e.containerId);
    if (!c) return;
    if (e.type === 'oom') {
      c.oomEvents++;
      c.notify();
    } else if (c.state !== 'destroying') {
      this.onContainerLost(c, e.type === 'die' ? 'it exited' : 'it was removed');
    }
  }

  private onFailure(err: unknown): void {
    const error = asPoolError(err);
    this.failureStreak++;
    this.lastError = error;
    if (error instanceof EngineUnavailableError) this.markEngineDown(error);
    // The image vanished after the start (or was never there): ensure it again on the next try.
    if (error instanceof ImageUnavailableError) this.prepared = false;
    const delay = Math.min(BACKOFF_INITIAL_MS * 2 ** (this.failureStreak - 1), BACKOFF_MAX_MS);
    this.backoffUntil = Date.now() + delay;
    if (this.failureStreak === 1) {
      this.logger.error(`${error.message} (retrying with back-off)`);
    } else {
      this.logger.debug(
        `still failing (${this.failureStreak}x, next try in ${delay} ms): ${error.message}`,
      );
    }
    if (isPoolWide(error) && !this.idle.length) {
      for (const w of this.waiters.splice(0)) w.reject(error);
    }
    this.scheduleRetry();
  }

  private onSuccess(): void {
    if (this.failureStreak > 0) {
      this.logger.log(`recovered after ${this.failureStreak} failure(s)`);
    }
    this.failureStreak = 0;
    this.backoffUntil = 0;
    this.lastError = null;
  }

  private scheduleRetry(): void {
    if (this.retryTimer || this.shuttingDown) return;
    const delay = Math.max(0, this.backoffUntil - Date.now());
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.pump();
    }, delay);
    this.retryTimer.unref();
  }

  // ---------------------------------------------------------------- refill

  private get creating(): number {
    return this.creatingNames.size;
  }

  private total(): number {
    return this.idle.length + this.leased.size + this.creating + this.destroying;
  }

  /**
   * The pool's one scheduling step, synchronous and cheap: hand idle containers to waiters, then start as
   * many creates as the targets, the cap, the create concurrency and the back-off allow.
   */
  private pump(): void {
    this.refill(false);
  }

  /** pump(); `force` skips the wait for running executions (deferRefill). */
  private refill(force: boolean): void {
    if (this.shuttingDown) return;
    while (this.waiters.length && this.idle.length) {
      const w = this.waiters[0];
      const c = this.takeIdle();
      if (!c) break;
      this.waiters.shift();
      this.lease(c, w);
    }
    if (!this.initPromise) return;
    if (Date.now() < this.backoffUntil) {
      this.scheduleRetry();
      return;
    }
    if (!this.prepared) {
      if (!this.preparing) {
        this.prepare().then(
          () => this.pump(),
          () => undefined, // recorded by prepare()
        );
      }
      return;
    }
    const target = (this.draining ? 0 : this.size) + this.waiters.length;
    const deficit = target - this.idle.length - this.creating;
    // Full again: a later top-up's wait for executions starts afresh.
    if (deficit <= 0) this.refillDeferredSince = 0;
    const n = Math.min(
      deficit,
      this.options.maxConcurrentCreates - this.creating,
      this.maxContainers - this.total(),
    );
    if (n <= 0 || (!force && this.deferRefill())) return;
    for (let i = 0; i < n; i++) this.createOne();
  }

  /** pump() after the current task: an acquire's caller starts its execution first (see deferRefill). */
  private pumpSoon(): void {
    if (this.pumpQueued) return;
    this.pumpQueued = true;
    setImmediate(() => {
      this.pumpQueued = false;
      this.pump();
    });
  }

  /**
   * A create costs the engine about as much CPU as several executions, and an execution running meanwhile pays
   * for it in latency. So while executions run, nobody waits and the stock is healthy (at least half of `size`
   * idle or being created), the top-up waits until they end, for at most REFILL_DEFER_MAX_MS. Low stock and
   * waiters are served at once: under sustained load the refill overlaps with the executions.
   */
  private deferRefill(): boolean {
    const healthy =
      !this.waiters.length && this.idle.length + this.creating >= Math.ceil(this.size / 2);
    if (!this.executing || !healthy) {
      this.refillDeferredSince = 0;
      return false;
    }
    const now = Date.now();
    this.refillDeferredSince ||= now;
    const leftMs = this.refillDeferredSince + REFILL_DEFER_MAX_MS - now;
    if (leftMs <= 0) {
      this.refillDeferredSince = 0;
      return false;
    }
    if (!this.refillTimer) {
      this.refillTimer = setTimeout(() => {
        this.refillTimer = undefined;
        this.pump();
      }, leftMs);
      this.refillTimer.unref();
    }
    return true;
  }

  /** Starts one create, tracked in `creates` until the container is in the pool or the create failed. */
  private createOne(): void {
    const o = this.options;
    const name = `cpool-${o.name}-${this.instanceId.slice(0, 8)}-${++this.nameCounter}`;
    const createdAt = new Date();
    this.creatingNames.set(name, createdAt);
    const hardDeadline = new Date(createdAt.getTime() + o.containerLifetimeMs);
    const spec: ContainerSpec = {
      ...this.spec,
      name,
      labels: {
        ...this.labels,
        [LABELS.createdAt]: createdAt.toISOString(),
        [LABELS.expiresAt]: hardDeadline.toISOString(),
      },
    };
    const abort = new AbortController();
    const timer = setTimeout(
      () => abort.abort(new Error(`create took longer than ${o.createTimeoutMs} ms`)),
      o.createTimeoutMs,
    );
    const started = performance.now();
    const done = this.driver.createContainer(spec, abort.signal).then(
      (dc) => {
        clearTimeout(timer);
        this.creatingNames.delete(name);
        this.totals.created++;
        // After containers died right after their start, only one that lives on ends the failure streak.
        if (!this.earlyDeathSuspected) this.onSuccess();
        this.events.emit('created', { durationMs: performance.now() - started });
        // Recycle early enough that the longest allowed execution still fits in the lifetime.
        const expiry = new Date(
          hardDeadline.getTime() - o.maxExecTimeoutMs - LIFETIME_SAFETY_MARGIN_MS,
        );
        const c = new PooledContainer(this, dc, o.image, createdAt, expiry, hardDeadline);
        this.byId.set(c.id, c);
        void dc.exited.then((reason) => {
          // A container that dies right after its start is a failed create (a bad image, a lifeline the
          // limits kill): back off rather than replace it in a loop.
          const livedMs = Date.now() - createdAt.getTime();
          if (c.state === 'idle' && livedMs < EARLY_DEATH_MS) {
            // Unless the engine itself went away (a restart kills every container): then it is not the image.
            this.driver.info().then(
              () => {
                if (this.shuttingDown) return;
                this.earlyDeathSuspected = true;
                this.onFailure(
                  new ContainerCreateError(
                    `container ${c.name} exited ${livedMs} ms after its start (${reason}); if this repeats, check that the ` +
                      `image has sh, cat and timeout and that the limits let them run`,
                  ),
                );
              },
              (err) => this.markEngineDown(asPoolError(err)),
            );
          }
          this.onContainerLost(c, reason);
        });
        if (this.shuttingDown || this.draining) {
          void this.destroyContainer(c, 'not needed');
        } else {
          this.idle.push(c);
        }
        this.pump();
      },
      (err) => {
        clearTimeout(timer);
        this.creatingNames.delete(name);
        this.totals.failedCreates++;
        const error = asPoolError(err);
        this.events.emit('createFailed', { error });
        if (this.shuttingDown) return;
        this.onFailure(error);
        this.pump();
      },
    );
    this.creates.add(done);
    void this.track(done).finally(() => this.creates.delete(done));
  }

  private onContainerLost(c: PooledContainer, reason: string): void {
    if (c.state === 'destroying' || c.lostReason) return;
    c.lostReason = reason;
    this.totals.containersLost++;
    this.logger.warn(`container ${c.name} (${c.state}) lost: ${reason}`);
    const error = new ContainerLostError(c.name, reason);
    for (const e of c.executions) e.kill(error);
    c.notify();
    void this.destroyContainer(c, 'lost');
  }

  // ---------------------------------------------------------------- hand-out

  /** The oldest idle container that may still be handed out; drops the ones that may not. */
  private takeIdle(): PooledContainer | undefined {
    const now = Date.now();
    while (this.idle.length) {
      const c = this.idle.shift()!;
      if (c.expiry.getTime() <= now) {
        void this.destroyContainer(c, 'expired');
        continue;
      }
      return c;
    }
    return undefined;
  }

  private lease(c: PooledContainer, waiter?: PendingAcquire<PooledContainer>): boolean {
    c.state = 'leased';
    this.leased.add(c);
    if (waiter && !waiter.resolve(c)) {
      this.leased.delete(c);
      c.state = 'idle';
      this.idle.unshift(c);
      return false;
    }
    this.totals.acquired++;
    this.events.emit('acquired', {
      waitMs: waiter ? performance.now() - waiter.enqueuedAt : 0,
    });
    return true;
  }

  /** Why a waiter got nothing, for its AcquireTimeoutError. */
  private shortage(): string {
    if (this.lastError) return `creating containers fails (${this.lastError.message})`;
    if (this.creating) {
      return (
        `${this.creating} container(s) are still being created and all others are in use ` +
        `(maxContainers ${this.maxContainers})`
      );
    }
    return `every container is in use (maxContainers ${this.maxContainers})`;
  }

  /** Why acquires cannot be served now, or null. */
  private unavailable(): ContainerPoolError | null {
    if (this.shuttingDown) return new PoolShuttingDownError();
    if (this.draining) return new PoolDrainedError();
    if (!this.initPromise) return null;
    if (!this.engineAvailable && this.lastError) return this.lastError;
    if (this.idle.length) return null;
    if (
      this.lastError &&
      isPoolWide(this.lastError) &&
      (!this.prepared || this.failureStreak > 0)
    ) {
      return this.lastError;
    }
    return null;
  }

  /**
   * Hands out a warm container, creating one when none is idle and the cap allows, else waiting in FIFO order
   * until `timeoutMs` (default acquireTimeoutMs) or the signal. Release it with release() or destroy().
   */
  async acquire(opts: AcquireOptions = {}): Promise<Container> {
    return this.acquirePooled(opts);
  }

  private acquirePooled(opts: AcquireOptions = {}): Promise<PooledContainer> {
    // Used without Nest's lifecycle (or before onModuleInit): start the pool on first use.
    if (!this.initPromise) this.initialize().catch(() => undefined);
    const error = this.unavailable();
    if (error) return Promise.reject(error);
    if (opts.signal?.aborted) {
      return Promise.reject(
        new ExecutionAbortedError('Waiting for a container', opts.signal.reason),
      );
    }
    const execTimeoutMs = opts.execTimeoutMs ?? this.options.execTimeoutMs;
    if (execTimeoutMs > this.options.maxExecTimeoutMs) {
      return Promise.reject(
        new InvalidRequestError(
          'timeoutMs',
          `must be at most maxExecTimeoutMs (${this.options.maxExecTimeoutMs})`,
        ),
      );
    }
    if (!this.waiters.length) {
      const c = this.takeIdle();
      if (c) {
        this.lease(c);
        this.pumpSoon();
        return Promise.resolve(c);
      }
    }
    // maxWaiters bounds the callers waiting at the cap, not those a create (in flight or allowed) will serve.
    const servable = this.creating + Math.max(0, this.maxContainers - this.total());
    if (this.waiters.length - servable >= this.options.maxWaiters) {
      return Promise.reject(new TooManyWaitersError(this.options.maxWaiters));
    }
    const timeoutMs = opts.timeoutMs ?? this.options.acquireTimeoutMs;
    const pending = new PendingAcquire<PooledContainer>(timeoutMs, opts.signal, (p, err) => {
      const i = this.waiters.indexOf(p);
      if (i >= 0) this.waiters.splice(i, 1);
      const error =
        err instanceof AcquireTimeoutError
          ? new AcquireTimeoutError(p.timeoutMs, this.shortage())
          : err;
      if (p.reject(error) && error instanceof AcquireTimeoutError) this.totals.acquireTimeouts++;
    });
    this.waiters.push(pending);
    this.pump();
    return pending.promise;
  }

  /**
   * Gives a container back. Single-use pools (the default) remove it in the background; release never waits
   * for the removal. Releasing twice is harmless.
   */
  release(container: Container): void {
    const c = this.own(container);
    if (c.state !== 'leased') return;
    const reusable =
      !this.options.singleUse &&
      !c.tainted &&
      !c.lostReason &&
      !this.draining &&
      !this.shuttingDown &&
      c.expiry.getTime() > Date.now() &&
      c.executions.size === 0;
    if (!reusable) {
      // The caller has its result first; the engine work of the removal and of the refill starts right after.
      void this.destroyContainer(c, 'released', true);
      this.pumpSoon();
      return;
    }
    this.leased.delete(c);
    c.state = 'idle';
    // Back at the front: a returned container is handed out before newer ones (its surplus is trimmed by tick).
    this.idle.unshift(c);
    this.pump();
  }

  /** acquire(), fn(container), release(), whatever fn does. */
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

  /**
   * Acquire, execute, release. Resolves for every outcome of the code (exit code, timeout, OOM, truncation);
   * rejects only with a ContainerPoolError.
   */
  async run(request: RunRequest): Promise<ExecResult> {
    const { cmd, stdinPrefix } = toCommand(request, this.options);
    const exec = normalizeExecOptions(cmd, request, this.options, stdinPrefix);
    const queuedFrom = performance.now();
    const c = await this.acquirePooled({ signal: request.signal, execTimeoutMs: exec.timeoutMs });
    const queuedMs = performance.now() - queuedFrom;
    try {
      return await this.runIn(c, exec, request.signal, queuedMs);
    } finally {
      this.release(c);
    }
  }

  private own(container: Container): PooledContainer {
    if (container instanceof PooledContainer && container.belongsTo(this)) return container;
    throw new InvalidRequestError('container', 'is not a container of this pool');
  }

  // ---------------------------------------------------------------- execution

  /** Container.execute(): runs argv in a leased container. */
  async executeIn(
    container: PooledContainer,
    cmd: string[],
    opts: ExecOptions = {},
  ): Promise<ExecResult> {
    const exec = normalizeExecOptions(cmd, opts, this.options);
    return this.runIn(container, exec, opts.signal, 0);
  }

  private async runIn(
    c: PooledContainer,
    exec: ReturnType<typeof normalizeExecOptions>,
    signal: AbortSignal | undefined,
    queuedMs: number,
  ): Promise<ExecResult> {
    if (c.lostReason) throw new ContainerLostError(c.name, c.lostReason);
    if (this.shuttingDown) throw new PoolShuttingDownError();
    if (c.state !== 'leased') throw new ContainerReleasedError(c.name);
    const leftMs = c.hardDeadline.getTime() - Date.now();
    if (leftMs < exec.timeoutMs + LIFETIME_SAFETY_MARGIN_MS) {
      throw new ContainerExpiredError(c.name, leftMs, exec.timeoutMs);
    }
    if (signal?.aborted) throw new ExecutionAbortedError('The execution', signal.reason);

    const executionId = uuidv4();
    const started = performance.now();
    const abort = new AbortController();
    // Why the execution was stopped: the timer (timedOut) or an error to reject with (abort, loss, shutdown).
    const stop: { timedOut: boolean; error: Error | null } = { timedOut: false, error: null };
    const kill = (error: Error | null) => {
      if (abort.signal.aborted) return;
      stop.error = error;
      abort.abort();
    };
    const timer = setTimeout(() => {
      stop.timedOut = true;
      kill(null);
    }, exec.timeoutMs);
    const onCallerAbort = () => kill(new ExecutionAbortedError('The execution', signal?.reason));
    signal?.addEventListener('abort', onCallerAbort, { once: true });
    const oomBefore = c.oomEvents;
    let resolveDone!: () => void;
    const active: ActiveExecution = {
      kill: (error) => kill(error),
      done: new Promise<void>((r) => (resolveDone = r)),
    };
    c.executions.add(active);
    this.executing++;

    try {
      let raw;
      try {
        raw = await this.driver.exec(c.driverContainer, {
          cmd: exec.cmd,
          user: this.options.user,
          env: exec.env,
          workdir: exec.workdir,
          stdin: exec.stdin,
          maxOutputBytes: exec.maxOutputBytes,
          signal: abort.signal,
        });
      } catch (err) {
        // The engine refused to start the program (nothing ran): the container is as it was.
        if (err instanceof InvalidRequestError && !stop.error) throw err;
        c.tainted = true;
        if (!stop.error && !c.lostReason) {
          // The engine says the container is gone (404/409): drop it now. A broken connection may be the
          // container's death too (an engine restart): its lifeline tells within moments.
          if (err instanceof ContainerLostError)
            this.onContainerLost(c, 'the engine no longer runs it');
          else await c.waitForNews(OOM_EVENT_GRACE_MS);
        }
        if (c.lostReason) throw new ContainerLostError(c.name, c.lostReason, { cause: err });
        if (stop.error) throw stop.error;
        throw err;
      } finally {
        // The execution is over: what follows (kill, OOM check) is not part of its time.
        clearTimeout(timer);
      }
      const durationMs = performance.now() - started;
      let oomKilled = false;
      if (abort.signal.aborted) {
        // Timed out, aborted by the caller or killed by the pool: the work really stops with the container.
        c.tainted = true;
        await Promise.race([
          this.destroyContainer(c, stop.timedOut ? 'timed out' : 'killed'),
          sleep(KILL_WAIT_MS),
        ]);
        if (stop.error) throw stop.error;
      } else if (raw.exitCode === 137) {
        // SIGKILL: the OOM killer, the container's death, or the program itself.
        oomKilled = await this.wasOomKilled(c, oomBefore);
        if (c.lostReason && !oomKilled) throw new ContainerLostError(c.name, c.lostReason);
      }
      oomKilled ||= c.oomEvents > oomBefore;
      const stdoutBytes = raw.stdout;
      const stderrBytes = raw.stderr;
      const result: ExecResult = {
        exitCode: stop.timedOut ? null : raw.exitCode,
        stdout: stdoutBytes.toString('utf8'),
        stderr: stderrBytes.toString('utf8'),
        stdoutBytes,
        stderrBytes,
        timedOut: stop.timedOut,
        oomKilled,
        truncated: raw.truncated,
        durationMs: Math.round(durationMs * 100) / 100,
        queuedMs: Math.round(queuedMs * 100) / 100,
        containerId: c.id,
        executionId,
      };
      this.recordExecution(c, result);
      return result;
    } catch (err) {
      this.logger.warn(
        `exec ${executionId} container=${c.name} failed after ${Math.round(performance.now() - started)} ms: ` +
          `${err instanceof Error ? err.message : String(err)}`,
      );
      if (err instanceof EngineUnavailableError) this.markEngineDown(err);
      throw err;
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onCallerAbort);
      c.executions.delete(active);
      this.executing--;
      // A top-up that waited for the executions starts now (after the caller has its result).
      if (!this.executing && this.refillDeferredSince) this.pumpSoon();
      resolveDone();
    }
  }

  /**
   * After an exec died of SIGKILL: the engine's `oom` event usually arrives within milliseconds; when it has not
   * (a loaded engine), the container's own memory cgroup counter decides. The check also finds a dead container.
   */
  private async wasOomKilled(c: PooledContainer, oomEventsBefore: number): Promise<boolean> {
    if (c.oomEvents === oomEventsBefore && !c.lostReason) await c.waitForNews(OOM_EVENT_GRACE_MS);
    if (c.oomEvents > oomEventsBefore) return true;
    if (c.lostReason || !this.driver.oomKillCount) return false;
    try {
      const count = await this.driver.oomKillCount(c.driverContainer);
      if (count === null || count <= c.oomKillsReported) return false;
      c.oomKillsReported = count;
      return true;
    } catch (err) {
      // The container (or the engine) is gone: its lifeline will say so in a moment.
      if (!c.lostReason) await c.waitForNews(OOM_EVENT_GRACE_MS);
      if (!c.lostReason) throw err;
      return false;
    }
  }

  private recordExecution(c: PooledContainer, r: ExecResult): void {
    this.totals.executions++;
    if (r.timedOut) this.totals.timeouts++;
    if (r.oomKilled) this.totals.ooms++;
    if (r.truncated) this.totals.truncated++;
    const flags = [r.timedOut && 'timedOut', r.oomKilled && 'oomKilled', r.truncated && 'truncated']
      .filter(Boolean)
      .join(',');
    this.logger.log(
      `exec ${r.executionId} container=${c.name} exit=${r.exitCode ?? '-'} durationMs=${Math.round(r.durationMs)} ` +
        `queuedMs=${Math.round(r.queuedMs)} stdout=${r.stdoutBytes.length}B stderr=${r.stderrBytes.length}B` +
        (flags ? ` flags=${flags}` : ''),
    );
    this.events.emit('executed', { result: r });
  }

  // ---------------------------------------------------------------- removal

  /**
   * Container.destroy(): removes it now; resolves when the engine has removed it. `afterCurrentTask` issues the
   * engine call after the current task (release() lets the caller continue first).
   */
  destroyContainer(
    c: PooledContainer,
    reason = 'destroyed',
    afterCurrentTask = false,
  ): Promise<void> {
    if (c.removal) return c.removal;
    const i = this.idle.indexOf(c);
    if (i >= 0) this.idle.splice(i, 1);
    this.leased.delete(c);
    c.state = 'destroying';
    this.destroying++;
    for (const e of c.executions) {
      e.kill(new ContainerLostError(c.name, 'it was destroyed while an execution was running'));
    }
    const removed = afterCurrentTask
      ? new Promise<void>((r) => setImmediate(r)).then(() => this.driver.removeContainer(c.id))
      : this.driver.removeContainer(c.id);
    c.removal = this.track(
      removed
        .catch((err) => {
          this.logger.warn(
            `removing ${c.name} failed: ${err instanceof Error ? err.message : err}; letting it go ` +
              `(its lifeline closes, so it exits and the engine removes it)`,
          );
          c.driverContainer.detach?.();
          if (err instanceof EngineUnavailableError) this.markEngineDown(err);
        })
        .finally(() => {
          this.destroying--;
          this.totals.destroyed++;
          this.byId.delete(c.id);
          this.events.emit('destroyed', { reason });
          this.pump();
        }),
    );
    return c.removal;
  }

  // ---------------------------------------------------------------- operations

  /**
   * Tops up now (skipping any back-off and the wait for running executions) and resolves when the pool is full
   * or a create failed; it waits for its own creates only, never for ones other work keeps starting.
   */
  async replenish(): Promise<PoolStats> {
    if (this.shuttingDown) throw new PoolShuttingDownError();
    if (!this.initPromise) {
      await this.initialize();
      return this.stats();
    }
    this.backoffUntil = 0;
    if (!this.prepared) await this.prepare();
    // Batches of maxConcurrentCreates until the pool is full; bounded, so steady load cannot keep it going.
    for (
      let rounds = Math.ceil(this.size / this.options.maxConcurrentCreates) + 1;
      rounds > 0;
      rounds--
    ) {
      this.refill(true);
      if (!this.creates.size) break;
      await Promise.all([...this.creates]);
      if (this.failureStreak > 0) break;
    }
    if (this.lastError && isPoolWide(this.lastError)) throw this.lastError;
    return this.stats();
  }

  /** Changes size and/or maxContainers at run time; shrinking removes idle surplus, never a leased container. */
  resize(change: { size?: number; maxContainers?: number }): PoolStats {
    const size = change.size ?? this.size;
    const maxContainers = change.maxContainers ?? this.maxContainers;
    if (!Number.isInteger(maxContainers) || maxContainers < 1) {
      throw new InvalidRequestError('maxContainers', 'must be an integer of at least 1');
    }
    if (!Number.isInteger(size) || size < 0)
      throw new InvalidRequestError('size', 'must be an integer of at least 0');
    if (size > maxContainers) {
      throw change.size === undefined
        ? new InvalidRequestError('maxContainers', `must be at least size (${size})`)
        : new InvalidRequestError('size', `must not exceed maxContainers (${maxContainers})`);
    }
    this.size = size;
    this.maxContainers = maxContainers;
    this.logger.log(`resized: size=${size} maxContainers=${maxContainers}`);
    const over = this.idle.length - size;
    if (over > 0) for (const c of this.idle.slice(0, over)) void this.destroyContainer(c, 'resize');
    this.pump();
    return this.stats();
  }

  /** Removes idle containers and stops refilling until resume(); waiters are rejected. */
  async drain(): Promise<PoolStats> {
    this.draining = true;
    for (const w of this.waiters.splice(0)) w.reject(new PoolDrainedError());
    await Promise.allSettled([...this.idle].map((c) => this.destroyContainer(c, 'drain')));
    return this.stats();
  }

  resume(): PoolStats {
    this.draining = false;
    this.backoffUntil = 0;
    this.pump();
    return this.stats();
  }

  /** This pool's containers, by state. */
  containers(): ContainerInfo[] {
    const rows: ContainerInfo[] = [...this.byId.values()].map((c) => ({
      id: c.id,
      name: c.name,
      state: c.state,
      createdAt: c.createdAt,
      expiry: c.expiry,
      image: c.image,
    }));
    for (const [name, createdAt] of this.creatingNames) {
      rows.push({
        id: '',
        name,
        state: 'creating',
        createdAt,
        expiry: new Date(
          createdAt.getTime() +
            this.options.containerLifetimeMs -
            this.options.maxExecTimeoutMs -
            LIFETIME_SAFETY_MARGIN_MS,
        ),
        image: this.options.image,
      });
    }
    return rows;
  }

  /** Finds one of this pool's containers by full id, unique id prefix (12+ hex) or name. */
  findContainer(ref: string): PooledContainer | undefined {
    const all = [...this.byId.values()];
    const byName = all.find((c) => c.name === ref);
    if (byName) return byName;
    const matches = all.filter((c) => c.id.startsWith(ref));
    return matches.length === 1 ? matches[0] : undefined;
  }

  /**
   * Why acquire() would fail right now (shutting down, drained, engine/image/sandbox unavailable), or null.
   * Used by the readiness check.
   */
  availabilityError(): ContainerPoolError | null {
    return this.unavailable();
  }

  /** Engine facts from the last successful check, or null. */
  engineInfo(): EngineInfo | null {
    return this.engineAvailable ? this.engine : null;
  }

  stats(): PoolStats {
    return {
      name: this.options.name,
      image: this.options.image,
      idle: this.idle.length,
      leased: this.leased.size,
      creating: this.creating,
      destroying: this.destroying,
      waiting: this.waiters.length,
      size: this.size,
      maxContainers: this.maxContainers,
      draining: this.draining,
      shuttingDown: this.shuttingDown,
      engineAvailable: this.engineAvailable,
      lastError: this.lastError?.message ?? null,
      totals: { ...this.totals },
    };
  }
}

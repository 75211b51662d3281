import type { EventEmitter } from 'node:events';
import { EARLY_DEATH_MS, LIFETIME_SAFETY_MARGIN_MS } from '../container-pool.constants';
import {
  ContainerLostError,
  ContainerPoolError,
  EngineUnavailableError,
  ExecutionAbortedError,
  ImageUnavailableError,
  InvalidRequestError,
  PoolDrainedError,
  PoolShuttingDownError,
  TooManyWaitersError,
  ContainerCreateError,
} from '../errors/container-pool.errors';
import type { PoolStats, PoolTotals } from '../interfaces/container.interface';
import type { ContainerPoolEventMap } from '../interfaces/events.interface';
import type { ResolvedContainerPoolOptions } from '../interfaces/container-pool-options.interface';
import type { AcquireOptions } from '../interfaces/run-request.interface';
import { asPoolError, Backoff, isPoolWide } from './backoff';
import type { ContainerSource, EngineStatus, IntervalHost, PoolLog } from './container-source';
import { PooledContainer } from './pooled-container';
import { planRefill } from './refill-planner';
import { RefillScheduler } from './refill-scheduler';
import { Stock } from './stock';
import { WaitQueue } from './wait-queue';

/** The options a warm pool runs with (its share of the resolved options). */
export type WarmPoolOptions = Pick<
  ResolvedContainerPoolOptions,
  | 'name'
  | 'image'
  | 'size'
  | 'maxContainers'
  | 'maxWaiters'
  | 'maxConcurrentCreates'
  | 'acquireTimeoutMs'
  | 'replenishIntervalMs'
  | 'singleUse'
  | 'execTimeoutMs'
  | 'maxExecTimeoutMs'
  | 'shutdownGraceMs'
  | 'containerLifetimeMs'
>;

export interface WarmPoolDeps {
  source: ContainerSource;
  engine: EngineStatus;
  log: PoolLog;
  events: EventEmitter<ContainerPoolEventMap>;
  totals: PoolTotals;
  intervals?: IntervalHost;
  /** Name of the pool's interval in the host. */
  intervalName: string;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());

/**
 * One warm pool: keeps `size` containers started, hands them out (idle first, else a new one under the cap, else
 * FIFO waiting), takes them back, tops up with back-off, drains, resizes and shuts down in tarn.js's order. It
 * knows containers only through its ContainerSource.
 */
export class WarmPool {
  private size: number;
  private maxContainers: number;
  private readonly stock = new Stock();
  private readonly waiters = new WaitQueue<PooledContainer>();
  private readonly backoff = new Backoff();
  private readonly schedule: RefillScheduler;
  private readonly inFlight = new Set<Promise<unknown>>();
  /** Creates in flight (they settle, never reject, once the container is in or the create failed). */
  private readonly creates = new Set<Promise<void>>();
  private prepared = false;
  private preparing?: Promise<void>;
  /** Executions in flight: a top-up waits for them while the stock is healthy (see planRefill). */
  private executing = 0;
  private deferredSince = 0;
  private draining = false;
  private shuttingDown = false;
  private initPromise?: Promise<void>;
  private shutdownPromise?: Promise<void>;
  private readonly unsubscribeEngine: () => void;

  constructor(
    readonly options: WarmPoolOptions,
    private readonly deps: WarmPoolDeps,
  ) {
    this.size = options.size;
    this.maxContainers = options.maxContainers;
    this.schedule = new RefillScheduler(() => this.pump(), deps.intervals);
    this.unsubscribeEngine = deps.engine.subscribe((event, error) => {
      if (this.shuttingDown) return;
      if (event === 'down') {
        this.prepared = false;
        if (error) this.backoff.lastError = error;
      } else if (!deps.engine.available && this.initPromise) {
        // The engine answers again: retry now rather than at the end of the back-off.
        this.backoff.skip();
        this.pump();
      }
    });
  }

  get isShuttingDown(): boolean {
    return this.shuttingDown;
  }

  // ---------------------------------------------------------------- lifecycle

  /** Starts the pool: prepares the engine side and fills it. Idempotent; see ContainerPoolService.initialize. */
  initialize(): Promise<void> {
    this.initPromise ??= (async () => {
      if (this.shuttingDown) throw new PoolShuttingDownError();
      this.deps.source.start();
      this.schedule.startTicks(this.deps.intervalName, this.options.replenishIntervalMs, () =>
        this.tick(),
      );
      await this.prepare();
      await this.replenish();
    })();
    return this.initPromise;
  }

  /**
   * tarn.js's order: stop accepting, reject waiters, let executions finish for up to `shutdownGraceMs` then kill
   * them, wait for creates and removals in flight, remove every container, then whatever the engine still holds.
   */
  shutdown(): Promise<void> {
    this.shutdownPromise ??= (async () => {
      this.shuttingDown = true;
      this.schedule.stop();
      this.unsubscribeEngine();
      this.waiters.rejectAll(new PoolShuttingDownError());
      const executions = [...this.stock.byId.values()].flatMap((c) => [...c.executions]);
      if (executions.length) {
        this.deps.log.log(
          `shutdown: waiting up to ${this.options.shutdownGraceMs} ms for ${executions.length} execution(s)`,
        );
        const all = Promise.allSettled(executions.map((e) => e.done));
        await Promise.race([all, sleep(this.options.shutdownGraceMs)]);
        for (const e of executions) e.kill(new PoolShuttingDownError());
        await all;
      }
      await this.settleInFlight();
      await Promise.allSettled([...this.stock.byId.values()].map((c) => this.destroy(c)));
      await this.settleInFlight();
      // Belt and braces: anything of this instance the engine still lists (e.g. a create that timed out).
      if (this.deps.engine.available) {
        await this.deps.source.removeLeftovers().catch(() => undefined);
      }
    })();
    return this.shutdownPromise;
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

  /** Scheduled: recycle expired idle containers, trim surplus, end a suspected early-death streak, refill. */
  private tick(): void {
    if (this.shuttingDown) return;
    const now = Date.now();
    const idle = this.stock.idle;
    if (
      this.backoff.earlyDeathSuspected &&
      idle.some((c) => now - c.createdAt.getTime() >= EARLY_DEATH_MS)
    ) {
      this.backoff.earlyDeathSuspected = false;
      this.succeeded();
    }
    for (const c of [...idle]) if (c.expiry.getTime() <= now) void this.destroy(c, 'expired');
    const surplus = idle.length - (this.draining ? 0 : this.size);
    if (surplus > 0 && !this.waiters.length) {
      for (const c of idle.slice(0, surplus)) void this.destroy(c, 'surplus');
    }
    this.pump();
  }

  // ---------------------------------------------------------------- engine side and back-off

  /** The source's preparation, once per outage; a failure is recorded once however many callers wait. */
  private prepare(): Promise<void> {
    if (this.prepared) return Promise.resolve();
    this.preparing ??= this.deps.source
      .prepare()
      .then(() => {
        this.prepared = true;
        this.succeeded();
      })
      .catch((err: unknown) => {
        if (!this.shuttingDown) this.failed(err);
        throw asPoolError(err);
      })
      .finally(() => {
        this.preparing = undefined;
      });
    return this.preparing;
  }

  /** Records an engine-wide failure seen by anyone (an execution, a removal). */
  engineFailed(err: unknown): void {
    if (err instanceof EngineUnavailableError) this.deps.engine.markDown(err);
  }

  private failed(err: unknown): void {
    const error = asPoolError(err);
    const delay = this.backoff.fail(error);
    this.engineFailed(error);
    // The image vanished after the start (or was never there): ensure it again on the next try.
    if (error instanceof ImageUnavailableError || error instanceof EngineUnavailableError) {
      this.prepared = false;
    }
    const streak = this.backoff.failureStreak;
    if (streak === 1) this.deps.log.error(`${error.message} (retrying with back-off)`);
    else
      this.deps.log.debug(`still failing (${streak}x, next try in ${delay} ms): ${error.message}`);
    if (isPoolWide(error) && !this.stock.idle.length) this.waiters.rejectAll(error);
    this.schedule.retryIn(delay);
  }

  private succeeded(): void {
    const streak = this.backoff.succeed();
    if (streak > 0) this.deps.log.log(`recovered after ${streak} failure(s)`);
  }

  // ---------------------------------------------------------------- refill

  /**
   * The pool's one scheduling step, synchronous and cheap: hand idle containers to waiters, then start as many
   * creates as the targets, the cap, the create concurrency and the back-off allow.
   */
  private pump(force = false): void {
    if (this.shuttingDown) return;
    this.waiters.serve(
      () => (this.stock.idle.length ? this.takeIdle() : undefined),
      (c, w) => this.lease(c, w),
    );
    if (!this.initPromise) return;
    if (this.backoff.waiting()) {
      this.schedule.retryIn(this.backoff.until - Date.now());
      return;
    }
    if (!this.prepared) {
      if (!this.preparing)
        this.prepare().then(
          () => this.pump(),
          () => undefined,
        );
      return;
    }
    const plan = planRefill({
      size: this.size,
      maxContainers: this.maxContainers,
      maxConcurrentCreates: this.options.maxConcurrentCreates,
      draining: this.draining,
      waiting: this.waiters.length,
      idle: this.stock.idle.length,
      creating: this.stock.creating,
      total: this.stock.total,
      executing: this.executing,
      force,
      deferredSince: this.deferredSince,
      now: Date.now(),
    });
    this.deferredSince = plan.deferredSince;
    if (plan.retryInMs !== undefined) this.schedule.deferFor(plan.retryInMs);
    for (let i = 0; i < plan.creates; i++) this.createOne();
  }

  /** Starts one create, tracked in `creates` until the container is in the pool or the create failed. */
  private createOne(): void {
    const { name, createdAt, ready } = this.deps.source.create();
    this.stock.creatingNames.set(name, createdAt);
    const started = performance.now();
    const done = ready.then(
      (sourced) => {
        this.stock.creatingNames.delete(name);
        this.deps.totals.created++;
        // After containers died right after their start, only one that lives on ends the failure streak.
        if (!this.backoff.earlyDeathSuspected) this.succeeded();
        this.deps.events.emit('created', { durationMs: performance.now() - started });
        const c = new PooledContainer(sourced);
        c.unwatch = this.deps.source.watch(sourced, {
          oom: () => {
            c.oomEvents++;
            c.notify();
          },
          gone: (reason) => this.gone(c, reason),
        });
        const keep = !this.shuttingDown && !this.draining;
        this.stock.created(c, keep);
        if (!keep) void this.destroy(c, 'not needed');
        this.pump();
      },
      (err) => {
        this.stock.creatingNames.delete(name);
        this.deps.totals.failedCreates++;
        const error = asPoolError(err);
        this.deps.events.emit('createFailed', { error });
        if (this.shuttingDown) return;
        this.failed(error);
        this.pump();
      },
    );
    this.creates.add(done);
    void this.track(done).finally(() => this.creates.delete(done));
  }

  /** The container died outside the pool; a young idle one counts as a failed create (back-off, no loop). */
  private gone(c: PooledContainer, reason: string): void {
    const livedMs = Date.now() - c.createdAt.getTime();
    if (c.state === 'idle' && livedMs < EARLY_DEATH_MS && !c.lostReason) {
      // Unless the engine itself went away (a restart kills every container): then it is not the image.
      void this.deps.source.engineAnswers().then((answers) => {
        if (!answers || this.shuttingDown) return;
        this.backoff.earlyDeathSuspected = true;
        this.failed(
          new ContainerCreateError(
            `container ${c.name} exited ${livedMs} ms after its start (${reason}); if this repeats, check that the ` +
              `image has sh, cat and timeout and that the limits let them run`,
          ),
        );
      });
    }
    this.lost(c, reason);
  }

  /** Marks the container lost: its executions fail with ContainerLostError and it is removed. */
  lost(c: PooledContainer, reason: string): void {
    if (c.state === 'destroying' || c.lostReason) return;
    c.lostReason = reason;
    this.deps.totals.containersLost++;
    this.deps.log.warn(`container ${c.name} (${c.state}) lost: ${reason}`);
    const error = new ContainerLostError(c.name, reason);
    for (const e of c.executions) e.kill(error);
    c.notify();
    void this.destroy(c, 'lost');
  }

  // ---------------------------------------------------------------- hand-out

  private takeIdle(): PooledContainer | undefined {
    return this.stock.takeIdle(Date.now(), (c) => void this.destroy(c, 'expired'));
  }

  private lease(
    c: PooledContainer,
    waiter?: { resolve(c: PooledContainer): boolean; enqueuedAt: number },
  ): void {
    this.stock.lease(c);
    if (waiter && !waiter.resolve(c)) {
      this.stock.returnIdle(c);
      return;
    }
    this.deps.totals.acquired++;
    this.deps.events.emit('acquired', {
      waitMs: waiter ? performance.now() - waiter.enqueuedAt : 0,
    });
  }

  /** Why a waiter got nothing, for its AcquireTimeoutError. */
  private shortage(): string {
    const { lastError } = this.backoff;
    if (lastError) return `creating containers fails (${lastError.message})`;
    if (this.stock.creating) {
      return (
        `${this.stock.creating} container(s) are still being created and all others are in use ` +
        `(maxContainers ${this.maxContainers})`
      );
    }
    return `every container is in use (maxContainers ${this.maxContainers})`;
  }

  /** Why acquires cannot be served now (shutting down, drained, engine/image/sandbox unavailable), or null. */
  unavailable(): ContainerPoolError | null {
    if (this.shuttingDown) return new PoolShuttingDownError();
    if (this.draining) return new PoolDrainedError();
    if (!this.initPromise) return null;
    const { lastError } = this.backoff;
    if (!this.deps.engine.available && lastError) return lastError;
    if (this.stock.idle.length) return null;
    if (lastError && isPoolWide(lastError) && (!this.prepared || this.backoff.failureStreak > 0)) {
      return lastError;
    }
    return null;
  }

  /**
   * A warm container at once, else a new one when the cap allows, else a FIFO wait until `timeoutMs` (default
   * acquireTimeoutMs) or the signal.
   */
  acquire(opts: AcquireOptions = {}): Promise<PooledContainer> {
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
        this.schedule.soon();
        return Promise.resolve(c);
      }
    }
    const servable = this.stock.creating + Math.max(0, this.maxContainers - this.stock.total);
    if (this.waiters.full(servable, this.options.maxWaiters)) {
      return Promise.reject(new TooManyWaitersError(this.options.maxWaiters));
    }
    const promise = this.waiters.add(
      opts.timeoutMs ?? this.options.acquireTimeoutMs,
      opts.signal,
      () => this.shortage(),
      () => this.deps.totals.acquireTimeouts++,
    );
    this.pump();
    return promise;
  }

  /** Takes a leased container back: removed in the background (single-use), or idle again. Twice is harmless. */
  release(c: PooledContainer): void {
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
      void this.destroy(c, 'released', true);
      this.schedule.soon();
      return;
    }
    // Back at the front: a returned container is handed out before newer ones (its surplus is trimmed by tick).
    this.stock.returnIdle(c);
    this.pump();
  }

  /** An execution started in one of the pool's containers (a top-up waits for executions while healthy). */
  executionStarted(): void {
    this.executing++;
  }

  executionEnded(): void {
    this.executing--;
    // A top-up that waited for the executions starts now (after the caller has its result).
    if (!this.executing && this.deferredSince) this.schedule.soon();
  }

  // ---------------------------------------------------------------- removal

  /**
   * Removes the container now; resolves when the engine has removed it. `afterCurrentTask` issues the engine call
   * after the current task (release() lets the caller continue first).
   */
  destroy(c: PooledContainer, reason = 'destroyed', afterCurrentTask = false): Promise<void> {
    if (c.removal) return c.removal;
    this.stock.startRemoval(c);
    for (const e of c.executions) {
      e.kill(new ContainerLostError(c.name, 'it was destroyed while an execution was running'));
    }
    const source = this.deps.source;
    const removed = afterCurrentTask
      ? new Promise<void>((r) => setImmediate(r)).then(() => source.remove(c.source))
      : source.remove(c.source);
    c.removal = this.track(
      removed
        .catch((err) => {
          this.deps.log.warn(
            `removing ${c.name} failed: ${err instanceof Error ? err.message : err}; letting it go ` +
              `(its lifeline closes, so it exits and the engine removes it)`,
          );
          source.letGo(c.source);
          this.engineFailed(err);
        })
        .finally(() => {
          c.unwatch?.();
          this.stock.removed(c);
          this.deps.totals.destroyed++;
          this.deps.events.emit('destroyed', { reason });
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
    this.backoff.skip();
    if (!this.prepared) await this.prepare();
    // Batches of maxConcurrentCreates until the pool is full; bounded, so steady load cannot keep it going.
    for (
      let rounds = Math.ceil(this.size / this.options.maxConcurrentCreates) + 1;
      rounds > 0;
      rounds--
    ) {
      this.pump(true);
      if (!this.creates.size) break;
      await Promise.all([...this.creates]);
      if (this.backoff.failureStreak > 0) break;
    }
    const { lastError } = this.backoff;
    if (lastError && isPoolWide(lastError)) throw lastError;
    return this.stats();
  }

  /** Changes size and/or maxContainers at run time; shrinking removes idle surplus, never a leased container. */
  resize(change: { size?: number; maxContainers?: number }): PoolStats {
    const size = change.size ?? this.size;
    const maxContainers = change.maxContainers ?? this.maxContainers;
    if (!Number.isInteger(maxContainers) || maxContainers < 1) {
      throw new InvalidRequestError('maxContainers', 'must be an integer of at least 1');
    }
    if (!Number.isInteger(size) || size < 0) {
      throw new InvalidRequestError('size', 'must be an integer of at least 0');
    }
    if (size > maxContainers) {
      throw change.size === undefined
        ? new InvalidRequestError('maxContainers', `must be at least size (${size})`)
        : new InvalidRequestError('size', `must not exceed maxContainers (${maxContainers})`);
    }
    this.size = size;
    this.maxContainers = maxContainers;
    this.deps.log.log(`resized: size=${size} maxContainers=${maxContainers}`);
    const over = this.stock.idle.length - size;
    if (over > 0) for (const c of this.stock.idle.slice(0, over)) void this.destroy(c, 'resize');
    this.pump();
    return this.stats();
  }

  /** Removes idle containers and stops refilling until resume(); waiters are rejected. */
  async drain(): Promise<PoolStats> {
    this.draining = true;
    this.waiters.rejectAll(new PoolDrainedError());
    await Promise.allSettled([...this.stock.idle].map((c) => this.destroy(c, 'drain')));
    return this.stats();
  }

  resume(): PoolStats {
    this.draining = false;
    this.backoff.skip();
    this.pump();
    return this.stats();
  }

  /** The pool's containers, by state. */
  containers() {
    const o = this.options;
    return this.stock.rows(
      o.image,
      (createdAt) =>
        new Date(
          createdAt.getTime() +
            o.containerLifetimeMs -
            o.maxExecTimeoutMs -
            LIFETIME_SAFETY_MARGIN_MS,
        ),
    );
  }

  /** One of the pool's containers by full id, unique id prefix (12+ hex) or name. */
  find(ref: string): PooledContainer | undefined {
    return this.stock.find(ref);
  }

  stats(): PoolStats {
    const s = this.stock;
    return {
      name: this.options.name,
      image: this.options.image,
      idle: s.idle.length,
      leased: s.leased.size,
      creating: s.creating,
      destroying: s.destroying,
      waiting: this.waiters.length,
      size: this.size,
      maxContainers: this.maxContainers,
      draining: this.draining,
      shuttingDown: this.shuttingDown,
      engineAvailable: this.deps.engine.available,
      lastError: this.backoff.lastError?.message ?? null,
      totals: { ...this.deps.totals },
    };
  }
}

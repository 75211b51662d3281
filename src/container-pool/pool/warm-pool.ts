import type { EventEmitter } from 'node:events';
import { LIFETIME_SAFETY_MARGIN_MS } from '../container-pool.constants';
import {
  ContainerPoolError,
  ExecutionAbortedError,
  InvalidRequestError,
  PoolDrainedError,
  PoolShuttingDownError,
  TooManyWaitersError,
} from '../errors/container-pool.errors';
import type { PoolStats, PoolTotals } from '../interfaces/container.interface';
import type { ResolvedContainerPoolOptions } from '../interfaces/container-pool-options.interface';
import type { ContainerPoolEventMap } from '../interfaces/events.interface';
import type { AcquireOptions } from '../interfaces/run-request.interface';
import { isPoolWide } from './backoff';
import type { ContainerSource, EngineStatus, IntervalHost, PoolLog } from './container-source';
import { PoolState } from './pool-state';
import type { PooledContainer } from './pooled-container';
import { RefillScheduler } from './refill-scheduler';
import type { CapacityMember, SharedCapacity } from './shared-capacity';
import { Removals } from './removals';
import { Supply } from './supply';
import {
  GenerationCounts,
  handsOutFreshFirst,
  handsOutStale,
  isStale,
  reusesStale,
  rolloutComplete,
  RolloutRule,
  rolloutSettled,
  staleToRetire,
} from './rollout';

/** The options a warm pool runs with (its share of the resolved options). */
export type WarmPoolOptions = Pick<
  ResolvedContainerPoolOptions,
  | 'name'
  | 'profile'
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
  /** The limits shared with the module's other pools (profiles); none for a module of one pool. */
  capacity?: SharedCapacity;
  /** Without `capacity`: the module-wide cap (maxContainersTotal), which a rolling rollout's surge respects. */
  maxTotal?: number;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());

/** The pool's stats as the rules know them (the transport is its owner's to add). */
export type WarmPoolStats = Omit<PoolStats, 'transport'>;

/**
 * One warm pool: keeps `size` containers started, hands them out (idle first, else a new one under the cap, else
 * FIFO waiting), takes them back, drains, resizes and shuts down in tarn.js's order. It knows containers only
 * through its ContainerSource; the supply side (preparation, creates, back-off, losses) is its Supply.
 */
export class WarmPool {
  private readonly state: PoolState;
  private readonly schedule: RefillScheduler;
  private readonly removals: Removals;
  private readonly supply: Supply;
  private initPromise?: Promise<void>;
  private shutdownPromise?: Promise<void>;

  constructor(
    readonly options: WarmPoolOptions,
    private readonly deps: WarmPoolDeps,
  ) {
    const state = (this.state = new PoolState(options, deps.totals));
    if (!deps.capacity && deps.maxTotal !== undefined) state.maxTotal = deps.maxTotal;
    const member = (this.member = state.asCapacityMember({
      pump: () => this.pump(),
      wanted: () => this.supply.wanted(),
      trimSurplus: () => this.supply.trimSurplus(),
      inFlight: () => this.supply.inFlight,
    }));
    deps.capacity?.join(member);
    // What frees a slot or a create slot may serve another pool first: every pool decides again.
    const pump = deps.capacity ? () => deps.capacity!.changed() : () => this.pump();
    this.pumpAll = pump;
    this.schedule = new RefillScheduler(pump, deps.intervals);
    this.removals = new Removals({
      state,
      source: deps.source,
      log: deps.log,
      events: deps.events,
      onFailure: (err) => this.engineFailed(err),
      onRemoved: pump,
    });
    this.supply = new Supply({
      state,
      options,
      source: deps.source,
      engine: deps.engine,
      log: deps.log,
      events: deps.events,
      schedule: this.schedule,
      removals: this.removals,
      pump,
      shared: deps.capacity && { capacity: deps.capacity, member },
    });
  }

  /** pump(), or every pool's when they share limits. */
  private readonly pumpAll: () => void;
  /** This pool as the limits shared with the module's other pools see it. */
  private readonly member: CapacityMember;

  /** How many more containers it may have now: its own cap, and the module-wide one when shared. */
  room(): number {
    const own = Math.max(0, this.state.refillMaxContainers() - this.state.stock.total);
    return this.deps.capacity ? Math.min(own, this.deps.capacity.room(this.member)) : own;
  }

  get isShuttingDown(): boolean {
    return this.state.shuttingDown;
  }

  // ---------------------------------------------------------------- lifecycle

  /** Starts the pool: prepares the engine side and fills it. Idempotent; see ContainerPoolService.initialize. */
  initialize(): Promise<void> {
    this.initPromise ??= (async () => {
      if (this.state.shuttingDown) throw new PoolShuttingDownError();
      this.state.started = true;
      this.deps.source.start();
      this.schedule.startTicks(this.deps.intervalName, this.options.replenishIntervalMs, () =>
        this.supply.tick(),
      );
      await this.supply.prepare();
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
      const { state } = this;
      state.shuttingDown = true;
      this.schedule.stop();
      this.supply.stop();
      state.waiters.rejectAll(new PoolShuttingDownError());
      const executions = [...state.stock.byId.values()].flatMap((c) => [...c.executions]);
      if (executions.length) {
        this.deps.log.log(
          `shutdown: waiting up to ${this.options.shutdownGraceMs} ms for ${executions.length} execution(s)`,
        );
        const all = Promise.allSettled(executions.map((e) => e.done));
        await Promise.race([all, sleep(this.options.shutdownGraceMs)]);
        for (const e of executions) e.kill(new PoolShuttingDownError());
        await all;
      }
      await this.removals.settle();
      await Promise.allSettled([...state.stock.byId.values()].map((c) => this.destroy(c)));
      await this.removals.settle();
      // Belt and braces: anything of this instance the engine still lists (e.g. a create that timed out).
      if (this.deps.engine.available) {
        await this.deps.source.removeLeftovers().catch(() => undefined);
      }
    })();
    return this.shutdownPromise;
  }

  /**
   * The pool's one scheduling step, synchronous and cheap: hand idle containers to waiters, then start as many
   * creates as the targets, the cap, the create concurrency and the back-off allow.
   */
  private pump(force = false): void {
    if (this.state.shuttingDown) return;
    this.state.waiters.serve(
      () => (this.state.stock.idle.length ? this.takeIdle() : undefined),
      (c, w) => this.lease(c, w),
    );
    if (this.state.started) this.supply.refill(force);
    this.retireStale();
  }

  // ---------------------------------------------------------------- rollout

  /**
   * From now on new containers are of `rule.generation`, and containers of any other are replaced by
   * `rule.strategy` (see rollout.ts). The source must make containers of that generation already.
   */
  rollOut(rule: RolloutRule | null): void {
    this.state.rollout = rule;
    if (rule) {
      this.deps.log.log(
        `rolling out generation ${rule.generation} (${rule.strategy}` +
          `${rule.strategy === 'rolling' ? `, maxSurge ${rule.maxSurge}` : ''})`,
      );
    }
    this.pumpAll();
  }

  /**
   * A rollout was reverted: the failures of the abandoned generation's creates (its image gone, its limits refused)
   * no longer hold the pool back: no back-off, and acquires are not refused with their error. The next refill
   * prepares again if they unprepared it (the previous image).
   */
  forgetFailures(): void {
    const { backoff } = this.state;
    backoff.failureStreak = 0;
    backoff.until = 0;
    backoff.lastError = null;
  }

  /** The rule in force, or null before any rollout. */
  get rollout(): RolloutRule | null {
    return this.state.rollout;
  }

  /** The idle and leased containers by generation. */
  generations(): GenerationCounts {
    return this.state.generations();
  }

  /** Whether update() may resolve, and whether the rollout is complete (see rollout.ts); null without one. */
  rolloutProgress(): { settled: boolean; complete: boolean } | null {
    const rule = this.state.rollout;
    if (!rule) return null;
    const counts = this.state.generations();
    const target = this.state.draining ? 0 : this.state.size;
    return {
      settled: rolloutSettled(rule, counts, target),
      complete: rolloutComplete(rule, counts, target),
    };
  }

  /** Removes the stale idle containers the rule retires now (oldest first). */
  private retireStale(): void {
    const { state } = this;
    const rule = state.rollout;
    if (!rule || state.shuttingDown) return;
    const counts = state.generations();
    const n = staleToRetire(rule, counts, {
      size: state.draining ? 0 : state.size,
      creating: state.stock.creating,
      destroying: state.stock.destroying,
      room: this.room(),
    });
    if (n <= 0) return;
    const stale = state.stock.idle.filter((c) => isStale(c, rule)).slice(0, n);
    for (const c of stale) void this.destroy(c, 'rollout');
  }

  /** Records an engine-wide failure seen by anyone (an execution, a removal). */
  engineFailed(err: unknown): void {
    this.supply.engineFailed(err);
  }

  /** Marks the container lost: its executions fail with ContainerLostError and it is removed. */
  lost(c: PooledContainer, reason: string): void {
    this.supply.lost(c, reason);
  }

  /** Removes the container now; resolves when the engine has removed it (see Removals.destroy). */
  destroy(c: PooledContainer, reason?: string, afterCurrentTask = false): Promise<void> {
    return this.removals.destroy(c, reason, afterCurrentTask);
  }

  // ---------------------------------------------------------------- hand-out

  private takeIdle(): PooledContainer | undefined {
    const rule = this.state.rollout;
    if (handsOutFreshFirst(rule, this.options.singleUse)) {
      const fresh = this.state.stock.takeIdleWhere(Date.now(), (c) => !isStale(c, rule));
      if (fresh) return fresh;
    }
    for (;;) {
      const c = this.state.stock.takeIdle(Date.now(), (c) => void this.destroy(c, 'expired'));
      // recreate: an old one (e.g. a create that finished after the update) is never handed out.
      if (!c || handsOutStale(rule) || !isStale(c, rule)) return c;
      void this.destroy(c, 'rollout');
    }
  }

  private lease(
    c: PooledContainer,
    waiter?: { resolve(c: PooledContainer): boolean; enqueuedAt: number },
  ): void {
    this.state.stock.lease(c);
    if (waiter && !waiter.resolve(c)) {
      this.state.stock.returnIdle(c);
      return;
    }
    this.state.totals.acquired++;
    this.deps.events.emit('acquired', {
      waitMs: waiter ? performance.now() - waiter.enqueuedAt : 0,
    });
  }

  /** Why a waiter got nothing, for its AcquireTimeoutError. */
  private shortage(): string {
    const { backoff, stock, maxContainers } = this.state;
    if (backoff.lastError) return `creating containers fails (${backoff.lastError.message})`;
    const capacity = this.deps.capacity;
    const cap =
      capacity && stock.total < maxContainers
        ? `maxContainersTotal ${capacity.maxTotal} of the module, this profile's share at most ${capacity.ceiling(this.member)}`
        : `maxContainers ${maxContainers}`;
    if (stock.creating) {
      return `${stock.creating} container(s) are still being created and all others are in use (${cap})`;
    }
    return `every container is in use (${cap})`;
  }

  /** Why acquires cannot be served now (shutting down, drained, engine/image/sandbox unavailable), or null. */
  unavailable(): ContainerPoolError | null {
    const { state } = this;
    if (state.shuttingDown) return new PoolShuttingDownError();
    if (state.draining) return new PoolDrainedError();
    if (!state.started) return null;
    const { lastError, failureStreak } = state.backoff;
    if (!this.deps.engine.available && lastError) return lastError;
    if (state.stock.idle.length) return null;
    if (lastError && isPoolWide(lastError) && (!this.supply.isPrepared || failureStreak > 0)) {
      return lastError;
    }
    return null;
  }

  /**
   * A warm container at once, else a new one when the cap allows, else a FIFO wait until `timeoutMs` (default
   * acquireTimeoutMs) or the signal.
   */
  acquire(opts: AcquireOptions = {}): Promise<PooledContainer> {
    const { state } = this;
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
    if (!state.waiters.length) {
      const c = this.takeIdle();
      if (c) {
        this.lease(c);
        this.schedule.soon();
        return Promise.resolve(c);
      }
    }
    const servable = state.stock.creating + this.room();
    if (state.waiters.full(servable, this.options.maxWaiters)) {
      return Promise.reject(new TooManyWaitersError(this.options.maxWaiters));
    }
    const promise = state.waiters.add(
      opts.timeoutMs ?? this.options.acquireTimeoutMs,
      opts.signal,
      () => this.shortage(),
      () => state.totals.acquireTimeouts++,
    );
    // A new waiter may change what the other pools should do (make way at the module-wide cap).
    this.pumpAll();
    return promise;
  }

  /** Takes a leased container back: removed in the background (single-use), or idle again. Twice is harmless. */
  release(c: PooledContainer): void {
    const { state } = this;
    if (c.state !== 'leased') return;
    const reusable =
      !this.options.singleUse &&
      !c.tainted &&
      !c.lostReason &&
      !state.draining &&
      !state.shuttingDown &&
      c.expiry.getTime() > Date.now() &&
      c.executions.size === 0 &&
      // An old generation's container is used up, never idle again (but while a rolling rollout retires them).
      (!isStale(c, state.rollout) || reusesStale(state.rollout, state.generations()));
    if (!reusable) {
      // The caller has its result first; the engine work of the removal and of the refill starts right after.
      void this.destroy(c, 'released', true);
      this.schedule.soon();
      return;
    }
    // Back at the front: a returned container is handed out before newer ones (its surplus is trimmed by tick).
    state.stock.returnIdle(c);
    this.pump();
  }

  /** An execution started in one of the pool's containers (a top-up waits for executions while healthy). */
  executionStarted(): void {
    this.state.executing++;
  }

  executionEnded(): void {
    this.state.executing--;
    // A top-up that waited for the executions starts now (after the caller has its result).
    if (!this.state.executing && this.state.deferredSince) this.schedule.soon();
  }

  // ---------------------------------------------------------------- operations

  /**
   * Tops up now (skipping any back-off and the wait for running executions) and resolves when the pool is full
   * or a create failed; it waits for its own creates only, never for ones other work keeps starting.
   */
  async replenish(): Promise<WarmPoolStats> {
    const { state } = this;
    if (state.shuttingDown) throw new PoolShuttingDownError();
    if (!this.initPromise) {
      await this.initialize();
      return this.stats();
    }
    state.backoff.skip();
    if (!this.supply.isPrepared) await this.supply.prepare();
    // Batches of maxConcurrentCreates until the pool is full; bounded, so steady load cannot keep it going. With
    // other profiles the create slots go round-robin: a round may be a wait for its turn.
    const rounds =
      (Math.ceil(state.size / this.options.maxConcurrentCreates) + 1) *
      (this.deps.capacity?.memberCount ?? 1);
    for (let round = 0; round < rounds; round++) {
      this.pump(true);
      const creates = this.supply.inFlight;
      if (!creates.length) {
        // The other profiles hold the create slots it could use: when one of theirs settles, it may be its turn.
        const held = this.supply.slotsHeldByOthers();
        if (!held.length || state.shuttingDown) break;
        await Promise.race(held);
        continue;
      }
      await Promise.all(creates);
      if (state.backoff.failureStreak > 0) break;
    }
    const { lastError } = state.backoff;
    if (lastError && isPoolWide(lastError)) throw lastError;
    return this.stats();
  }

  /** Changes size and/or maxContainers at run time; shrinking removes idle surplus, never a leased container. */
  resize(change: { size?: number; maxContainers?: number }): WarmPoolStats {
    const { state } = this;
    const { size, maxContainers } = this.checkResize(change);
    state.size = size;
    state.maxContainers = maxContainers;
    this.deps.log.log(`resized: size=${size} maxContainers=${maxContainers}`);
    const over = state.stock.idle.length - size;
    if (over > 0) for (const c of state.stock.idle.slice(0, over)) void this.destroy(c, 'resize');
    this.pumpAll();
    return this.stats();
  }

  /** The targets resize(change) would set; InvalidRequestError naming the field when it would refuse them. */
  checkResize(change: { size?: number; maxContainers?: number }): {
    size: number;
    maxContainers: number;
  } {
    const { state } = this;
    const size = change.size ?? state.size;
    const maxContainers = change.maxContainers ?? state.maxContainers;
    if (!Number.isSafeInteger(maxContainers) || maxContainers < 1) {
      throw new InvalidRequestError('maxContainers', 'must be an integer of at least 1');
    }
    if (!Number.isSafeInteger(size) || size < 0) {
      throw new InvalidRequestError('size', 'must be an integer of at least 0');
    }
    if (size > maxContainers) {
      throw change.size === undefined
        ? new InvalidRequestError('maxContainers', `must be at least size (${size})`)
        : new InvalidRequestError('size', `must not exceed maxContainers (${maxContainers})`);
    }
    const shared = this.deps.capacity?.sizeProblem(this.member, size);
    if (shared) throw new InvalidRequestError('size', shared);
    return { size, maxContainers };
  }

  /** Removes idle containers and stops refilling until resume(); waiters are rejected. */
  async drain(): Promise<WarmPoolStats> {
    this.state.draining = true;
    this.state.waiters.rejectAll(new PoolDrainedError());
    await Promise.allSettled([...this.state.stock.idle].map((c) => this.destroy(c, 'drain')));
    return this.stats();
  }

  resume(): WarmPoolStats {
    this.state.draining = false;
    this.state.backoff.skip();
    this.pumpAll();
    return this.stats();
  }

  /** The pool's containers, by state. */
  containers() {
    const o = this.options;
    const untilRecycled = o.containerLifetimeMs - o.maxExecTimeoutMs - LIFETIME_SAFETY_MARGIN_MS;
    return this.state.stock.rows(o.image, (at) => new Date(at.getTime() + untilRecycled));
  }

  /** One of the pool's containers by full id, unique id prefix (12+ hex) or name. */
  find(ref: string): PooledContainer | undefined {
    return this.state.stock.find(ref);
  }

  stats(): WarmPoolStats {
    const { stock, backoff, ...s } = this.state;
    return {
      name: this.options.name,
      profile: this.options.profile,
      image: this.options.image,
      idle: stock.idle.length,
      leased: stock.leased.size,
      creating: stock.creating,
      destroying: stock.destroying,
      waiting: s.waiters.length,
      size: s.size,
      maxContainers: s.maxContainers,
      draining: s.draining,
      shuttingDown: s.shuttingDown,
      engineAvailable: this.deps.engine.available,
      lastError: backoff.lastError?.message ?? null,
      totals: { ...s.totals },
    };
  }
}

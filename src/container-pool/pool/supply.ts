import type { EventEmitter } from 'node:events';
import { EARLY_DEATH_MS } from '../container-pool.constants';
import {
  ContainerCreateError,
  ContainerLostError,
  EngineUnavailableError,
  ImageUnavailableError,
} from '../errors/container-pool.errors';
import type { ContainerPoolEventMap } from '../interfaces/events.interface';
import { asPoolError, isPoolWide } from './backoff';
import type { ContainerSource, EngineStatus, PoolLog } from './container-source';
import type { PoolState } from './pool-state';
import { PooledContainer } from './pooled-container';
import { planRefill } from './refill-planner';
import type { RefillScheduler } from './refill-scheduler';
import type { CapacityMember, SharedCapacity } from './shared-capacity';
import type { Removals } from './removals';
import { isStale, keepsStaleCreated } from './rollout';

export interface SupplyDeps {
  state: PoolState;
  options: { maxConcurrentCreates: number };
  source: ContainerSource;
  engine: EngineStatus;
  log: PoolLog;
  events: EventEmitter<ContainerPoolEventMap>;
  schedule: RefillScheduler;
  removals: Removals;
  /** The limits shared with the module's other pools, and this pool as they see it. */
  shared?: { capacity: SharedCapacity; member: CapacityMember };
  /** The pool's scheduling step (hand-out, then refill). */
  pump(): void;
}

/**
 * The supply side of a warm pool: the engine side's preparation (once per outage), creates within the refill
 * plan, back-off after failures, containers that die outside the pool (a young one is a failed create), and the
 * periodic recycling of expired and surplus idle containers.
 */
export class Supply {
  private prepared = false;
  private preparing?: Promise<void>;
  /** Creates in flight (they settle, never reject, once the container is in or the create failed). */
  private readonly creates = new Set<Promise<void>>();
  private readonly unsubscribeEngine: () => void;

  constructor(private readonly deps: SupplyDeps) {
    const { state, engine } = deps;
    this.unsubscribeEngine = engine.subscribe((event, error) => {
      if (state.shuttingDown) return;
      if (event === 'down') {
        this.prepared = false;
        if (error) state.backoff.lastError = error;
      } else if (!engine.available && state.started) {
        // The engine answers again: retry now rather than at the end of the back-off.
        state.backoff.skip();
        deps.pump();
      }
    });
  }

  /** Whether the engine side has been prepared since the last outage. */
  get isPrepared(): boolean {
    return this.prepared;
  }

  /** Creates in flight, for replenish() to wait on. */
  get inFlight(): Promise<void>[] {
    return [...this.creates];
  }

  stop(): void {
    this.unsubscribeEngine();
  }

  /** The source's preparation, once per outage; a failure is recorded once however many callers wait. */
  prepare(): Promise<void> {
    if (this.prepared) return Promise.resolve();
    this.preparing ??= this.deps.removals
      .track(this.deps.source.prepare())
      .then(() => {
        this.prepared = true;
        this.succeeded();
      })
      .catch((err: unknown) => {
        if (!this.deps.state.shuttingDown) this.failed(err);
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
    const { state, log } = this.deps;
    const error = asPoolError(err);
    const delay = state.backoff.fail(error);
    this.engineFailed(error);
    // The image vanished after the start (or was never there): ensure it again on the next try.
    if (error instanceof ImageUnavailableError || error instanceof EngineUnavailableError) {
      this.prepared = false;
    }
    const streak = state.backoff.failureStreak;
    if (streak === 1) log.error(`${error.message} (retrying with back-off)`);
    else log.debug(`still failing (${streak}x, next try in ${delay} ms): ${error.message}`);
    if (isPoolWide(error) && !state.stock.idle.length) state.waiters.rejectAll(error);
    this.deps.schedule.retryIn(delay);
  }

  private succeeded(): void {
    const streak = this.deps.state.backoff.succeed();
    if (streak > 0) this.deps.log.log(`recovered after ${streak} failure(s)`);
  }

  /** Whether a refill step forced by replenish() is deciding now (its creates skip the wait for executions). */
  private forcing = false;

  /** What the refill decision looks at now, the shared limits aside. */
  private refillState(force: boolean) {
    const { state } = this.deps;
    return {
      size: state.size,
      maxContainers: state.refillMaxContainers(),
      maxConcurrentCreates: this.deps.options.maxConcurrentCreates,
      draining: state.draining,
      waiting: state.waiters.length,
      idle: state.refillIdle(),
      creating: state.stock.creating,
      warming: state.stock.warmingNames.size,
      total: state.stock.total,
      executing: state.executing,
      force,
      deferredSince: state.deferredSince,
      now: Date.now(),
    };
  }

  /** Creates this pool would start now by its own rules (see CapacityMember.wanted). */
  wanted(): number {
    const { state } = this.deps;
    if (!state.started || state.shuttingDown || !this.prepared || state.backoff.waiting()) return 0;
    return planRefill(this.refillState(this.forcing)).creates;
  }

  /**
   * The other pools' creates in flight when they hold every create slot a forced top-up of this pool could use
   * now (see SharedCapacity.slotsHeldFor); empty without shared limits.
   */
  slotsHeldByOthers(): Promise<void>[] {
    const { shared } = this.deps;
    if (!shared) return [];
    this.forcing = true;
    try {
      return shared.capacity.slotsHeldFor(shared.member);
    } finally {
      this.forcing = false;
    }
  }

  /** Removes the idle containers above the target now (see CapacityMember.trimSurplus). */
  trimSurplus(): void {
    const { state, removals } = this.deps;
    if (state.shuttingDown) return;
    const idle = state.stock.idle;
    const surplus = idle.length - (state.draining ? 0 : state.size);
    for (const c of idle.slice(0, Math.max(0, surplus))) void removals.destroy(c, 'surplus');
  }

  /** The refill half of the scheduling step: prepare when needed, then the creates the plan allows. */
  refill(force: boolean): void {
    const { state, schedule, shared } = this.deps;
    if (state.backoff.waiting()) {
      schedule.retryIn(state.backoff.until - Date.now());
      return;
    }
    if (!this.prepared) {
      if (!this.preparing) this.prepare().then(this.deps.pump, () => undefined);
      return;
    }
    this.forcing = force;
    let allowance: number | undefined;
    try {
      allowance = shared?.capacity.allowance(shared.member);
    } finally {
      this.forcing = false;
    }
    const plan = planRefill({ ...this.refillState(force), allowance });
    state.deferredSince = plan.deferredSince;
    if (plan.retryInMs !== undefined) schedule.deferFor(plan.retryInMs);
    for (let i = 0; i < plan.creates; i++) this.createOne();
    shared?.capacity.started(shared.member, plan.creates);
  }

  /** Starts one create, tracked in `creates` until the container is in the pool or the create failed. */
  private createOne(): void {
    const { state, source, events } = this.deps;
    const { name, createdAt, ready, started: onEngine } = source.create();
    state.stock.creatingNames.set(name, createdAt);
    // Started on the engine, waiting for its runner: its create slot is free for the next create.
    void onEngine?.then(() => {
      if (!state.stock.creatingNames.has(name)) return;
      state.stock.warmingNames.add(name);
      this.deps.pump();
    });
    const started = performance.now();
    const done = ready.then(
      (sourced) => {
        state.stock.creatingNames.delete(name);
        state.stock.warmingNames.delete(name);
        state.totals.created++;
        // After containers died right after their start, only one that lives on ends the failure streak.
        if (!state.backoff.earlyDeathSuspected) this.succeeded();
        events.emit('created', { durationMs: performance.now() - started });
        const c = new PooledContainer(sourced);
        c.unwatch = source.watch(sourced, {
          oom: () => {
            c.oomEvents++;
            c.notify();
          },
          gone: (reason) => this.gone(c, reason),
        });
        // Of an older generation (started before the rollout's rule): not idle once the rollout settled.
        const stale =
          isStale(c, state.rollout) && !keepsStaleCreated(state.rollout, state.generations());
        const keep = !state.shuttingDown && !state.draining && !stale;
        state.stock.created(c, keep);
        if (!keep) void this.deps.removals.destroy(c, stale ? 'rollout' : 'not needed');
        this.deps.pump();
      },
      (err) => {
        state.stock.creatingNames.delete(name);
        state.stock.warmingNames.delete(name);
        state.totals.failedCreates++;
        const error = asPoolError(err);
        events.emit('createFailed', { error });
        if (state.shuttingDown) return;
        this.failed(error);
        this.deps.pump();
      },
    );
    this.creates.add(done);
    void this.deps.removals.track(done).finally(() => this.creates.delete(done));
  }

  /** The container died outside the pool; a young idle one counts as a failed create (back-off, no loop). */
  private gone(c: PooledContainer, reason: string): void {
    const livedMs = Date.now() - c.createdAt.getTime();
    if (c.state === 'idle' && livedMs < EARLY_DEATH_MS && !c.lostReason) {
      // Unless the engine itself went away (a restart kills every container): then it is not the image.
      void this.deps.source.engineAnswers().then((answers) => {
        if (!answers || this.deps.state.shuttingDown) return;
        this.deps.state.backoff.earlyDeathSuspected = true;
        this.failed(
          new ContainerCreateError(
            `container ${c.name} exited ${livedMs} ms after its start (${reason}); if this repeats, check that the ` +
              `image has sh, cat, date and sleep and that the limits let them run`,
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
    this.deps.state.totals.containersLost++;
    this.deps.log.warn(`container ${c.name} (${c.state}) lost: ${reason}`);
    const error = new ContainerLostError(c.name, reason);
    for (const e of c.executions) e.kill(error);
    c.notify();
    void this.deps.removals.destroy(c, 'lost');
  }

  /** Scheduled: recycle expired idle containers, trim surplus, end a suspected early-death streak, refill. */
  tick(): void {
    const { state, removals } = this.deps;
    if (state.shuttingDown) return;
    const now = Date.now();
    const idle = state.stock.idle;
    // Any container that lives on past the early-death window (idle or leased) ends the suspicion.
    if (
      state.backoff.earlyDeathSuspected &&
      [...state.stock.byId.values()].some(
        (c) =>
          c.state !== 'destroying' &&
          !c.lostReason &&
          now - c.createdAt.getTime() >= EARLY_DEATH_MS,
      )
    ) {
      state.backoff.earlyDeathSuspected = false;
      this.succeeded();
    }
    for (const c of [...idle]) if (c.expiry.getTime() <= now) void removals.destroy(c, 'expired');
    const surplus = idle.length - (state.draining ? 0 : state.size);
    if (surplus > 0 && !state.waiters.length) {
      for (const c of idle.slice(0, surplus)) void removals.destroy(c, 'surplus');
    }
    this.deps.source.housekeep();
    this.deps.pump();
  }
}

/**
 * Test doubles for the pool's ports (src/container-pool/pool/container-source.ts), to test the pool's rules
 * without Nest, a driver or an engine: a controllable ContainerSource, an EngineStatus, a collecting PoolLog, an
 * IntervalHost, and `buildWarmPool()` wiring a WarmPool on them.
 */
import { EventEmitter } from 'node:events';
import {
  EngineUnavailableError,
  ExecutionAbortedError,
  type ContainerPoolError,
} from '../../src/container-pool/errors/container-pool.errors';
import type { PoolTotals } from '../../src/container-pool/interfaces/container.interface';
import type { ContainerPoolEventMap } from '../../src/container-pool/interfaces/events.interface';
import type {
  ContainerSource,
  ContainerWatch,
  EngineStatus,
  IntervalHost,
  PendingContainer,
  PoolLog,
  SourcedContainer,
} from '../../src/container-pool/pool/container-source';
import type { ActiveExecution } from '../../src/container-pool/pool/pooled-container';
import type { SharedCapacity } from '../../src/container-pool/pool/shared-capacity';
import { WarmPool, type WarmPoolOptions } from '../../src/container-pool/pool/warm-pool';

/** Drains microtasks and a few rounds of the (real) setImmediate queue. */
export async function flush(rounds = 5): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise<void>((r) => setImmediate(r));
}

let containerSeq = 0;

/** A SourcedContainer for tests of the pool's parts (Stock, PooledContainer). */
export function sourcedContainer(overrides: Partial<SourcedContainer> = {}): SourcedContainer {
  const n = ++containerSeq;
  const createdAt = overrides.createdAt ?? new Date();
  return {
    id: n.toString(16).padStart(64, '0'),
    name: `fake-${n}`,
    image: 'fake:latest',
    createdAt,
    expiry: new Date(createdAt.getTime() + 3_600_000),
    hardDeadline: new Date(createdAt.getTime() + 3_700_000),
    handle: { fake: n },
    ...overrides,
  };
}

// ---------------------------------------------------------------- engine status

type StatusListener = (event: 'down' | 'reconnected', error?: ContainerPoolError) => void;

/** Like the engine monitor: only an EngineUnavailableError marks the engine down (and tells every listener). */
export class FakeEngineStatus implements EngineStatus {
  available = true;
  readonly markedDown: ContainerPoolError[] = [];
  private readonly listeners = new Set<StatusListener>();

  markDown(error: ContainerPoolError): void {
    this.markedDown.push(error);
    if (!(error instanceof EngineUnavailableError)) return;
    this.available = false;
    this.emit('down', error);
  }

  subscribe(listener: StatusListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  emit(event: 'down' | 'reconnected', error?: ContainerPoolError): void {
    for (const l of [...this.listeners]) l(event, error);
  }

  /** The engine stops answering (as a failed call would report it). */
  goDown(error = new EngineUnavailableError('connect ECONNREFUSED (fake)')): void {
    this.markDown(error);
  }

  /** The event stream is back; `available` stays as it is until the next successful check (prepare). */
  reconnect(): void {
    this.emit('reconnected');
  }

  get listenerCount(): number {
    return this.listeners.size;
  }
}

// ---------------------------------------------------------------- log and interval host

export type LogLevel = 'log' | 'warn' | 'error' | 'debug';

/** A PoolLog that keeps every line (`lines`), printing nothing. */
export class CollectingLog implements PoolLog {
  readonly lines: { level: LogLevel; message: string }[] = [];

  log(message: string): void {
    this.lines.push({ level: 'log', message });
  }
  warn(message: string): void {
    this.lines.push({ level: 'warn', message });
  }
  error(message: string): void {
    this.lines.push({ level: 'error', message });
  }
  debug(message: string): void {
    this.lines.push({ level: 'debug', message });
  }

  messages(level?: LogLevel): string[] {
    return this.lines.filter((l) => !level || l.level === level).map((l) => l.message);
  }
}

export const silentLog: PoolLog = {
  log: () => undefined,
  warn: () => undefined,
  error: () => undefined,
  debug: () => undefined,
};

/** An IntervalHost that records what was registered (and can refuse removals, like a torn-down registry). */
export class FakeIntervalHost implements IntervalHost {
  readonly intervals = new Map<string, NodeJS.Timeout>();
  readonly added: string[] = [];
  readonly removed: string[] = [];
  removeError: Error | null = null;

  add(name: string, timer: NodeJS.Timeout): void {
    this.added.push(name);
    this.intervals.set(name, timer);
  }

  remove(name: string): void {
    this.removed.push(name);
    if (this.removeError) throw this.removeError;
    this.intervals.delete(name);
  }
}

// ---------------------------------------------------------------- container source

/** A create held in flight by the test (`FakeContainerSource.manualCreates`). */
export interface HeldCreate {
  readonly name: string;
  readonly createdAt: Date;
  readonly signal?: AbortSignal;
  /** The create finishes: the container exists (with these fields overridden). */
  succeed(overrides?: Partial<SourcedContainer>): SourcedContainer;
  fail(error: Error): void;
  /** The engine's part is done (created, started); `succeed` comes once the main process is ready. */
  start(): void;
}

/** A removal held in flight by the test (`FakeContainerSource.manualRemoves`). */
export interface HeldRemove {
  readonly container: SourcedContainer;
  finish(): void;
  fail(error: Error): void;
}

/**
 * An in-memory ContainerSource. Creates succeed on the next microtask unless `createError` is set (they fail) or
 * `manualCreates` is set (they stay in `pendingCreates` until the test settles them; aborting fails them).
 * Removals succeed at once unless `removeErrors` names the container or `manualRemoves` holds them. `die()` and
 * `oom()` fire the pool's watch; every call is counted and logged in `calls`.
 */
export class FakeContainerSource implements ContainerSource {
  /** prepare() rejects with this while set. */
  prepareError: Error | null = null;
  /** prepare() waits for this while set. */
  prepareGate: Promise<void> | null = null;
  createError: Error | null = null;
  manualCreates = false;
  manualRemoves = false;
  /** What engineAnswers() resolves to (false also marks a linked engine down, like the monitor's ping). */
  answers = true;
  /** removeLeftovers() rejects with this while set. */
  leftoversError: Error | null = null;
  /** Removals of these container ids fail with the error. */
  readonly removeErrors = new Map<string, Error>();
  /** A removal ends the container's lifeline: its watch says `gone('removed')` before the removal resolves. */
  dieOnRemove = false;
  /** The lifetime of created containers: expiry is this after createdAt (hardDeadline a minute later). */
  lifetimeMs = 3_600_000;
  /** The generation label of the containers it creates from now on (a rollout switches it). */
  generation: string | undefined = undefined;
  /** Called with the pool's counts as seen at each create call (to check the cap). */
  onCreate?: () => void;
  /** Creates report `started` (the engine's part done) before `ready`, as a runner-transport create does. */
  reportsStarted = false;

  readonly pendingCreates: HeldCreate[] = [];
  readonly pendingRemoves: HeldRemove[] = [];
  /** Every container a create produced, in order. */
  readonly created: SourcedContainer[] = [];
  /** Containers created and not yet removed. */
  readonly live = new Map<string, SourcedContainer>();
  readonly removedIds: string[] = [];
  readonly removeCounts = new Map<string, number>();
  readonly letGoIds: string[] = [];
  /** Every call, in order: `start`, `prepare`, `create <name>`, `remove <name>`, `letGo <name>`, ... */
  readonly calls: string[] = [];

  startCalls = 0;
  prepareCalls = 0;
  createCalls = 0;
  removeCalls = 0;
  engineAnswersCalls = 0;
  removeLeftoversCalls = 0;
  creatingNow = 0;
  maxCreatingAtOnce = 0;

  private seq = 0;
  private readonly watches = new Map<string, Set<ContainerWatch>>();

  /** `engine`: the status a successful prepare() marks available (as the monitor's check does). */
  constructor(private readonly engine?: FakeEngineStatus) {}

  start(): void {
    this.startCalls++;
    this.calls.push('start');
  }

  async prepare(): Promise<void> {
    this.prepareCalls++;
    this.calls.push('prepare');
    if (this.prepareGate) await this.prepareGate;
    if (this.prepareError) {
      if (this.prepareError instanceof EngineUnavailableError) {
        this.engine?.markDown(this.prepareError);
      }
      throw this.prepareError;
    }
    if (this.engine) this.engine.available = true;
  }

  create(signal?: AbortSignal): PendingContainer {
    this.onCreate?.();
    this.createCalls++;
    const n = ++this.seq;
    const name = `fake-${n}`;
    const createdAt = new Date();
    const generation = this.generation;
    this.calls.push(`create ${name}`);
    this.creatingNow++;
    this.maxCreatingAtOnce = Math.max(this.maxCreatingAtOnce, this.creatingNow);
    let settled = false;
    let markStarted!: () => void;
    const started = new Promise<void>((r) => (markStarted = r));
    let resolveFn!: (c: SourcedContainer) => void;
    let rejectFn!: (e: Error) => void;
    const ready = new Promise<SourcedContainer>((resolve, reject) => {
      resolveFn = resolve;
      rejectFn = reject;
    });
    const finish = (how: () => void) => {
      if (settled) return false;
      settled = true;
      this.creatingNow--;
      const i = this.pendingCreates.indexOf(held);
      if (i >= 0) this.pendingCreates.splice(i, 1);
      signal?.removeEventListener('abort', onAbort);
      how();
      return true;
    };
    const make = (overrides: Partial<SourcedContainer>): SourcedContainer => ({
      id: n.toString(16).padStart(8, '0') + 'c'.repeat(56),
      name,
      image: 'fake:latest',
      generation,
      createdAt,
      expiry: new Date(createdAt.getTime() + this.lifetimeMs),
      hardDeadline: new Date(createdAt.getTime() + this.lifetimeMs + 60_000),
      handle: { n },
      ...overrides,
    });
    const held: HeldCreate = {
      name,
      createdAt,
      signal,
      succeed: (overrides = {}) => {
        const c = make(overrides);
        finish(() => {
          this.created.push(c);
          this.live.set(c.id, c);
          resolveFn(c);
        });
        return c;
      },
      fail: (error) => void finish(() => rejectFn(error)),
      start: () => markStarted(),
    };
    const onAbort = () =>
      finish(() => rejectFn(new ExecutionAbortedError('Container creation', signal?.reason)));
    if (signal?.aborted) onAbort();
    else signal?.addEventListener('abort', onAbort, { once: true });
    if (!settled) {
      if (this.manualCreates) this.pendingCreates.push(held);
      else {
        const error = this.createError;
        void Promise.resolve().then(() => (error ? held.fail(error) : held.succeed()));
      }
    }
    return { name, createdAt, ready, ...(this.reportsStarted && { started }) };
  }

  watch(container: SourcedContainer, watch: ContainerWatch): () => void {
    let set = this.watches.get(container.id);
    if (!set) this.watches.set(container.id, (set = new Set()));
    set.add(watch);
    return () => {
      set.delete(watch);
      if (!set.size) this.watches.delete(container.id);
    };
  }

  /** Whether the pool still follows the container's fate. */
  watched(id: string): boolean {
    return (this.watches.get(id)?.size ?? 0) > 0;
  }

  /** The container dies outside the pool (its lifeline ended, or the engine said so). */
  die(id: string, reason = 'killed outside the pool (fake)'): void {
    this.live.delete(id);
    for (const w of [...(this.watches.get(id) ?? [])]) w.gone(reason);
  }

  /** The engine reports an OOM kill in the container. */
  oom(id: string): void {
    for (const w of [...(this.watches.get(id) ?? [])]) w.oom();
  }

  remove(container: SourcedContainer): Promise<void> {
    this.removeCalls++;
    this.calls.push(`remove ${container.name}`);
    this.removeCounts.set(container.id, (this.removeCounts.get(container.id) ?? 0) + 1);
    const done = () => {
      if (this.dieOnRemove) this.die(container.id, 'removed');
      this.live.delete(container.id);
      this.removedIds.push(container.id);
    };
    const refusal = this.removeErrors.get(container.id);
    if (refusal) return Promise.reject(refusal);
    if (!this.manualRemoves) {
      done();
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const held: HeldRemove = {
        container,
        finish: () => settle(() => (done(), resolve())),
        fail: (error) => settle(() => reject(error)),
      };
      const settle = (how: () => void) => {
        const i = this.pendingRemoves.indexOf(held);
        if (i < 0) return;
        this.pendingRemoves.splice(i, 1);
        how();
      };
      this.pendingRemoves.push(held);
    });
  }

  letGo(container: SourcedContainer): void {
    this.calls.push(`letGo ${container.name}`);
    this.letGoIds.push(container.id);
  }

  engineAnswers(): Promise<boolean> {
    this.engineAnswersCalls++;
    if (!this.answers) this.engine?.markDown(new EngineUnavailableError('no answer (fake)'));
    return Promise.resolve(this.answers);
  }

  /** Counted; the fake has nothing to sweep. */
  housekeepCalls = 0;
  housekeep(): void {
    this.housekeepCalls++;
  }

  removeLeftovers(): Promise<void> {
    this.removeLeftoversCalls++;
    this.calls.push('removeLeftovers');
    return this.leftoversError ? Promise.reject(this.leftoversError) : Promise.resolve();
  }

  /** Lets every held create succeed and every held removal finish. */
  settleAll(): void {
    for (const c of [...this.pendingCreates]) c.succeed();
    for (const r of [...this.pendingRemoves]) r.finish();
  }

  /** The oldest held create (throws when none is held). */
  nextCreate(): HeldCreate {
    const c = this.pendingCreates[0];
    if (!c) throw new Error('no create is held');
    return c;
  }
}

// ---------------------------------------------------------------- executions

/** An ActiveExecution the test ends (`finish`) or the pool kills (`kill`, recorded in `killedWith`). */
export class FakeExecution implements ActiveExecution {
  readonly done: Promise<void>;
  killedWith: Error | null = null;
  finished = false;
  private resolveFn!: () => void;

  constructor() {
    this.done = new Promise<void>((r) => (this.resolveFn = r));
  }

  kill(error: Error): void {
    if (this.finished) return;
    this.killedWith ??= error;
    this.finish();
  }

  finish(): void {
    this.finished = true;
    this.resolveFn();
  }
}

// ---------------------------------------------------------------- a wired warm pool

export function emptyTotals(): PoolTotals {
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

export const DEFAULT_TEST_OPTIONS: WarmPoolOptions = {
  name: 'test',
  profile: 'test',
  image: 'fake:latest',
  size: 0,
  maxContainers: 4,
  maxWaiters: 10,
  maxConcurrentCreates: 2,
  acquireTimeoutMs: 10_000,
  // Long: ticks only where a test asks for them.
  replenishIntervalMs: 3_600_000,
  singleUse: true,
  execTimeoutMs: 1_000,
  maxExecTimeoutMs: 5_000,
  shutdownGraceMs: 1_000,
  containerLifetimeMs: 3_600_000,
};

export interface WarmPoolHarness {
  pool: WarmPool;
  source: FakeContainerSource;
  engine: FakeEngineStatus;
  log: CollectingLog;
  events: EventEmitter<ContainerPoolEventMap>;
  /** Every event the pool emitted, in order, with its payload. */
  emitted: { event: keyof ContainerPoolEventMap; payload: unknown }[];
  totals: PoolTotals;
  intervals: FakeIntervalHost;
  options: WarmPoolOptions;
  /** Registers a fake execution in the container, as the executor does (executions + executionStarted). */
  startExecution(entry: { executions: Set<ActiveExecution> }): FakeExecution;
  /**
   * Shuts the pool down, settling held creates and removals (and calling `advance`, e.g. to move fake timers)
   * until it has finished.
   */
  close(advance?: () => void): Promise<void>;
}

/**
 * A WarmPool on a FakeContainerSource and a FakeEngineStatus, with fresh totals and events; with `capacity` it
 * shares those limits with the other pools built on the same SharedCapacity (profiles).
 */
export function buildWarmPool(
  options: Partial<WarmPoolOptions> = {},
  parts: {
    source?: FakeContainerSource;
    engine?: FakeEngineStatus;
    capacity?: SharedCapacity;
  } = {},
): WarmPoolHarness {
  const engine = parts.engine ?? new FakeEngineStatus();
  const source = parts.source ?? new FakeContainerSource(engine);
  const log = new CollectingLog();
  const events = new EventEmitter<ContainerPoolEventMap>();
  const emitted: WarmPoolHarness['emitted'] = [];
  for (const event of ['acquired', 'created', 'createFailed', 'executed', 'destroyed'] as const) {
    events.on(event, (payload: unknown) => emitted.push({ event, payload }));
  }
  const totals = emptyTotals();
  const intervals = new FakeIntervalHost();
  const opts = { ...DEFAULT_TEST_OPTIONS, ...options };
  const pool = new WarmPool(opts, {
    source,
    engine,
    log,
    events,
    totals,
    intervals,
    intervalName: `container-pool:${opts.name}:test`,
    capacity: parts.capacity,
  });
  const startExecution = (entry: { executions: Set<ActiveExecution> }) => {
    const e = new FakeExecution();
    entry.executions.add(e);
    pool.executionStarted();
    void e.done.then(() => {
      entry.executions.delete(e);
      pool.executionEnded();
    });
    return e;
  };
  const close = async (advance?: () => void) => {
    let done = false;
    const shutdown = pool.shutdown().finally(() => (done = true));
    for (let i = 0; !done; i++) {
      if (i > 1_000) throw new Error('the pool never finished shutting down');
      source.settleAll();
      advance?.();
      await flush(2);
    }
    await shutdown;
  };
  return {
    pool,
    source,
    engine,
    log,
    events,
    emitted,
    totals,
    intervals,
    options: opts,
    startExecution,
    close,
  };
}

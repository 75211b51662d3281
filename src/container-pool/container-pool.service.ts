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
import {
  CONTAINER_DRIVER,
  CONTAINER_POOL_INSTANCE_ID,
  CONTAINER_POOL_RESOLVED_OPTIONS,
} from './container-pool.constants';
import type { ContainerDriver, EngineInfo } from './engine/container-driver.interface';
import { EngineMonitor } from './engine/engine-monitor';
import type { ContainerPoolError } from './errors/container-pool.errors';
import type { ResolvedContainerPoolOptions } from './interfaces/container-pool-options.interface';
import type { Container, ContainerInfo, PoolStats } from './interfaces/container.interface';
import type { ContainerPoolEventMap } from './interfaces/events.interface';
import type { ExecResult } from './interfaces/exec-result.interface';
import type { AcquireOptions, RunRequest } from './interfaces/run-request.interface';
import { ContainerPool } from './profiles/container-pool';

export type { ContainerPoolEventMap } from './interfaces/events.interface';

/**
 * The warm pool, as other Nest modules inject it: keeps `size` hardened containers started, hands them out, runs
 * code in them and removes them. A facade over the module's ContainerPool; all engine access goes through the
 * ContainerDriver injected under CONTAINER_DRIVER, which this service (its owner) closes at shutdown.
 */
@Injectable()
export class ContainerPoolService implements OnModuleInit, OnApplicationShutdown {
  /** acquired / created / createFailed / executed / destroyed, for metrics. */
  readonly events = new EventEmitter<ContainerPoolEventMap>();
  private readonly log: Logger;
  private readonly monitor: EngineMonitor;
  private readonly pool: ContainerPool;
  private shutdownPromise?: Promise<void>;

  constructor(
    @Inject(CONTAINER_POOL_RESOLVED_OPTIONS) readonly options: ResolvedContainerPoolOptions,
    @Inject(CONTAINER_DRIVER) private readonly driver: ContainerDriver,
    /** Unique per process: labels this instance's containers so that siblings never touch them. */
    @Inject(CONTAINER_POOL_INSTANCE_ID) readonly instanceId: string,
    @Optional() scheduler?: SchedulerRegistry,
  ) {
    const log = (this.log = new Logger(`ContainerPool:${options.name}`));
    this.monitor = new EngineMonitor(driver, instanceId, log);
    this.pool = new ContainerPool({
      options,
      driver,
      monitor: this.monitor,
      instanceId,
      events: this.events,
      log,
      intervals: scheduler && {
        add: (name, timer) => scheduler.addInterval(name, timer),
        remove: (name) => scheduler.deleteInterval(name),
      },
    });
  }

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
    return this.pool.initialize();
  }

  /**
   * Stops accepting acquires, rejects waiters, lets running executions finish for up to `shutdownGraceMs`,
   * waits for creates in flight and removes every container of this instance; then closes the engine
   * connection. Safe to call twice.
   */
  shutdown(): Promise<void> {
    this.shutdownPromise ??= (async () => {
      const started = Date.now();
      await this.pool.shutdown();
      this.monitor.close();
      await this.driver.close();
      const { totals } = this.pool.stats();
      this.log.log(
        `shut down in ${Date.now() - started} ms (created ${totals.created}, destroyed ${totals.destroyed})`,
      );
    })();
    return this.shutdownPromise;
  }

  /**
   * Hands out a warm container, creating one when none is idle and the cap allows, else waiting in FIFO order
   * until `timeoutMs` (default acquireTimeoutMs) or the signal. Release it with release() or destroy().
   */
  acquire(opts?: AcquireOptions): Promise<Container> {
    return this.pool.acquire(opts);
  }

  /**
   * Gives a container back. Single-use pools (the default) remove it in the background; release never waits
   * for the removal. Releasing twice is harmless.
   */
  release(container: Container): void {
    this.pool.release(container);
  }

  /** acquire(), fn(container), release(), whatever fn does. */
  withContainer<T>(
    fn: (container: Container) => Promise<T> | T,
    opts?: AcquireOptions,
  ): Promise<T> {
    return this.pool.withContainer(fn, opts);
  }

  /**
   * Acquire, execute, release. Resolves for every outcome of the code (exit code, timeout, OOM, truncation);
   * rejects only with a ContainerPoolError.
   */
  run(request: RunRequest): Promise<ExecResult> {
    return this.pool.run(request);
  }

  /**
   * Tops up now (skipping any back-off and the wait for running executions) and resolves when the pool is full
   * or a create failed.
   */
  replenish(): Promise<PoolStats> {
    return this.pool.replenish();
  }

  /** Changes size and/or maxContainers at run time; shrinking removes idle surplus, never a leased container. */
  resize(change: { size?: number; maxContainers?: number }): PoolStats {
    return this.pool.resize(change);
  }

  /** Removes idle containers and stops refilling until resume(); waiters are rejected. */
  drain(): Promise<PoolStats> {
    return this.pool.drain();
  }

  resume(): PoolStats {
    return this.pool.resume();
  }

  /** This pool's containers, by state. */
  containers(): ContainerInfo[] {
    return this.pool.containers();
  }

  /** Finds one of this pool's containers by full id, unique id prefix (12+ hex) or name. */
  findContainer(ref: string): Container | undefined {
    return this.pool.findContainer(ref);
  }

  /** Why acquire() would fail right now (shutting down, drained, engine/image/sandbox unavailable), or null. */
  availabilityError(): ContainerPoolError | null {
    return this.pool.availabilityError();
  }

  /** Engine facts from the last successful check, or null. */
  engineInfo(): EngineInfo | null {
    return this.monitor.engine;
  }

  stats(): PoolStats {
    return this.pool.stats();
  }
}

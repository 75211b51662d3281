import { EventEmitter } from 'node:events';
import type { ContainerDriver, EngineInfo } from '../engine/container-driver.interface';
import { EngineMonitor } from '../engine/engine-monitor';
import { UnknownProfileError } from '../errors/container-pool.errors';
import type { ResolvedModuleOptions } from '../interfaces/container-pool-options.interface';
import type { Container } from '../interfaces/container.interface';
import { CONTAINER_POOL_EVENTS, ContainerPoolEventMap } from '../interfaces/events.interface';
import type { ProfileInfo } from '../interfaces/profile-info.interface';
import type { IntervalHost, PoolLog } from '../pool/container-source';
import { SharedCapacity } from '../pool/shared-capacity';
import { ContainerPool } from './container-pool';
import { SessionRegistry } from '../sessions/session-registry';

export interface PoolRegistryDeps {
  options: ResolvedModuleOptions;
  driver: ContainerDriver;
  instanceId: string;
  /** The logger of a profile (`ContainerPool:<pool>` or `ContainerPool:<pool>/<profile>`). */
  logFor(profile: string | null): PoolLog;
  intervals?: IntervalHost;
}

/**
 * The module's profiles: one ContainerPool each, on one driver and one engine monitor, sharing the module-wide
 * limits (maxContainersTotal, maxConcurrentCreates) when there are several. It owns the monitor and closes the
 * driver after every pool has shut down.
 */
export class PoolRegistry {
  /** Every profile's events, with its name (`profile`) in each payload. */
  readonly events = new EventEmitter<ContainerPoolEventMap>();
  readonly monitor: EngineMonitor;
  private readonly pools = new Map<string, ContainerPool>();
  /** The module's sessions, across its profiles. */
  readonly sessions: SessionRegistry;
  private readonly defaultName: string;
  private shutdownPromise?: Promise<void>;

  constructor(private readonly deps: PoolRegistryDeps) {
    const { options } = deps;
    const multi = options.profiles.length > 1 || options.profiles[0].profile !== options.name;
    this.monitor = new EngineMonitor(deps.driver, deps.instanceId, deps.logFor(null));
    // Shared limits with several profiles, and with one whose maxContainers is above the module's cap.
    const capacity =
      options.profiles.length > 1 || options.maxContainersTotal < options.profiles[0].maxContainers
        ? new SharedCapacity(options.maxContainersTotal, options.maxConcurrentCreates)
        : undefined;
    const held = new Set<string>();
    this.sessions = new SessionRegistry({
      maxSessions: options.maxSessions,
      maxSessionsPerOwner: options.maxSessionsPerOwner,
    });
    for (const profile of options.profiles) {
      const pool = new ContainerPool({
        options: profile,
        driver: deps.driver,
        monitor: this.monitor,
        instanceId: deps.instanceId,
        log: deps.logFor(multi ? profile.profile : null),
        intervals: deps.intervals,
        capacity,
        held,
        multiProfile: multi,
        sweeps: profile.profile === options.defaultProfile,
        sessions: this.sessions,
      });
      // The pool's payloads carry its profile already: forwarded as they are.
      for (const event of CONTAINER_POOL_EVENTS) {
        pool.events.on(event, (payload: object) =>
          (this.events.emit as (e: string, p: object) => boolean)(event, payload),
        );
      }
      this.pools.set(profile.profile, pool);
    }
    this.defaultName = options.defaultProfile;
  }

  /** The profile's pool; the default one without a name. Unknown names: UnknownProfileError. */
  pool(name?: string): ContainerPool {
    const pool = this.pools.get(name ?? this.defaultName);
    if (!pool) throw new UnknownProfileError(name!, this.names());
    return pool;
  }

  /** The pool holding this container, or undefined. */
  poolOf(container: Container): ContainerPool | undefined {
    for (const pool of this.pools.values()) if (pool.owns(container)) return pool;
    return undefined;
  }

  names(): string[] {
    return [...this.pools.keys()];
  }

  all(): ContainerPool[] {
    return [...this.pools.values()];
  }

  profiles(): ProfileInfo[] {
    return this.all().map((p) => p.info());
  }

  /**
   * Starts every profile; resolves once the default one is filled, rejects with its error when it cannot be
   * (another profile failing degrades only itself: it keeps retrying).
   */
  async initialize(): Promise<void> {
    for (const p of this.all()) p.initialize().catch(() => undefined);
    await this.pool().initialize();
  }

  /** Shuts every profile down (tarn.js's order each), then stops the event stream and closes the driver. */
  shutdown(): Promise<void> {
    this.shutdownPromise ??= (async () => {
      // Sessions first stop taking calls; their running calls get the pools' shutdown grace like any execution.
      const sessions = this.sessions.shutdown();
      await Promise.allSettled(this.all().map((p) => p.shutdown()));
      await sessions;
      this.monitor.close();
      await this.deps.driver.close();
    })();
    return this.shutdownPromise;
  }

  engineInfo(): EngineInfo | null {
    return this.monitor.engine;
  }
}

import type { EventEmitter } from 'node:events';
import { ContainerLostError } from '../errors/container-pool.errors';
import type { ContainerPoolEventMap } from '../interfaces/events.interface';
import type { ContainerSource, PoolLog } from './container-source';
import type { PoolState } from './pool-state';
import type { PooledContainer } from './pooled-container';

export interface RemovalDeps {
  state: PoolState;
  source: ContainerSource;
  log: PoolLog;
  events: EventEmitter<ContainerPoolEventMap>;
  /** A removal failed with this error (the engine may be down). */
  onFailure(err: unknown): void;
  /** A removal finished: a slot is free. */
  onRemoved(): void;
}

/** Removes containers, counting each until the engine is done, and tracks all the pool's engine work in flight. */
export class Removals {
  private readonly inFlight = new Set<Promise<unknown>>();

  constructor(private readonly deps: RemovalDeps) {}

  /** Follows `promise` until it settles (shutdown waits for everything tracked). */
  track<T>(promise: Promise<T>): Promise<T> {
    this.inFlight.add(promise);
    const forget = () => this.inFlight.delete(promise);
    promise.then(forget, forget);
    return promise;
  }

  /** Resolves once nothing tracked is in flight, including work started meanwhile. */
  async settle(): Promise<void> {
    while (this.inFlight.size) await Promise.allSettled([...this.inFlight]);
  }

  /**
   * Removes the container now; resolves when the engine has removed it. Its executions fail as lost.
   * `afterCurrentTask` issues the engine call after the current task (release() lets the caller continue first).
   */
  destroy(c: PooledContainer, reason = 'destroyed', afterCurrentTask = false): Promise<void> {
    if (c.removal) return c.removal;
    const { state, source, log } = this.deps;
    state.stock.startRemoval(c);
    for (const e of c.executions) {
      e.kill(new ContainerLostError(c.name, 'it was destroyed while an execution was running'));
    }
    const removed = afterCurrentTask
      ? new Promise<void>((r) => setImmediate(r)).then(() => source.remove(c.source))
      : source.remove(c.source);
    c.removal = this.track(
      removed
        .catch((err) => {
          log.warn(
            `removing ${c.name} failed: ${err instanceof Error ? err.message : err}; letting it go ` +
              `(its lifeline closes, so it exits and the engine removes it)`,
          );
          source.letGo(c.source);
          this.deps.onFailure(err);
        })
        .finally(() => {
          c.unwatch?.();
          state.stock.removed(c);
          state.totals.destroyed++;
          this.deps.events.emit('destroyed', { reason });
          this.deps.onRemoved();
        }),
    );
    return c.removal;
  }
}

import { AcquireTimeoutError } from '../errors/container-pool.errors';
import { PendingAcquire } from './pending-acquire';

/**
 * Callers waiting for a container, in FIFO order. Each waiter owns its timer and abort listener
 * (PendingAcquire); a waiter that gives up leaves the queue at once.
 */
export class WaitQueue<T> {
  private readonly waiters: PendingAcquire<T>[] = [];

  get length(): number {
    return this.waiters.length;
  }

  /** When each waiter started waiting (performance.now()), oldest first. */
  times(): number[] {
    return this.waiters.map((w) => w.enqueuedAt);
  }

  /**
   * Whether one more waiter would be too many: `maxWaiters` bounds the callers waiting at the cap, not those a
   * create (in flight or allowed by the cap: `servable`) will serve.
   */
  full(servable: number, maxWaiters: number): boolean {
    return this.waiters.length - servable >= maxWaiters;
  }

  /**
   * A new waiter. When its time runs out it is rejected with an AcquireTimeoutError saying `shortage()`, and
   * `onTimeout` is called; when its signal fires it is rejected with the abort error.
   */
  add(
    timeoutMs: number,
    signal: AbortSignal | undefined,
    shortage: () => string,
    onTimeout: () => void,
  ): Promise<T> {
    const pending = new PendingAcquire<T>(timeoutMs, signal, (p, err) => {
      this.remove(p);
      const error =
        err instanceof AcquireTimeoutError ? new AcquireTimeoutError(p.timeoutMs, shortage()) : err;
      if (p.reject(error) && error instanceof AcquireTimeoutError) onTimeout();
    });
    this.waiters.push(pending);
    return pending.promise;
  }

  /**
   * Serves waiters in order while `take()` yields a value; `give(value, waiter)` hands it over and returns false
   * when the waiter had already given up (the value is then the caller's again).
   */
  serve(take: () => T | undefined, give: (value: T, waiter: PendingAcquire<T>) => void): void {
    while (this.waiters.length) {
      const value = take();
      if (value === undefined) return;
      give(value, this.waiters.shift()!);
    }
  }

  rejectAll(error: Error): void {
    for (const w of this.waiters.splice(0)) w.reject(error);
  }

  private remove(p: PendingAcquire<T>): void {
    const i = this.waiters.indexOf(p);
    if (i >= 0) this.waiters.splice(i, 1);
  }
}

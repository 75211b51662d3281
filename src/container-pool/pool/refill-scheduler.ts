import type { IntervalHost } from './container-source';

/**
 * The pool's only timers, each calling back into one scheduling step (`pump`): the retry after a back-off, the
 * end of a top-up's wait for running executions, "after the current task", and the periodic tick. Every timer is
 * unref'd and `stop()` clears them all.
 */
export class RefillScheduler {
  private retryTimer?: NodeJS.Timeout;
  private retryAt = 0;
  private deferTimer?: NodeJS.Timeout;
  private soonQueued = false;
  private interval?: { name?: string; timer: NodeJS.Timeout };
  private stopped = false;

  constructor(
    private readonly pump: () => void,
    private readonly intervals?: IntervalHost,
  ) {}

  /** pump() after `delayMs` (the back-off); a retry already scheduled for later is brought forward. */
  retryIn(delayMs: number): void {
    if (this.stopped) return;
    const at = Date.now() + Math.max(0, delayMs);
    if (this.retryTimer) {
      if (at >= this.retryAt) return;
      clearTimeout(this.retryTimer);
    }
    this.retryAt = at;
    this.retryTimer = setTimeout(
      () => {
        this.retryTimer = undefined;
        this.pump();
      },
      Math.max(0, delayMs),
    );
    this.retryTimer.unref();
  }

  /** pump() after `delayMs` (a top-up waiting for executions), unless one is already scheduled. */
  deferFor(delayMs: number): void {
    if (this.deferTimer || this.stopped) return;
    this.deferTimer = setTimeout(() => {
      this.deferTimer = undefined;
      this.pump();
    }, delayMs);
    this.deferTimer.unref();
  }

  /** pump() after the current task: an acquire's caller starts its execution first. */
  soon(): void {
    if (this.soonQueued || this.stopped) return;
    this.soonQueued = true;
    setImmediate(() => {
      this.soonQueued = false;
      this.pump();
    });
  }

  /** Calls `tick` every `everyMs`, registered with the interval host under `name` when there is one. */
  startTicks(name: string, everyMs: number, tick: () => void): void {
    if (this.interval || this.stopped) return;
    const timer = setInterval(tick, everyMs);
    timer.unref();
    if (this.intervals) this.intervals.add(name, timer);
    this.interval = { name: this.intervals ? name : undefined, timer };
  }

  stop(): void {
    this.stopped = true;
    if (this.interval) {
      if (this.interval.name && this.intervals) {
        try {
          this.intervals.remove(this.interval.name);
        } catch {
          // Already gone (the registry is torn down with the app).
        }
      }
      clearInterval(this.interval.timer);
    }
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.deferTimer) clearTimeout(this.deferTimer);
  }
}

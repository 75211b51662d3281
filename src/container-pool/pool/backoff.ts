import { BACKOFF_INITIAL_MS, BACKOFF_MAX_MS } from '../container-pool.constants';
import {
  ContainerCreateError,
  ContainerPoolError,
  EngineUnavailableError,
  ImageUnavailableError,
  SandboxUnsupportedError,
} from '../errors/container-pool.errors';

/** Errors after which nothing can be created until the cause is fixed: acquires fail fast meanwhile. */
export function isPoolWide(err: unknown): boolean {
  return (
    err instanceof EngineUnavailableError ||
    err instanceof ImageUnavailableError ||
    err instanceof SandboxUnsupportedError
  );
}

/** Any error as a ContainerPoolError (an unexpected one becomes a ContainerCreateError). */
export function asPoolError(err: unknown): ContainerPoolError {
  if (err instanceof ContainerPoolError) return err;
  return new ContainerCreateError(err instanceof Error ? err.message : String(err), { cause: err });
}

/** The wait after the `streak`-th failure in a row: 250 ms doubling up to 30 s. */
export function backoffDelayMs(streak: number): number {
  return Math.min(BACKOFF_INITIAL_MS * 2 ** (streak - 1), BACKOFF_MAX_MS);
}

/** The pool's failure streak: how long refill waits, and why the pool cannot serve. */
export class Backoff {
  failureStreak = 0;
  /** No create starts before this (ms since the epoch). */
  until = 0;
  lastError: ContainerPoolError | null = null;
  /** Containers died right after their start: a create only counts as a success once one lives on. */
  earlyDeathSuspected = false;

  /** Records one more failure; returns the wait before the next try. */
  fail(error: ContainerPoolError, now = Date.now()): number {
    this.failureStreak++;
    this.lastError = error;
    const delay = backoffDelayMs(this.failureStreak);
    this.until = now + delay;
    return delay;
  }

  /** Ends the streak; returns how many failures it had. */
  succeed(): number {
    const streak = this.failureStreak;
    this.failureStreak = 0;
    this.until = 0;
    this.lastError = null;
    return streak;
  }

  /** Retry now, whatever the streak (replenish, resume, the engine answering again). */
  skip(): void {
    this.until = 0;
  }

  waiting(now = Date.now()): boolean {
    return now < this.until;
  }
}

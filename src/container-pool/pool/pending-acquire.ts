import { AcquireTimeoutError, ExecutionAbortedError } from '../errors/container-pool.errors';

/**
 * One caller waiting for a container (after tarn.js's PendingOperation): it owns its timer and its abort
 * listener and settles exactly once. The pool removes it from its queue through `onGiveUp`.
 */
export class PendingAcquire<T> {
  readonly promise: Promise<T>;
  readonly enqueuedAt = performance.now();
  private settled = false;
  private resolveFn!: (value: T) => void;
  private rejectFn!: (reason: Error) => void;
  private readonly timer: NodeJS.Timeout;
  private readonly onAbort?: () => void;

  constructor(
    readonly timeoutMs: number,
    private readonly signal: AbortSignal | undefined,
    onGiveUp: (pending: PendingAcquire<T>, error: Error) => void,
  ) {
    this.promise = new Promise<T>((resolve, reject) => {
      this.resolveFn = resolve;
      this.rejectFn = reject;
    });
    this.timer = setTimeout(() => onGiveUp(this, new AcquireTimeoutError(timeoutMs)), timeoutMs);
    if (signal) {
      this.onAbort = () =>
        onGiveUp(this, new ExecutionAbortedError('Waiting for a container', signal.reason));
      signal.addEventListener('abort', this.onAbort, { once: true });
    }
  }

  resolve(value: T): boolean {
    if (!this.finish()) return false;
    this.resolveFn(value);
    return true;
  }

  reject(error: Error): boolean {
    if (!this.finish()) return false;
    this.rejectFn(error);
    return true;
  }

  private finish(): boolean {
    if (this.settled) return false;
    this.settled = true;
    clearTimeout(this.timer);
    if (this.onAbort) this.signal?.removeEventListener('abort', this.onAbort);
    return true;
  }
}

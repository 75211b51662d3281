/**
 * The shutdown signals that arrive while the runnable service is still loading, before ServiceLifecycle listens
 * (loading Nest and the module takes a while): without a listener node would die of them at once, by the
 * signal, without a word. The service's entry points (src/main.ts, `container-pool serve`) call
 * catchEarlySignals() before they load anything else; ServiceLifecycle.listen() takes them over. No imports: it
 * must be cheap to load.
 */
export const SHUTDOWN_SIGNALS = ['SIGTERM', 'SIGINT', 'SIGHUP'] as const;

const caught: string[] = [];
const handlers = new Map<string, () => void>();

/** Records the shutdown signals from now on, until takeEarlySignals(). Idempotent. */
export function catchEarlySignals(signals: readonly string[] = SHUTDOWN_SIGNALS): void {
  for (const signal of signals) {
    if (handlers.has(signal)) continue;
    const handler = () => void caught.push(signal);
    handlers.set(signal, handler);
    process.on(signal, handler);
  }
}

/** Removes the early listeners; returns the signals they caught, in order of arrival. */
export function takeEarlySignals(): string[] {
  for (const [signal, handler] of handlers) process.removeListener(signal, handler);
  handlers.clear();
  return caught.splice(0);
}

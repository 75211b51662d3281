/** Deadline of the engine's quick calls (ping, info, version, list, inspect). */
export const ENGINE_CALL_TIMEOUT_MS = 15_000;

/** A removal the engine has not finished by then is reported as failed (the engine is hung). */
export const REMOVE_TIMEOUT_MS = 30_000;

/** `{ abortSignal }` for a quick engine call: the caller's signal, else the default deadline. */
export function deadline(signal?: AbortSignal): { abortSignal: AbortSignal } {
  return { abortSignal: signal ?? AbortSignal.timeout(ENGINE_CALL_TIMEOUT_MS) };
}

/** Docker's label filter syntax: `key=value`. */
export function labelFilters(labels: Record<string, string>): string[] {
  return Object.entries(labels).map(([k, v]) => `${k}=${v}`);
}

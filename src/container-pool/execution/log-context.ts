import { AsyncLocalStorage } from 'node:async_hooks';

/** Who asked for the executions of an async context, and whether their one log line was written. */
export interface ExecutionLogContext {
  /** `key=value` words for the line, e.g. `token=ab12cd34 cmd="python3"`. */
  words: string;
  /** Set by the executor once it logged the execution (its result or its failure). */
  logged: boolean;
}

/**
 * The context of the current execution's log line (the HTTP route sets the caller's token), so that one line
 * per execution says everything.
 */
export const executionLogContext = new AsyncLocalStorage<ExecutionLogContext>();

/** The words to add to an execution's log line, with a leading space, or ''; marks the line as written. */
export function logContextWords(): string {
  const ctx = executionLogContext.getStore();
  if (!ctx) return '';
  ctx.logged = true;
  return ctx.words ? ` ${ctx.words}` : '';
}

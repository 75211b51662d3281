import type { RunFile } from './files.interface';
import type { OnOutput } from './output-event.interface';

/** Options of one execution in a container. */
export interface ExecOptions {
  /** Written to the program's standard input, which is then closed (EOF). Default: empty. */
  stdin?: string | Buffer;
  /** Environment variables; the program sees only these plus PATH and HOME. */
  env?: Record<string, string>;
  /** Working directory; default the pool's work dir. */
  workdir?: string;
  /** Wall-clock timeout; default `execTimeoutMs`, at most `maxExecTimeoutMs`. */
  timeoutMs?: number;
  /** Per-stream output cap; default and maximum `maxOutputBytes`. */
  maxOutputBytes?: number;
  /** Aborting kills the execution (and its container) and rejects with ExecutionAbortedError. */
  signal?: AbortSignal;
  /**
   * Streams the kept output as it arrives (see OnOutput); the result still carries all of it. For `code`, the
   * bootstrap makes Python's stdout line-buffered; a `cmd` program decides its own buffering.
   */
  onOutput?: OnOutput;
}

/** Files in and out of one run (see README, Files). */
export interface RunFilesOptions {
  /** Written into the work dir (or /tmp) before the program starts; checked against maxFiles and the sizes. */
  files?: RunFile[];
  /**
   * Glob patterns relative to the work dir (`*`, `?`, `**`; dotfiles only when named): the matching regular
   * files are returned as `result.files` when the program exited by itself.
   */
  collect?: string[];
}

export interface CommandRunRequest extends ExecOptions, RunFilesOptions {
  /** argv of the program, run without a shell. */
  cmd: string[];
  code?: never;
  language?: never;
}

export interface CodeRunRequest extends ExecOptions, RunFilesOptions {
  /** Source code, run by the pool's interpreter; may be large (1 MiB and more). */
  code: string;
  language?: 'python';
  cmd?: never;
}

/** The request of ContainerPoolService.run(). */
export type RunRequest = CommandRunRequest | CodeRunRequest;

/** The request of stream(): run()'s, whose output comes as the iteration's events. */
export type StreamRequest = Omit<CommandRunRequest, 'onOutput'> | Omit<CodeRunRequest, 'onOutput'>;

export interface AcquireOptions {
  /** How long to wait for a container; default `acquireTimeoutMs`. */
  timeoutMs?: number;
  /**
   * Aborting gives up waiting: acquire() rejects with ExecutionAbortedError. A container already handed out stays
   * the caller's to release.
   */
  signal?: AbortSignal;
  /** The execution timeout the container must still have life for; default `execTimeoutMs`. */
  execTimeoutMs?: number;
}

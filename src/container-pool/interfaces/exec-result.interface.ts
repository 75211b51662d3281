import type { CollectedFile } from './files.interface';

/** The outcome of one execution. Resolved for every outcome of the user's code. */
export interface ExecResult {
  /** Exit code of the process; `null` when it was killed by the pool (timeout, abort) and none was reported. */
  exitCode: number | null;
  /** Captured stdout (up to the cap), decoded as UTF-8 (invalid sequences become U+FFFD). */
  stdout: string;
  /** Captured stderr (up to the cap), decoded as UTF-8. */
  stderr: string;
  /** The exact bytes of stdout that were kept. */
  stdoutBytes: Buffer;
  /** The exact bytes of stderr that were kept. */
  stderrBytes: Buffer;
  /** The wall-clock timeout fired; the container was killed. */
  timedOut: boolean;
  /** The kernel's OOM killer killed a process of this execution. */
  oomKilled: boolean;
  /** Some output was dropped because a stream passed `maxOutputBytes`: stdoutTruncated || stderrTruncated. */
  truncated: boolean;
  /** stdout passed `maxOutputBytes`; only its first bytes were kept. */
  stdoutTruncated: boolean;
  /** stderr passed `maxOutputBytes`. */
  stderrTruncated: boolean;
  /** Bytes the program wrote to stdout, counted beyond the cap. */
  stdoutTotalBytes: number;
  /** Bytes the program wrote to stderr, counted beyond the cap. */
  stderrTotalBytes: number;
  /** The profile that ran it (the module name without profiles). */
  profile: string;
  /**
   * How the program reached its container: `runner` (a job of the runner, the container's PID 1) or `exec` (one
   * `docker exec` per execution).
   */
  transport: 'exec' | 'runner';
  /** Time from the start of the execution to its result, in ms. */
  durationMs: number;
  /** Time spent waiting for a container before the execution started, in ms (0 for Container.execute()). */
  queuedMs: number;
  containerId: string;
  executionId: string;
  /**
   * With `collect`: the matching files, sorted by path (a file above maxFileBytes, or unreadable, with
   * `truncated` and no content). Absent without `collect`.
   */
  files?: CollectedFile[];
  /** With `collect`: collecting stopped at maxFiles or maxFilesTotalBytes (more files matched). */
  filesTruncated?: boolean;
}

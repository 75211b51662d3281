import type { Writable } from 'node:stream';
import type { DriverContainer, MainProcess } from '../engine/container-driver.interface';

export type { MainProcess } from '../engine/container-driver.interface';

/** One program to run, as the transport receives it. */
export interface TransportJob {
  cmd: string[];
  /** `uid:gid` it runs as: the sandbox user. */
  user: string;
  /** `KEY=value` entries, beyond the container's PATH and HOME. */
  env: string[];
  workdir: string;
  /** Written to its stdin, then EOF. */
  stdin: Buffer | null;
}

export interface CodeJobOptions {
  /** The caller streams the output: the program's stdout is line-buffered (flushed at each newline). */
  lineBuffered?: boolean;
}

/**
 * Where the program's output goes: the caller's capped sinks. A transport honours their backpressure (it stops
 * reading while `write()` returned false, until `drain`).
 */
export interface OutputSinks {
  stdout: Writable;
  stderr: Writable;
}

export interface TransportOutcome {
  /** null when aborted. */
  exitCode: number | null;
  aborted: boolean;
}

/** What the executor knows about a container while it asks whether an execution was OOM-killed. */
export interface OomEvidence {
  /** OOM kills the engine reported for the container so far. */
  readonly oomEvents: number;
  readonly lostReason: string | null;
  /** The cgroup counter value already reported, so a reused container reports each kill once. */
  oomKillsReported: number;
  /** Resolves on the next news about the container (an event, its death) or after `ms`. */
  waitForNews(ms: number): Promise<void>;
}

/** How a program reaches a container and comes back: today `docker exec`; later a runner inside it. */
export interface Transport {
  readonly name: 'exec';
  /** The main process of a container of this transport that must be gone by `deadline` whatever happens. */
  mainProcess(deadline: Date): MainProcess;
  /** The program that runs `code` (Python source): argv plus what goes ahead of the caller's stdin. */
  codeJob(
    code: Buffer,
    pythonCommand: string[],
    opts?: CodeJobOptions,
  ): { cmd: string[]; stdinPrefix: Buffer };
  /** Runs one job; resolves with its exit code, or aborted when the signal fired (the caller kills the container). */
  run(
    container: DriverContainer,
    job: TransportJob,
    sinks: OutputSinks,
    signal: AbortSignal,
  ): Promise<TransportOutcome>;
  /** After the job died of SIGKILL: was it the OOM killer? Rejects when the container is gone and cannot tell. */
  wasOomKilled(
    container: DriverContainer,
    evidence: OomEvidence,
    oomEventsBefore: number,
  ): Promise<boolean>;
}

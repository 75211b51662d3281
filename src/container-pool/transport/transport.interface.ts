import type { Writable } from 'node:stream';
import type { DriverContainer, MainProcess } from '../engine/container-driver.interface';

export type { MainProcess } from '../engine/container-driver.interface';

/** One program to run, as the transport receives it: `cmd` (argv), or `code` (Python source). */
export interface TransportJob {
  cmd?: string[];
  /** Python source run as `python3 -c` would run it (the transport frames it; `cmd` is unset then). */
  code?: Buffer;
  /** The caller streams the output: the code's stdout is line-buffered (flushed at each newline). */
  lineBuffered?: boolean;
  /** `uid:gid` it runs as: the sandbox user. */
  user: string;
  /** `KEY=value` entries, beyond the container's PATH and HOME. */
  env: string[];
  workdir: string;
  /** Written to its stdin, then EOF. */
  stdin: Buffer | null;
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
  /** Runner only: the memory cgroup's OOM kill counter after the job, and before it (null: unknown). */
  oomKills?: number | null;
  oomKillsBefore?: number | null;
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
export type TransportName = 'exec' | 'runner';

export interface Transport {
  readonly name: TransportName;
  /** What identifies the transport's containers (its name, and the runner's version): part of a generation. */
  readonly identity: string;
  /** The main process of a container of this transport that must be gone by `deadline` whatever happens. */
  mainProcess(deadline: Date): MainProcess;
  /** The transport that created this container, when one profile has several (auto): results name it. */
  nameOf?(container: DriverContainer): TransportName;
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
    outcome?: TransportOutcome,
  ): Promise<boolean>;
}

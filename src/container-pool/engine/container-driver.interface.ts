import type { Readable, Writable } from 'node:stream';
import type { PullPolicy } from '../interfaces/container-pool-options.interface';

/** What the engine says about itself. */
export interface EngineInfo {
  /** e.g. `Docker Engine 20.10.24`. */
  name: string;
  /** Where the engine was reached, e.g. `unix:///var/run/docker.sock`. */
  endpoint: string;
  version: string;
  apiVersion: string;
  os: string;
  /** The engine applies a seccomp profile to containers. */
  seccomp: boolean;
  runtimes: string[];
  defaultRuntime: string;
}

/** What a pool requires of the engine before it serves (see ContainerDriver.verifySandbox). */
export interface SandboxRequirements {
  /** A syscall filter must apply: the engine's default profile (no custom one is given). */
  seccomp: boolean;
  /** An OCI runtime that must be registered, e.g. `runsc`. */
  runtime?: string;
}

export interface TmpfsSpec {
  path: string;
  sizeBytes: number;
  /** Octal mode, e.g. `1777`. */
  mode: string;
  exec: boolean;
  /** Owner `uid:gid`; root when unset. */
  owner?: string;
}

/**
 * Everything that shapes one sandbox container, independent of the engine. The main-process fields (`command`,
 * `init`, `mainUser`, `capAdd`, `ready`) are the transport's decision; the rest comes from the pool's options.
 */
export interface ContainerSpec {
  name: string;
  image: string;
  labels: Record<string, string>;
  /** `uid:gid` of every execution: the sandbox user. */
  user: string;
  workdir: string;
  /** `KEY=value` entries; only these are set. */
  env: string[];
  memoryBytes: number;
  nanoCpus: number;
  pidsLimit: number;
  nofileLimit: number;
  fileSizeLimitBytes: number;
  tmpfs: TmpfsSpec[];
  shmSizeBytes: number;
  runtime?: string;
  seccompProfile?: string;
  /**
   * The container's hard lifetime (containerLifetimeMs), counted from its creation. The Docker driver does not
   * read it: the main process (the transport's lifeline) enforces the absolute deadline of the `expires-at`
   * label inside the container. A backend that can enforce a lifetime itself (Kubernetes'
   * activeDeadlineSeconds) should set it from this as well.
   */
  lifetimeMs: number;
  /** argv of the container's main process. */
  command: string[];
  /** Whether the engine's init wraps the main process as PID 1 (it reaps orphans). */
  init: boolean;
  /** `uid:gid` of the main process. */
  mainUser: string;
  /** Capabilities of the main process (everything else is dropped). */
  capAdd: string[];
  /**
   * The transport talks to the main process: the created container's `channel` carries its input, output and
   * stderr, over its attached stdio or, when the driver offers one and the main process takes it, a direct
   * channel (docs/runner-protocol.md, Direct channel). Otherwise the attached stdio is the lifeline only and its
   * output is dropped.
   */
  channel?: boolean;
  /**
   * Resolves once the container can take work (after its start); creating the container resolves only then,
   * and a rejection is a failed create (the container is removed).
   */
  ready(container: DriverContainer, signal?: AbortSignal): Promise<void>;
  /**
   * Called by the driver once the engine has started the container: the engine's own part of the create is
   * done, whatever the driver still waits for (its main process connecting its channel, `ready`).
   */
  started?(): void;
}

/** The main-process part of a ContainerSpec: what a transport decides about the container it runs in. */
export type MainProcess = Pick<
  ContainerSpec,
  'command' | 'init' | 'mainUser' | 'capAdd' | 'ready' | 'channel'
> & {
  /**
   * `ready` takes the main process's own start (the runner's imports, zygote and hello: 100 ms and more), not
   * the engine's: while it waits, the create holds no create slot (maxConcurrentCreates bounds the engine's work).
   */
  slowReady?: boolean;
};

/**
 * The channel of a container's main process (ContainerSpec.channel): its attached stdio, or `stdin` and `stdout`
 * one direct socket it connected to (`direct`) with `stderr` still the attached one. `stdout` and `stderr` honour
 * backpressure (pausing `stdout` pauses the connection, so the container blocks on its writes) and end when the
 * main process's side does.
 */
export interface ContainerChannel {
  stdin: Writable;
  stdout: Readable;
  stderr: Readable;
  /** The main process connected to the driver's direct channel (no engine copy on the way). */
  direct?: boolean;
}

/** A started container held by this process. */
export interface DriverContainer {
  id: string;
  name: string;
  /** Engine-specific handle (a dockerode Container for the Docker driver). */
  handle: unknown;
  /**
   * Settles (never rejects) when the container's lifeline ends: it stopped, was removed, or the connection to the
   * engine broke. The container is no longer usable after that. The string says why.
   */
  exited: Promise<string>;
  /** `uid:gid` of the sandbox user: every exec of the driver's own (e.g. the OOM counter) runs as it. */
  execUser: string;
  /** The main process's stdio, when its spec asked for a channel. */
  channel?: ContainerChannel;
  /** Lets go of the container's lifeline, so that it exits by itself (used when a removal failed). */
  detach?(): void;
}

export interface DriverExecRequest {
  cmd: string[];
  /** `uid:gid` the program runs as (the sandbox user; never the container's main user). */
  user: string;
  env: string[];
  workdir: string;
  stdin: Buffer | null;
  /** Where the program's stdout goes; the caller caps it (its writes must complete synchronously). */
  stdout: Writable;
  /** Where the program's stderr goes. */
  stderr: Writable;
  /** Aborting stops reading at once; the caller kills the container. */
  signal: AbortSignal;
}

export interface DriverExecResult {
  /** null when aborted. */
  exitCode: number | null;
  aborted: boolean;
}

export type EngineEventType = 'oom' | 'die' | 'destroy';

export interface EngineEvent {
  type: EngineEventType;
  containerId: string;
  /** ms since the epoch, as the engine stamped it. */
  timeMs: number;
}

export interface EngineEventHandlers {
  onEvent(event: EngineEvent): void;
  /** The event stream (re)connected or broke. */
  onStatus(connected: boolean, error?: Error): void;
}

export interface EventSubscription {
  close(): void;
}

/** A container's state as the pool needs it, whatever the engine calls it. */
export type ListedState = 'running' | 'created' | 'stopped' | 'other';

export interface ListedContainer {
  id: string;
  name: string;
  state: ListedState;
  /** The engine's own word for the state (for logs), e.g. `exited`. */
  engineState: string;
  labels: Record<string, string>;
  createdAt: Date;
}

/**
 * The one seam between the pool and a container engine. The Docker implementation is DockerDriver; tests
 * substitute a fake behind the CONTAINER_DRIVER token. Errors are the pool's typed errors
 * (EngineUnavailableError, ImageUnavailableError, ContainerLostError, ContainerCreateError, ...).
 */
export interface ContainerDriver {
  /**
   * The driver can give a container's main process a channel (ContainerSpec.channel): the runner transport
   * needs one. Without it, transport `auto` is exec.
   */
  readonly channels?: boolean;
  /** Pings the engine and describes it. */
  info(): Promise<EngineInfo>;
  /** Throws SandboxUnsupportedError (saying how to fix the engine) when it lacks a required control. */
  verifySandbox(info: EngineInfo, needs: SandboxRequirements): void;
  /**
   * Makes sure the image is present according to the policy, following a pull to its end. Resolves with the
   * engine's id of the image when it knows it.
   */
  ensureImage(
    image: string,
    policy: PullPolicy,
    log: (message: string) => void,
  ): Promise<string | undefined | void>;
  /** Creates, attaches the lifeline of, starts and awaits `spec.ready`. Aborting gives up and removes it. */
  createContainer(spec: ContainerSpec, signal?: AbortSignal): Promise<DriverContainer>;
  /** Runs one command in a running container. */
  exec(container: DriverContainer, request: DriverExecRequest): Promise<DriverExecResult>;
  /**
   * How many processes the kernel's OOM killer has killed in the container so far (its memory cgroup's
   * counter), or null when the engine cannot tell. Used when an exec was SIGKILLed and no `oom` event came.
   */
  oomKillCount?(container: DriverContainer): Promise<number | null>;
  /** Kills and removes a container; a container already gone counts as removed. */
  removeContainer(idOrName: string): Promise<void>;
  /** Containers (any state) carrying all these labels. */
  listContainers(labels: Record<string, string>): Promise<ListedContainer[]>;
  /** Follows the engine's container events for containers with these labels, reconnecting by itself. */
  watchEvents(labels: Record<string, string>, handlers: EngineEventHandlers): EventSubscription;
  /**
   * Follows the engine's image events that may give a name another image (a tag, an import, a load, a pull),
   * reconnecting by itself; `image` is the name the event is about. Optional: without it, a re-tag is noticed by
   * the scheduled check only.
   */
  watchImageEvents?(onEvent: (event: { action: string; image: string }) => void): EventSubscription;
  /** Releases connections. Called by the driver's owner (the module), never by a pool. */
  close(): Promise<void>;
}

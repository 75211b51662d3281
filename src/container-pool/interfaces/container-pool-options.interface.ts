import type { DockerConnectionOptions } from '../engine/docker/docker.types';
import type { RolloutStrategy } from './rollout.interface';

/** The `transport` setting. */
export type TransportSetting = 'auto' | 'runner' | 'exec';

export type PullPolicy = 'if-not-present' | 'always' | 'never';

/** A byte count: a number, or a string with a unit such as `'256m'`, `'64MiB'`, `'1g'`. */
export type ByteSize = number | string;

/** Whether (and under which prefix) the module reads its settings from the environment. */
export type ReadEnvOption = boolean | { prefix?: string };

/**
 * Options of ContainerPoolModule.forRoot()/forRootAsync(). Every field is optional: explicit options win over the
 * `POOL_*` environment settings, which win over the defaults (see `.env.example`).
 */
export interface ContainerPoolModuleOptions {
  /**
   * Name of the module's pool; containers are labelled with it (`io.container-pool.pool`), and the start-up sweep
   * of leftovers goes by it. Without `profiles` it is also the name of the one profile. Default `default`.
   * (`POOL_NAME`)
   */
  name?: string;
  /**
   * Named warm pools in one module: `{ python: { image, size, ... }, shell: { ... } }` (names
   * `^[a-z][a-z0-9-]{0,30}$`). Every option but the module-level ones (the engine connection, tokens, HTTP,
   * `maxContainersTotal`, `maxConcurrentCreates`, `replenishIntervalMs`, `shutdownGraceMs`, `requireSeccomp`)
   * may be set per profile and falls back to the top-level value. (`POOL_PROFILES=python,shell`, then
   * `POOL_PROFILE__PYTHON__IMAGE`, ...)
   */
  profiles?: Record<string, ProfileOptions>;
  /** The profile of run()/acquire() without one. Required with several profiles. (`POOL_DEFAULT_PROFILE`) */
  defaultProfile?: string;
  /**
   * Cap on the containers of all profiles together; `sum(size)` must fit. Default: the sum of the profiles'
   * maxContainers. A freed slot goes first to a profile below its size, then to waiters in FIFO order across
   * profiles; a profile never holds more than `maxContainersTotal - sum(other profiles' size)`.
   * (`POOL_MAX_CONTAINERS_TOTAL`)
   */
  maxContainersTotal?: number;
  /** Sandbox image. Default `python:3.13-slim`. (`POOL_IMAGE`) */
  image?: string;
  /** Pull policy of the image. Default `if-not-present`. (`POOL_PULL_POLICY`) */
  pullPolicy?: PullPolicy;
  /** Interpreter used for `run({ code })`. Default `['python3']`. (`POOL_PYTHON_COMMAND`, space separated) */
  pythonCommand?: string[];
  /**
   * How executions reach a container. `runner`: a small Python program shipped by the project is the
   * container's PID 1 and runs each job in a forked child over the attached stdio (milliseconds; needs Python >= 3.8
   * in the image at `pythonCommand`). `exec`: one engine exec per execution (any image with `sh`). `auto`: the
   * runner when the image has it (probed once per image id), else exec. Default `auto`. (`POOL_TRANSPORT`)
   */
  transport?: TransportSetting;
  /**
   * Python modules the runner imports once per container, before the container is handed out (in the process
   * every job and session interpreter is forked from), e.g. `['numpy', 'pandas', 'matplotlib.pyplot']`: the
   * first call does not pay for them. At most 32 dotted names of at most 128 characters; a module that fails to
   * import is skipped (the runner's diagnostic is logged). With them the runner also sets single-threaded BLAS
   * and matplotlib defaults (docs/runner-protocol.md). Needs the runner: with `transport: 'exec'` it is a
   * configuration error, and with `auto` an image that cannot run the runner fails the profile's preparation
   * instead of falling back to exec. A change makes a new generation. Default none.
   * (`POOL_PRELOAD_MODULES`, comma or space separated)
   */
  preloadModules?: string[];

  /** Idle containers kept warm. Default 2; may be 0. (`POOL_SIZE`) */
  size?: number;
  /** Cap on every container the pool has, from create call until removal finished. Default 10. */
  maxContainers?: number;
  /** Most acquires allowed to wait at the cap; one more is rejected at once. Default 100. */
  maxWaiters?: number;
  /** Most container creations in flight. Default 2. */
  maxConcurrentCreates?: number;
  /** How long acquire() waits for a container. Default 30 000. */
  acquireTimeoutMs?: number;
  /** Interval of the scheduled top-up and recycling task. Default 5 000. */
  replenishIntervalMs?: number;
  /** Destroy containers on release (untrusted code may have tainted them). Default true. */
  singleUse?: boolean;
  /**
   * Strategy of an update() that names none, and of the rollout of an image re-tagged on the engine. Default
   * `onReplenish`. (`POOL_UPDATE_STRATEGY`)
   */
  updateStrategy?: RolloutStrategy;
  /** With the `rolling` strategy: new containers warmed beyond the idle target at once. Default 1. */
  maxSurge?: number;
  /** A rollout not complete after this long is failed and the profile reverts. Default 600 000. */
  progressDeadlineMs?: number;

  /** Default wall-clock timeout of one execution. Default 30 000. */
  execTimeoutMs?: number;
  /** Largest timeout a caller may ask for. Default 300 000. */
  maxExecTimeoutMs?: number;
  /**
   * Per-stream output cap; output beyond it is read and discarded (`truncated`). Also the cap on the bytes of a
   * session call's rich outputs in all (`outputsTruncated`). Default 1 MiB.
   */
  maxOutputBytes?: ByteSize;
  /**
   * Most rich outputs of one session call (`CodeResult.outputs`: display() calls, the trailing expression,
   * matplotlib figures); beyond, `outputsTruncated`. 0..1024; 0 turns rich outputs off. Default 32.
   * (`POOL_MAX_OUTPUTS`)
   */
  maxOutputs?: number;
  /** Largest stdin (plus code) accepted by one execution. Default 16 MiB. */
  maxStdinBytes?: ByteSize;
  /** Most files of one run: `files` given, and files collected (`filesTruncated` beyond). Default 100. */
  maxFiles?: number;
  /**
   * Largest file written (`files`, `container.files.write`), read (`read`'s default `maxBytes`) or collected (a
   * bigger one is listed with `truncated` and no content). Default 16 MiB.
   */
  maxFileBytes?: ByteSize;
  /** Largest total of the files given to one run, and of the files collected from it. Default 64 MiB. */
  maxFilesTotalBytes?: ByteSize;
  /** A container never lives longer than this, whatever happens to its owner. Default 1 800 000 (30 min). */
  containerLifetimeMs?: number;
  /** How long shutdown() lets running executions finish before killing them. Default 10 000. */
  shutdownGraceMs?: number;
  /** Deadline of one create+start on the engine. Default 60 000. */
  createTimeoutMs?: number;

  /** Container user, `uid:gid`, never root. Default `65534:65534`. */
  user?: string;
  /** Working directory and HOME, a tmpfs. Default `/workspace`. */
  workdir?: string;
  /** Memory limit (swap is disabled: MemorySwap = Memory). Default 256 MiB. */
  memoryBytes?: ByteSize;
  /** CPU limit in units of 1e-9 CPUs. Default 1e9 (one CPU). */
  nanoCpus?: number;
  /** Process limit of the container. Default 128. */
  pidsLimit?: number;
  /** Open files limit (RLIMIT_NOFILE). Default 256. */
  nofileLimit?: number;
  /** Largest file a process may write (RLIMIT_FSIZE). Default 128 MiB (above the tmpfs sizes, so a full disk is ENOSPC). */
  fileSizeLimitBytes?: ByteSize;
  /** Size of the /tmp tmpfs. Default 64 MiB. */
  tmpSizeBytes?: ByteSize;
  /** Size of the work dir tmpfs. Default 64 MiB. */
  workdirSizeBytes?: ByteSize;
  /** Size of /dev/shm. Default 16 MiB. */
  shmSizeBytes?: ByteSize;
  /** OCI runtime, e.g. `runsc` when gVisor is registered with the engine. Default: the engine's default. */
  runtime?: string;
  /** Custom seccomp profile as JSON text. Default: the engine's default profile. */
  seccompProfile?: string;
  /** Refuse to serve when the engine reports no seccomp support. Default true. */
  requireSeccomp?: boolean;
  /**
   * Runner transport: the runner's frames go over a Unix socket bind-mounted (read-only, per container) into its
   * container instead of the engine's attach stream, which saves the engine's two copies each way (about 0.4 ms
   * per round trip here). Only with an engine on a local Unix socket; a runner that cannot connect (a remote or
   * VM engine, gVisor) falls back to the attach stream, and the pool stops offering it. Default true.
   */
  directChannel?: boolean;

  /** Open sessions of all profiles together; 0 turns sessions off. Default 16. */
  maxSessions?: number;
  /** Open sessions of one owner (over HTTP: one token). Default 4. */
  maxSessionsPerOwner?: number;
  /** A session without a call (or file operation) for this long is closed (its container removed). Default 120 000. */
  sessionIdleTimeoutMs?: number;
  /**
   * Longest a session may live (openSession's `maxLifetimeMs` default and maximum). Default maxExecTimeoutMs,
   * which every container handed out has left; above it, idle containers are handed out only while they have
   * this much life left (they are recycled earlier). Must fit in containerLifetimeMs.
   */
  sessionMaxLifetimeMs?: number;
  /** Calls of one session queued behind the running one; one more is SessionBusyError. Default 16. */
  maxQueuedCalls?: number;
  /** Timeout ladder of a session call: from the KeyboardInterrupt to killing its processes. Default 2 000. */
  interruptGraceMs?: number;
  /** Timeout ladder: from the kill to recycling the container (SessionLostError). Default 2 000. */
  killGraceMs?: number;

  /**
   * Bearer token(s) of the admin scope: every route. Several may be configured so that they can be rotated.
   * Each must be at least 16 characters. Default none: with no token of any scope, every route of the module
   * answers 403 until one is set. (`POOL_ADMIN_TOKEN`, comma separated)
   */
  adminToken?: string | string[];
  /** Bearer token(s) of the exec scope: the execution routes only. (`POOL_EXEC_TOKEN`, comma separated) */
  execToken?: string | string[];
  /**
   * Bearer token(s) of the read scope: the GET routes (stats, containers) and /metrics.
   * (`POOL_READ_TOKEN`, comma separated)
   */
  readToken?: string | string[];
  /** Serve /metrics without a bearer token. Default false. (`POOL_METRICS_PUBLIC`) */
  metricsPublic?: boolean;
  /** Largest request body the pool's HTTP routes accept (code plus stdin, as JSON). Default 24 MiB. */
  maxBodyBytes?: ByteSize;

  /**
   * Read `POOL_*` settings from the environment (explicit options still win). Default false: a library host
   * decides; the runnable service turns it on. `{ prefix: 'SANDBOX_' }` reads `SANDBOX_SIZE`, ... instead.
   * Unknown `<prefix>*` variables are a warning naming the closest setting.
   */
  readEnv?: ReadEnvOption;

  /** Engine connection; default as the Docker CLI: `DOCKER_HOST`, `DOCKER_TLS_VERIFY`, `DOCKER_CERT_PATH`. */
  docker?: DockerConnectionOptions;
}

type ByteKeys =
  | 'maxOutputBytes'
  | 'maxStdinBytes'
  | 'maxFileBytes'
  | 'maxFilesTotalBytes'
  | 'memoryBytes'
  | 'fileSizeLimitBytes'
  | 'tmpSizeBytes'
  | 'workdirSizeBytes'
  | 'shmSizeBytes'
  | 'maxBodyBytes';

/** The options a profile may set for itself (everything but the module-level ones). */
export type ProfileOptions = Omit<
  ContainerPoolModuleOptions,
  | 'name'
  | 'profiles'
  | 'defaultProfile'
  | 'maxContainersTotal'
  | 'maxConcurrentCreates'
  | 'replenishIntervalMs'
  | 'shutdownGraceMs'
  | 'requireSeccomp'
  | 'directChannel'
  | 'adminToken'
  | 'execToken'
  | 'readToken'
  | 'metricsPublic'
  | 'maxBodyBytes'
  | 'maxSessions'
  | 'maxSessionsPerOwner'
  | 'readEnv'
  | 'docker'
>;

/** The options after merging and validation: what one profile runs with (module-level values included). */
export interface ResolvedContainerPoolOptions extends Required<
  Omit<
    ContainerPoolModuleOptions,
    | 'runtime'
    | 'seccompProfile'
    | 'docker'
    | 'adminToken'
    | 'execToken'
    | 'readToken'
    | 'readEnv'
    | 'profiles'
    | 'defaultProfile'
    | 'maxContainersTotal'
    | ByteKeys
  >
> {
  /** The profile these options are of (the module name without profiles). */
  profile: string;
  defaultProfile: string;
  maxContainersTotal: number;
  /** The tokens of each scope, possibly none. */
  adminToken: string[];
  execToken: string[];
  readToken: string[];
  maxOutputBytes: number;
  maxStdinBytes: number;
  maxFileBytes: number;
  maxFilesTotalBytes: number;
  memoryBytes: number;
  fileSizeLimitBytes: number;
  tmpSizeBytes: number;
  workdirSizeBytes: number;
  shmSizeBytes: number;
  maxBodyBytes: number;
  runtime?: string;
  seccompProfile?: string;
  docker?: DockerConnectionOptions;
}

/** The module's resolved options: the default profile's (for compatibility), and every profile's. */
export interface ResolvedModuleOptions extends ResolvedContainerPoolOptions {
  profiles: ResolvedContainerPoolOptions[];
}

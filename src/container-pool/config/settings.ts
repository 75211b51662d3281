import type {
  ContainerPoolModuleOptions,
  PullPolicy,
  ResolvedContainerPoolOptions,
  TransportSetting,
} from '../interfaces/container-pool-options.interface';

export const MiB = 1024 * 1024;
export const PULL_POLICIES: readonly PullPolicy[] = ['if-not-present', 'always', 'never'];
export const TRANSPORTS: readonly TransportSetting[] = ['auto', 'runner', 'exec'];

export type Kind =
  'int' | 'bytes' | 'bool' | 'string' | 'pullPolicy' | 'transport' | 'argv' | 'tokens' | 'modules';

/** A Python module name as `preloadModules` takes it (dotted, at most MAX_MODULE_NAME characters). */
export const MODULE_NAME = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/;
export const MAX_MODULE_NAME = 128;
export const MAX_PRELOAD_MODULES = 32;
/** The most rich outputs of one call a profile may allow (the runner's bound). */
export const MAX_OUTPUTS_LIMIT = 1024;
type SettingKey = Exclude<keyof ContainerPoolModuleOptions, 'docker' | 'readEnv' | 'profiles'>;

export interface Setting {
  kind: Kind;
  min?: number;
  max?: number;
  description: string;
  /** Set for the module as a whole (the engine, HTTP, the shared limits); never per profile. */
  module?: true;
}

/** Every setting, its kind, lower bound and one-line description. Defaults live in DEFAULT_OPTIONS. */
export const SETTINGS: Record<SettingKey, Setting> = {
  name: {
    module: true,
    kind: 'string',
    description:
      'module name: the pool label of its containers (and the profile name without profiles)',
  },
  defaultProfile: {
    module: true,
    kind: 'string',
    description: 'profile of run()/acquire() without one; required with several profiles',
  },
  maxContainersTotal: {
    module: true,
    kind: 'int',
    min: 1,
    description:
      'cap on the containers of all profiles together (default: the sum of maxContainers)',
  },
  image: { kind: 'string', description: 'sandbox image' },
  pullPolicy: { kind: 'pullPolicy', description: 'if-not-present | always | never' },
  pythonCommand: { kind: 'argv', description: 'interpreter for run({ code }), space separated' },
  transport: {
    kind: 'transport',
    description:
      'auto | runner | exec: how executions reach a container (auto: runner when Python >= 3.8)',
  },
  preloadModules: {
    kind: 'modules',
    description:
      'Python modules the runner imports before a container is handed out, comma or space separated ' +
      '(runner transport only)',
  },
  size: { kind: 'int', min: 0, description: 'idle containers kept warm' },
  maxContainers: { kind: 'int', min: 1, description: 'cap on all containers of the pool' },
  maxWaiters: { kind: 'int', min: 0, description: 'acquires allowed to wait at the cap' },
  maxConcurrentCreates: {
    module: true,
    kind: 'int',
    min: 1,
    description: 'container creations in flight',
  },
  acquireTimeoutMs: { kind: 'int', min: 1, description: 'how long acquire() waits' },
  replenishIntervalMs: {
    module: true,
    kind: 'int',
    min: 100,
    description: 'interval of the top-up task',
  },
  singleUse: { kind: 'bool', description: 'destroy containers on release' },
  updateStrategy: {
    kind: 'string',
    description: 'rollout strategy by default: recreate | onReplenish | rolling',
  },
  maxSurge: { kind: 'int', min: 1, description: 'rolling rollouts: containers warmed beyond size' },
  progressDeadlineMs: {
    kind: 'int',
    min: 1000,
    description: 'a rollout not complete after this long fails and reverts',
  },
  execTimeoutMs: { kind: 'int', min: 1, description: 'default execution timeout' },
  maxExecTimeoutMs: {
    kind: 'int',
    min: 1,
    description: 'largest execution timeout a caller may ask',
  },
  maxOutputBytes: {
    kind: 'bytes',
    min: 1,
    description: 'per-stream output cap (and the cap on the rich outputs of a session call)',
  },
  maxOutputs: {
    kind: 'int',
    min: 0,
    max: MAX_OUTPUTS_LIMIT,
    description: 'most rich outputs (display, a result, figures) of one session call (0: none)',
  },
  maxStdinBytes: { kind: 'bytes', min: 0, description: 'largest stdin plus code of one execution' },
  maxFiles: {
    kind: 'int',
    min: 1,
    description: 'most files of one run (files given, files collected)',
  },
  maxFileBytes: { kind: 'bytes', min: 1, description: 'largest file written, read or collected' },
  maxFilesTotalBytes: {
    kind: 'bytes',
    min: 1,
    description: 'largest total of the files given to or collected from one run',
  },
  containerLifetimeMs: { kind: 'int', min: 1000, description: 'hard limit on a container life' },
  shutdownGraceMs: {
    module: true,
    kind: 'int',
    min: 0,
    description: 'time executions get to finish at shutdown',
  },
  createTimeoutMs: { kind: 'int', min: 1000, description: 'deadline of one create+start' },
  user: { kind: 'string', description: 'container user uid:gid, never root' },
  workdir: { kind: 'string', description: 'work dir and HOME (tmpfs)' },
  memoryBytes: { kind: 'bytes', min: 6 * MiB, description: 'memory limit, swap disabled' },
  nanoCpus: { kind: 'int', min: 1_000_000, description: 'CPU limit in 1e-9 CPUs' },
  pidsLimit: { kind: 'int', min: 8, description: 'process limit' },
  nofileLimit: { kind: 'int', min: 16, description: 'open files limit' },
  fileSizeLimitBytes: { kind: 'bytes', min: 1, description: 'largest file a process may write' },
  tmpSizeBytes: { kind: 'bytes', min: 1, description: 'size of the /tmp tmpfs' },
  workdirSizeBytes: { kind: 'bytes', min: 1, description: 'size of the work dir tmpfs' },
  shmSizeBytes: { kind: 'bytes', min: 1, description: 'size of /dev/shm' },
  runtime: {
    kind: 'string',
    description: 'OCI runtime (e.g. runsc); empty for the engine default',
  },
  seccompProfile: {
    kind: 'string',
    description: 'custom seccomp profile JSON; empty for the default',
  },
  requireSeccomp: {
    module: true,
    kind: 'bool',
    description: 'refuse to serve when the engine has no seccomp',
  },
  directChannel: {
    module: true,
    kind: 'bool',
    description:
      'runner transport: frames over a Unix socket bind-mounted into the container when the engine is ' +
      'local (the attach stream otherwise)',
  },
  maxSessions: {
    module: true,
    kind: 'int',
    min: 0,
    description: 'open sessions of all profiles together (0: no sessions)',
  },
  maxSessionsPerOwner: {
    module: true,
    kind: 'int',
    min: 1,
    description: 'open sessions of one owner (one HTTP token)',
  },
  sessionIdleTimeoutMs: {
    kind: 'int',
    min: 1000,
    description: 'a session without a call for this long is closed',
  },
  sessionMaxLifetimeMs: {
    kind: 'int',
    min: 1000,
    description:
      'longest a session may live (default maxExecTimeoutMs; above it, idle containers are recycled earlier)',
  },
  maxQueuedCalls: {
    kind: 'int',
    min: 0,
    description: 'calls of one session waiting behind the running one',
  },
  interruptGraceMs: {
    kind: 'int',
    min: 1,
    description: 'an overrunning session call: from the interrupt to killing its processes',
  },
  killGraceMs: {
    kind: 'int',
    min: 100,
    description: 'an overrunning session call: from the kill to recycling the container',
  },
  adminToken: {
    kind: 'tokens',
    module: true,
    description: 'bearer token(s) of the admin scope (every route), comma separated',
  },
  execToken: {
    kind: 'tokens',
    module: true,
    description: 'bearer token(s) of the exec scope (executions), comma separated',
  },
  readToken: {
    kind: 'tokens',
    module: true,
    description:
      'bearer token(s) of the read scope (GET stats, containers, metrics), comma separated',
  },
  metricsPublic: {
    module: true,
    kind: 'bool',
    description: 'serve /metrics without a bearer token',
  },
  maxBodyBytes: {
    module: true,
    kind: 'bytes',
    min: 1024,
    description: 'largest request body of the HTTP API',
  },
};

/** Shortest admin token accepted: a guessable token would open the pool to anyone who can reach it. */
export const MIN_ADMIN_TOKEN_LENGTH = 16;

/** The defaults of every setting that has one (the module-level derived ones are computed). */
export const DEFAULT_OPTIONS: Omit<
  ResolvedContainerPoolOptions,
  'profile' | 'defaultProfile' | 'maxContainersTotal' | 'sessionMaxLifetimeMs'
> = {
  name: 'default',
  image: 'python:3.13-slim',
  pullPolicy: 'if-not-present',
  pythonCommand: ['python3'],
  transport: 'auto',
  preloadModules: [],
  size: 2,
  maxContainers: 10,
  maxWaiters: 100,
  maxConcurrentCreates: 2,
  acquireTimeoutMs: 30_000,
  replenishIntervalMs: 5_000,
  singleUse: true,
  updateStrategy: 'onReplenish',
  maxSurge: 1,
  progressDeadlineMs: 600_000,
  execTimeoutMs: 30_000,
  maxExecTimeoutMs: 300_000,
  maxOutputBytes: 1 * MiB,
  maxOutputs: 32,
  maxStdinBytes: 16 * MiB,
  maxFiles: 100,
  maxFileBytes: 16 * MiB,
  maxFilesTotalBytes: 64 * MiB,
  containerLifetimeMs: 1_800_000,
  shutdownGraceMs: 10_000,
  createTimeoutMs: 60_000,
  user: '65534:65534',
  workdir: '/workspace',
  memoryBytes: 256 * MiB,
  nanoCpus: 1_000_000_000,
  pidsLimit: 128,
  nofileLimit: 256,
  fileSizeLimitBytes: 128 * MiB,
  tmpSizeBytes: 64 * MiB,
  workdirSizeBytes: 64 * MiB,
  shmSizeBytes: 16 * MiB,
  requireSeccomp: true,
  directChannel: true,
  maxSessions: 16,
  maxSessionsPerOwner: 4,
  sessionIdleTimeoutMs: 120_000,
  maxQueuedCalls: 16,
  interruptGraceMs: 2_000,
  killGraceMs: 2_000,
  adminToken: [],
  execToken: [],
  readToken: [],
  metricsPublic: false,
  maxBodyBytes: 24 * MiB,
};

/** `maxContainers` -> `POOL_MAX_CONTAINERS` (or another prefix's). */
export function envName(key: string, prefix = 'POOL_'): string {
  return prefix + key.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();
}

import { createHash } from 'node:crypto';
import { registerAs } from '@nestjs/config';
import {
  CONTAINER_POOL_CONFIG_NAMESPACE,
  LIFETIME_SAFETY_MARGIN_MS,
} from '../container-pool.constants';
import type { ContainerSpec } from '../engine/container-driver.interface';
import { InvalidPoolConfigError } from '../errors/container-pool.errors';
import type {
  ContainerPoolModuleOptions,
  PullPolicy,
  ResolvedContainerPoolOptions,
} from '../interfaces/container-pool-options.interface';

const MiB = 1024 * 1024;
const PULL_POLICIES: readonly PullPolicy[] = ['if-not-present', 'always', 'never'];

type Kind = 'int' | 'bytes' | 'bool' | 'string' | 'pullPolicy' | 'argv' | 'tokens';
type SettingKey = Exclude<keyof ContainerPoolModuleOptions, 'docker'>;

interface Setting {
  kind: Kind;
  min?: number;
  description: string;
}

/** Every setting, its kind, lower bound and one-line description. Defaults live in DEFAULT_OPTIONS. */
export const SETTINGS: Record<SettingKey, Setting> = {
  name: { kind: 'string', description: 'pool name, put on container labels' },
  image: { kind: 'string', description: 'sandbox image' },
  pullPolicy: { kind: 'pullPolicy', description: 'if-not-present | always | never' },
  pythonCommand: { kind: 'argv', description: 'interpreter for run({ code }), space separated' },
  size: { kind: 'int', min: 0, description: 'idle containers kept warm' },
  maxContainers: { kind: 'int', min: 1, description: 'cap on all containers of the pool' },
  maxWaiters: { kind: 'int', min: 0, description: 'acquires allowed to wait at the cap' },
  maxConcurrentCreates: { kind: 'int', min: 1, description: 'container creations in flight' },
  acquireTimeoutMs: { kind: 'int', min: 1, description: 'how long acquire() waits' },
  replenishIntervalMs: { kind: 'int', min: 100, description: 'interval of the top-up task' },
  singleUse: { kind: 'bool', description: 'destroy containers on release' },
  execTimeoutMs: { kind: 'int', min: 1, description: 'default execution timeout' },
  maxExecTimeoutMs: {
    kind: 'int',
    min: 1,
    description: 'largest execution timeout a caller may ask',
  },
  maxOutputBytes: { kind: 'bytes', min: 1, description: 'per-stream output cap' },
  maxStdinBytes: { kind: 'bytes', min: 0, description: 'largest stdin plus code of one execution' },
  containerLifetimeMs: { kind: 'int', min: 1000, description: 'hard limit on a container life' },
  shutdownGraceMs: {
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
  requireSeccomp: { kind: 'bool', description: 'refuse to serve when the engine has no seccomp' },
  adminToken: { kind: 'tokens', description: 'bearer token(s) of the admin API, comma separated' },
  metricsPublic: { kind: 'bool', description: 'serve /metrics without a bearer token' },
  maxBodyBytes: { kind: 'bytes', min: 1024, description: 'largest request body of the HTTP API' },
};

/** Shortest admin token accepted: a guessable token would open the pool to anyone who can reach it. */
export const MIN_ADMIN_TOKEN_LENGTH = 16;

export const DEFAULT_OPTIONS: ResolvedContainerPoolOptions = {
  name: 'default',
  image: 'python:3.13-slim',
  pullPolicy: 'if-not-present',
  pythonCommand: ['python3'],
  size: 2,
  maxContainers: 10,
  maxWaiters: 100,
  maxConcurrentCreates: 2,
  acquireTimeoutMs: 30_000,
  replenishIntervalMs: 5_000,
  singleUse: true,
  execTimeoutMs: 30_000,
  maxExecTimeoutMs: 300_000,
  maxOutputBytes: 1 * MiB,
  maxStdinBytes: 16 * MiB,
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
  adminToken: [],
  metricsPublic: false,
  maxBodyBytes: 24 * MiB,
};

/** `maxContainers` -> `POOL_MAX_CONTAINERS`. */
export function envName(key: string): string {
  return 'POOL_' + key.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();
}

const BYTE_UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1024,
  kb: 1024,
  kib: 1024,
  m: MiB,
  mb: MiB,
  mib: MiB,
  g: 1024 * MiB,
  gb: 1024 * MiB,
  gib: 1024 * MiB,
};

function parseValue(kind: Kind, raw: string): { value?: unknown; error?: string } {
  const text = raw.trim();
  switch (kind) {
    case 'int': {
      if (!/^-?\d+$/.test(text)) return { error: `must be an integer, got "${raw}"` };
      return { value: Number(text) };
    }
    case 'bytes': {
      const m = /^(-?\d+(?:\.\d+)?)\s*([a-zA-Z]*)$/.exec(text);
      const unit = m ? BYTE_UNITS[m[2].toLowerCase()] : undefined;
      if (!m || unit === undefined) {
        return { error: `must be a byte count such as 268435456, 256m or 256MiB, got "${raw}"` };
      }
      return { value: Math.round(Number(m[1]) * unit) };
    }
    case 'bool': {
      if (/^(true|1|yes|on)$/i.test(text)) return { value: true };
      if (/^(false|0|no|off)$/i.test(text)) return { value: false };
      return { error: `must be true or false, got "${raw}"` };
    }
    case 'pullPolicy':
    case 'string':
      return { value: text };
    case 'argv': {
      const argv = text.split(/\s+/).filter(Boolean);
      return argv.length ? { value: argv } : { error: 'must name a command' };
    }
    case 'tokens':
      return { value: splitTokens(text) };
  }
}

function splitTokens(text: string): string[] {
  return text
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean);
}

/**
 * Reads the `POOL_*` settings of an environment. Unset and empty variables are skipped; values that do not
 * parse are reported by name.
 */
export function readPoolEnv(env: NodeJS.ProcessEnv): {
  options: ContainerPoolModuleOptions;
  problems: string[];
} {
  const options: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const [key, setting] of Object.entries(SETTINGS)) {
    const raw = env[envName(key)];
    if (raw === undefined || raw.trim() === '') continue;
    const { value, error } = parseValue(setting.kind, raw);
    if (error) problems.push(`${envName(key)} ${error}`);
    else options[key] = value;
  }
  return { options, problems };
}

/** The `POOL_*` environment as a @nestjs/config namespace (ConfigModule.forFeature(poolEnvConfig)). */
export const poolEnvConfig = registerAs(CONTAINER_POOL_CONFIG_NAMESPACE, () =>
  readPoolEnv(process.env),
);
export type PoolEnvConfig = ReturnType<typeof readPoolEnv>;

function label(key: string): string {
  return `${key} (${envName(key)})`;
}

/**
 * Merges explicit options over the environment over the defaults and validates the result once.
 * Throws InvalidPoolConfigError naming every bad setting.
 */
export function resolvePoolOptions(
  explicit: ContainerPoolModuleOptions = {},
  fromEnv: PoolEnvConfig = { options: {}, problems: [] },
): ResolvedContainerPoolOptions {
  const problems = [...fromEnv.problems];
  const defined = Object.fromEntries(
    Object.entries(explicit ?? {}).filter(([, v]) => v !== undefined),
  ) as ContainerPoolModuleOptions;
  const merged = {
    ...DEFAULT_OPTIONS,
    ...fromEnv.options,
    ...defined,
  } as ResolvedContainerPoolOptions;
  if (typeof merged.adminToken === 'string') merged.adminToken = splitTokens(merged.adminToken);
  if (merged.runtime === '') delete merged.runtime;
  if (merged.seccompProfile === '') delete merged.seccompProfile;

  for (const key of Object.keys(defined)) {
    if (key !== 'docker' && !(key in SETTINGS)) problems.push(`unknown option "${key}"`);
  }
  for (const [key, setting] of Object.entries(SETTINGS)) {
    const value = (merged as unknown as Record<string, unknown>)[key];
    if (value === undefined) continue;
    switch (setting.kind) {
      case 'int':
      case 'bytes':
        if (typeof value !== 'number' || !Number.isSafeInteger(value)) {
          problems.push(`${label(key)} must be an integer, got ${JSON.stringify(value)}`);
        } else if (setting.min !== undefined && value < setting.min) {
          problems.push(`${label(key)} must be at least ${setting.min}, got ${value}`);
        }
        break;
      case 'bool':
        if (typeof value !== 'boolean') problems.push(`${label(key)} must be a boolean`);
        break;
      case 'string':
        if (typeof value !== 'string') problems.push(`${label(key)} must be a string`);
        break;
      case 'pullPolicy':
        if (!PULL_POLICIES.includes(value as PullPolicy)) {
          problems.push(
            `${label(key)} must be one of ${PULL_POLICIES.join(', ')}, got ${JSON.stringify(value)}`,
          );
        }
        break;
      case 'argv':
        if (
          !Array.isArray(value) ||
          !value.length ||
          value.some((v) => typeof v !== 'string' || !v)
        ) {
          problems.push(`${label(key)} must be a non-empty list of strings`);
        }
        break;
      case 'tokens':
        if (!Array.isArray(value) || value.some((v) => typeof v !== 'string')) {
          problems.push(`${label(key)} must be a string or a list of strings`);
        } else if (value.some((v: string) => v.length < MIN_ADMIN_TOKEN_LENGTH || /\s/.test(v))) {
          // Never echo the token itself.
          problems.push(
            `${label(key)}: every token must be at least ${MIN_ADMIN_TOKEN_LENGTH} characters without ` +
              'spaces (e.g. `openssl rand -hex 32`)',
          );
        }
        break;
    }
  }
  if (problems.length) throw new InvalidPoolConfigError(problems);

  const o = merged;
  if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/.test(o.name)) {
    problems.push(`${label('name')} must be 1-63 of [a-zA-Z0-9_.-], got "${o.name}"`);
  }
  if (!o.image) problems.push(`${label('image')} must not be empty`);
  if (o.size > o.maxContainers) {
    problems.push(
      `${label('size')} (${o.size}) must not exceed maxContainers (${o.maxContainers})`,
    );
  }
  if (o.execTimeoutMs > o.maxExecTimeoutMs) {
    problems.push(
      `${label('execTimeoutMs')} (${o.execTimeoutMs}) must not exceed maxExecTimeoutMs (${o.maxExecTimeoutMs})`,
    );
  }
  const minLifetime = o.maxExecTimeoutMs + LIFETIME_SAFETY_MARGIN_MS + o.replenishIntervalMs;
  if (o.containerLifetimeMs < minLifetime) {
    problems.push(
      `${label('containerLifetimeMs')} (${o.containerLifetimeMs}) must be at least maxExecTimeoutMs + ` +
        `replenishIntervalMs + ${LIFETIME_SAFETY_MARGIN_MS} ms (${minLifetime}) so a container can serve its longest execution`,
    );
  }
  const tmpfsTotal = o.tmpSizeBytes + o.workdirSizeBytes + o.shmSizeBytes;
  if (tmpfsTotal >= o.memoryBytes) {
    problems.push(
      `${label('tmpSizeBytes')} + ${label('workdirSizeBytes')} + ${label('shmSizeBytes')} (${tmpfsTotal}) must be ` +
        `below memoryBytes (${o.memoryBytes}): tmpfs pages count against the memory limit`,
    );
  }
  const userMatch = /^(\d+)(?::(\d+))?$/.exec(o.user);
  if (!userMatch) {
    problems.push(`${label('user')} must be numeric uid:gid such as 65534:65534, got "${o.user}"`);
  } else if (userMatch[1] === '0' || userMatch[2] === '0') {
    problems.push(`${label('user')} must not be root (uid or gid 0)`);
  }
  if (!o.workdir.startsWith('/') || o.workdir === '/' || o.workdir === '/tmp') {
    problems.push(
      `${label('workdir')} must be an absolute path other than / and /tmp, got "${o.workdir}"`,
    );
  }
  if (o.seccompProfile !== undefined) {
    try {
      JSON.parse(o.seccompProfile);
    } catch {
      problems.push(`${label('seccompProfile')} must be the JSON text of a seccomp profile`);
    }
  }
  if (problems.length) throw new InvalidPoolConfigError(problems);
  return o;
}

/** Hash of everything that shapes a container, put on its labels. */
export function configHash(o: ResolvedContainerPoolOptions): string {
  const shape = {
    image: o.image,
    user: o.user,
    workdir: o.workdir,
    memoryBytes: o.memoryBytes,
    nanoCpus: o.nanoCpus,
    pidsLimit: o.pidsLimit,
    nofileLimit: o.nofileLimit,
    fileSizeLimitBytes: o.fileSizeLimitBytes,
    tmpSizeBytes: o.tmpSizeBytes,
    workdirSizeBytes: o.workdirSizeBytes,
    shmSizeBytes: o.shmSizeBytes,
    runtime: o.runtime ?? null,
    seccompProfile: o.seccompProfile ?? null,
    containerLifetimeMs: o.containerLifetimeMs,
  };
  return createHash('sha256').update(JSON.stringify(shape)).digest('hex').slice(0, 16);
}

/** Every effective setting as `key=value` for the startup log; tokens are counted, never shown. */
export function describeSettings(o: ResolvedContainerPoolOptions): string {
  return Object.keys(SETTINGS)
    .map((key) => {
      const value = (
        o as unknown as Record<string, string | number | boolean | string[] | undefined>
      )[key];
      if (key === 'adminToken')
        return `adminToken=${Array.isArray(value) ? value.length : 0} token(s)`;
      if (key === 'seccompProfile') return `seccompProfile=${value ? 'custom' : 'engine default'}`;
      if (value === undefined) return `${key}=(default)`;
      return `${key}=${Array.isArray(value) ? value.join(' ') : String(value)}`;
    })
    .join(' ');
}

/** The engine-neutral shape of every container of a pool with these options (name and labels come per create). */
export function containerSpecOf(
  o: ResolvedContainerPoolOptions,
): Omit<ContainerSpec, 'name' | 'labels'> {
  return {
    image: o.image,
    user: o.user,
    workdir: o.workdir,
    env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', `HOME=${o.workdir}`],
    memoryBytes: o.memoryBytes,
    nanoCpus: o.nanoCpus,
    pidsLimit: o.pidsLimit,
    nofileLimit: o.nofileLimit,
    fileSizeLimitBytes: o.fileSizeLimitBytes,
    tmpfs: [
      { path: '/tmp', sizeBytes: o.tmpSizeBytes, mode: '1777', exec: false },
      { path: o.workdir, sizeBytes: o.workdirSizeBytes, mode: '0700', exec: true, owner: o.user },
    ],
    shmSizeBytes: o.shmSizeBytes,
    runtime: o.runtime,
    seccompProfile: o.seccompProfile,
    lifetimeMs: o.containerLifetimeMs,
  };
}

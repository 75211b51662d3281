import { LIFETIME_SAFETY_MARGIN_MS } from '../container-pool.constants';
import { InvalidPoolConfigError } from '../errors/container-pool.errors';
import type {
  ContainerPoolModuleOptions,
  PullPolicy,
  ResolvedContainerPoolOptions,
} from '../interfaces/container-pool-options.interface';
import { PoolEnvConfig, splitTokens } from './pool-env';
import {
  DEFAULT_OPTIONS,
  envName,
  MIN_ADMIN_TOKEN_LENGTH,
  PULL_POLICIES,
  SETTINGS,
} from './settings';

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

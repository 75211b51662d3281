import { Logger } from '@nestjs/common';
import { LIFETIME_SAFETY_MARGIN_MS } from '../container-pool.constants';
import { InvalidPoolConfigError } from '../errors/container-pool.errors';
import type {
  ContainerPoolModuleOptions,
  PullPolicy,
  ResolvedContainerPoolOptions,
} from '../interfaces/container-pool-options.interface';
import {
  DEFAULT_ENV_PREFIX,
  NO_ENV,
  parseValue,
  PoolEnvConfig,
  readPoolEnv,
  splitTokens,
} from './pool-env';
import {
  DEFAULT_OPTIONS,
  envName,
  MIN_ADMIN_TOKEN_LENGTH,
  PULL_POLICIES,
  Setting,
  SETTINGS,
} from './settings';

const TOKEN_KEYS = ['adminToken', 'execToken', 'readToken'] as const;

/** Checks one value of a setting's kind; returns the problem, or null. */
function kindProblem(setting: Setting, value: unknown): string | null {
  switch (setting.kind) {
    case 'int':
    case 'bytes':
      if (typeof value !== 'number' || !Number.isSafeInteger(value)) {
        return `must be an integer, got ${JSON.stringify(value)}`;
      }
      if (setting.min !== undefined && value < setting.min) {
        return `must be at least ${setting.min}, got ${value}`;
      }
      return null;
    case 'bool':
      return typeof value === 'boolean' ? null : 'must be a boolean';
    case 'string':
      return typeof value === 'string' ? null : 'must be a string';
    case 'pullPolicy':
      return PULL_POLICIES.includes(value as PullPolicy)
        ? null
        : `must be one of ${PULL_POLICIES.join(', ')}, got ${JSON.stringify(value)}`;
    case 'argv':
      return Array.isArray(value) && value.length && value.every((v) => typeof v === 'string' && v)
        ? null
        : 'must be a non-empty list of strings';
    case 'tokens':
      if (!Array.isArray(value) || value.some((v) => typeof v !== 'string')) {
        return 'must be a string or a list of strings';
      }
      // Never echo the token itself.
      return value.some((v: string) => v.length < MIN_ADMIN_TOKEN_LENGTH || /\s/.test(v))
        ? `every token must be at least ${MIN_ADMIN_TOKEN_LENGTH} characters without spaces ` +
            '(e.g. `openssl rand -hex 32`)'
        : null;
  }
}

/**
 * Merges explicit options over the environment over the defaults and validates the result once: every problem,
 * of the environment's values, of the kinds and of the relations between settings, in one
 * InvalidPoolConfigError naming each setting (its option and its environment variable).
 */
export function resolvePoolOptions(
  explicit: ContainerPoolModuleOptions = {},
  fromEnv: PoolEnvConfig = NO_ENV,
): ResolvedContainerPoolOptions {
  const label = (key: string) => `${key} (${envName(key, fromEnv.prefix)})`;
  const problems = [...fromEnv.problems];
  const defined = Object.fromEntries(
    Object.entries(explicit ?? {}).filter(([, v]) => v !== undefined),
  ) as Record<string, unknown>;
  for (const key of Object.keys(defined)) {
    if (key !== 'docker' && key !== 'readEnv' && !(key in SETTINGS)) {
      problems.push(`unknown option "${key}"`);
    }
  }
  // Sizes with units and comma-separated tokens are accepted in code as in the environment.
  for (const [key, value] of Object.entries(defined)) {
    const kind = (SETTINGS as Record<string, Setting | undefined>)[key]?.kind;
    if (kind === 'bytes' && typeof value === 'string') {
      const parsed = parseValue('bytes', value);
      if (parsed.error) {
        problems.push(`${label(key)} ${parsed.error}`);
        delete defined[key];
      } else defined[key] = parsed.value;
    }
    if (kind === 'tokens' && typeof value === 'string') defined[key] = splitTokens(value);
  }
  const merged = { ...DEFAULT_OPTIONS, ...fromEnv.options, ...defined } as Record<string, unknown>;
  if (merged.runtime === '') delete merged.runtime;
  if (merged.seccompProfile === '') delete merged.seccompProfile;
  delete merged.readEnv;

  /** Settings whose value has the right kind: only those take part in the relations below. */
  const ok = new Set<string>();
  for (const [key, setting] of Object.entries(SETTINGS)) {
    const value = merged[key];
    if (value === undefined) continue;
    const problem = kindProblem(setting, value);
    if (problem) problems.push(`${label(key)} ${problem}`);
    else ok.add(key);
  }
  const o = merged as unknown as ResolvedContainerPoolOptions;
  const all = (...keys: string[]) => keys.every((k) => ok.has(k));

  if (all('name') && !/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/.test(o.name)) {
    problems.push(`${label('name')} must be 1-63 of [a-zA-Z0-9_.-], got "${o.name}"`);
  }
  if (all('image') && !o.image) problems.push(`${label('image')} must not be empty`);
  if (all('size', 'maxContainers') && o.size > o.maxContainers) {
    problems.push(
      `${label('size')} (${o.size}) must not exceed maxContainers (${o.maxContainers})`,
    );
  }
  if (all('execTimeoutMs', 'maxExecTimeoutMs') && o.execTimeoutMs > o.maxExecTimeoutMs) {
    problems.push(
      `${label('execTimeoutMs')} (${o.execTimeoutMs}) must not exceed maxExecTimeoutMs (${o.maxExecTimeoutMs})`,
    );
  }
  if (all('maxExecTimeoutMs', 'replenishIntervalMs', 'containerLifetimeMs')) {
    const minLifetime = o.maxExecTimeoutMs + LIFETIME_SAFETY_MARGIN_MS + o.replenishIntervalMs;
    if (o.containerLifetimeMs < minLifetime) {
      problems.push(
        `${label('containerLifetimeMs')} (${o.containerLifetimeMs}) must be at least maxExecTimeoutMs + ` +
          `replenishIntervalMs + ${LIFETIME_SAFETY_MARGIN_MS} ms (${minLifetime}) so a container can serve its longest execution`,
      );
    }
  }
  if (all('tmpSizeBytes', 'workdirSizeBytes', 'shmSizeBytes', 'memoryBytes')) {
    const tmpfsTotal = o.tmpSizeBytes + o.workdirSizeBytes + o.shmSizeBytes;
    if (tmpfsTotal >= o.memoryBytes) {
      problems.push(
        `${label('tmpSizeBytes')} + ${label('workdirSizeBytes')} + ${label('shmSizeBytes')} (${tmpfsTotal}) must be ` +
          `below memoryBytes (${o.memoryBytes}): tmpfs pages count against the memory limit`,
      );
    }
  }
  if (all('user')) {
    const userMatch = /^(\d+)(?::(\d+))?$/.exec(o.user);
    if (!userMatch) {
      problems.push(
        `${label('user')} must be numeric uid:gid such as 65534:65534, got "${o.user}"`,
      );
    } else if (userMatch[1] === '0' || userMatch[2] === '0') {
      problems.push(`${label('user')} must not be root (uid or gid 0)`);
    }
  }
  if (all('workdir') && (!o.workdir.startsWith('/') || o.workdir === '/' || o.workdir === '/tmp')) {
    problems.push(
      `${label('workdir')} must be an absolute path other than / and /tmp, got "${o.workdir}"`,
    );
  }
  if (all('seccompProfile') && o.seccompProfile !== undefined) {
    try {
      JSON.parse(o.seccompProfile);
    } catch {
      problems.push(`${label('seccompProfile')} must be the JSON text of a seccomp profile`);
    }
  }
  if (all(...TOKEN_KEYS)) {
    const scopeOf = new Map<string, string>();
    for (const key of TOKEN_KEYS) {
      for (const token of o[key]) {
        const other = scopeOf.get(token);
        if (other && other !== key) {
          problems.push(
            `${label(key)}: a token of ${other} is given again; each token has one scope`,
          );
        }
        scopeOf.set(token, key);
      }
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
      if (key === 'adminToken' || key === 'execToken' || key === 'readToken')
        return `${key}=${Array.isArray(value) ? value.length : 0} token(s)`;
      if (key === 'seccompProfile') return `seccompProfile=${value ? 'custom' : 'engine default'}`;
      if (value === undefined) return `${key}=(default)`;
      return `${key}=${Array.isArray(value) ? value.join(' ') : String(value)}`;
    })
    .join(' ');
}

/**
 * The module's options: the environment is read only when `readEnv` says so (with its prefix); unknown
 * `<prefix>*` variables are one warning naming each and the closest setting.
 */
export function resolveModuleOptions(
  explicit: ContainerPoolModuleOptions = {},
  env: NodeJS.ProcessEnv = process.env,
  warn: (message: string) => void = (m) => new Logger('ContainerPoolConfig').warn(m),
): ResolvedContainerPoolOptions {
  const readEnv = explicit?.readEnv ?? false;
  if (readEnv !== false && readEnv !== true && (typeof readEnv !== 'object' || readEnv === null)) {
    throw new InvalidPoolConfigError([
      `readEnv must be true, false or { prefix }, got ${JSON.stringify(readEnv)}`,
    ]);
  }
  const prefix =
    typeof readEnv === 'object' ? (readEnv.prefix ?? DEFAULT_ENV_PREFIX) : DEFAULT_ENV_PREFIX;
  if (typeof prefix !== 'string' || !/^[A-Z][A-Z0-9_]*$/.test(prefix)) {
    throw new InvalidPoolConfigError([
      `readEnv.prefix must be upper case letters, digits and _ (e.g. "POOL_"), got ${JSON.stringify(prefix)}`,
    ]);
  }
  const fromEnv = readEnv ? readPoolEnv(env, prefix) : NO_ENV;
  if (fromEnv.unknown.length) {
    warn(
      `unknown ${prefix}* environment variable(s), ignored: ` +
        fromEnv.unknown
          .map((u) => (u.closest ? `${u.name} (did you mean ${u.closest}?)` : u.name))
          .join(', '),
    );
  }
  return resolvePoolOptions(explicit, fromEnv);
}

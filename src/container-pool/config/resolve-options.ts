import { Logger } from '@nestjs/common';
import { DIRECT_CHANNEL_DIR, LIFETIME_SAFETY_MARGIN_MS } from '../container-pool.constants';
import { InvalidPoolConfigError } from '../errors/container-pool.errors';
import type {
  ContainerPoolModuleOptions,
  PullPolicy,
  ResolvedContainerPoolOptions,
  ResolvedModuleOptions,
  TransportSetting,
} from '../interfaces/container-pool-options.interface';
import { ROLLOUT_STRATEGIES } from '../interfaces/rollout.interface';
import {
  DEFAULT_ENV_PREFIX,
  NO_ENV,
  parseValue,
  PoolEnvConfig,
  profileEnvName,
  readPoolEnv,
  splitTokens,
} from './pool-env';
import {
  DEFAULT_OPTIONS,
  envName,
  MAX_MODULE_NAME,
  MAX_PRELOAD_MODULES,
  MIN_ADMIN_TOKEN_LENGTH,
  MODULE_NAME,
  PULL_POLICIES,
  Setting,
  TRANSPORTS,
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
      if (setting.max !== undefined && value > setting.max) {
        return `must be at most ${setting.max}, got ${value}`;
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
    case 'transport':
      return TRANSPORTS.includes(value as TransportSetting)
        ? null
        : `must be one of ${TRANSPORTS.join(', ')}, got ${JSON.stringify(value)}`;
    case 'argv':
      return Array.isArray(value) && value.length && value.every((v) => typeof v === 'string' && v)
        ? null
        : 'must be a non-empty list of strings';
    case 'tokens':
      if (!Array.isArray(value) || value.some((v) => typeof v !== 'string')) {
        return 'must be a string or a list of strings';
      }
      // Never echo the token itself.
      // Printable ASCII only: a header carries nothing else, so any other token could never authenticate.
      return value.some(
        (v: string) => v.length < MIN_ADMIN_TOKEN_LENGTH || !/^[\x21-\x7e]+$/.test(v),
      )
        ? `every token must be at least ${MIN_ADMIN_TOKEN_LENGTH} characters, printable ASCII without ` +
            'spaces (e.g. `openssl rand -hex 32`)'
        : null;
    case 'modules': {
      if (!Array.isArray(value) || value.some((v) => typeof v !== 'string')) {
        return 'must be a list of Python module names';
      }
      if (value.length > MAX_PRELOAD_MODULES) {
        return `must name at most ${MAX_PRELOAD_MODULES} modules, got ${value.length}`;
      }
      const bad = (value as string[]).find(
        (v) => v.length > MAX_MODULE_NAME || !MODULE_NAME.test(v),
      );
      return bad === undefined
        ? null
        : `must be Python module names such as numpy or matplotlib.pyplot (letters, digits, _ and dots; at ` +
            `most ${MAX_MODULE_NAME} characters), got ${JSON.stringify(bad.slice(0, MAX_MODULE_NAME + 1))}`;
    }
  }
}

/** Profile names: lower case, digits and `-`, starting with a letter, at most 31 characters. */
export const PROFILE_NAME = /^[a-z][a-z0-9-]{0,30}$/;

type Values = Record<string, unknown>;

/** The options actually given (undefined dropped), with sizes and token lists in code parsed as in the env. */
function given(options: object | undefined, label: (key: string) => string, problems: string[]) {
  const out: Values = Object.fromEntries(
    Object.entries(options ?? {}).filter(([, v]) => v !== undefined),
  );
  for (const [key, value] of Object.entries(out)) {
    const kind = (SETTINGS as Record<string, Setting | undefined>)[key]?.kind;
    if (kind === 'bytes' && typeof value === 'string') {
      const parsed = parseValue('bytes', value);
      if (parsed.error) {
        problems.push(`${label(key)} ${parsed.error}`);
        delete out[key];
      } else out[key] = parsed.value;
    }
    if (kind === 'tokens' && typeof value === 'string') out[key] = splitTokens(value);
    if (kind === 'modules' && typeof value === 'string') {
      out[key] = parseValue('modules', value).value;
    }
  }
  return out;
}

/**
 * Checks `keys` of `o` for their kinds and, for the keys that passed, the relations between settings; every
 * problem named by `label`. Returns the keys whose values have the right kind.
 */
/** Whether one of two absolute paths (no trailing slash) is, contains or lies in the other. */
function overlaps(a: string, b: string): boolean {
  return a === b || a.startsWith(`${b}/`) || b.startsWith(`${a}/`);
}

function validate(o: Values, keys: string[], label: (key: string) => string, problems: string[]) {
  const ok = new Set<string>();
  for (const key of keys) {
    const value = o[key];
    if (value === undefined) continue;
    const problem = kindProblem(SETTINGS[key as keyof typeof SETTINGS], value);
    if (problem) problems.push(`${label(key)} ${problem}`);
    else ok.add(key);
  }
  const r = o as unknown as ResolvedContainerPoolOptions;
  const all = (...k: string[]) => k.every((x) => ok.has(x));
  if (all('name') && !/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/.test(r.name)) {
    problems.push(`${label('name')} must be 1-63 of [a-zA-Z0-9_.-], got "${r.name}"`);
  }
  if (all('image') && !r.image) problems.push(`${label('image')} must not be empty`);
  if (all('updateStrategy') && !ROLLOUT_STRATEGIES.includes(r.updateStrategy)) {
    problems.push(
      `${label('updateStrategy')} must be one of ${ROLLOUT_STRATEGIES.join(', ')}, got "${r.updateStrategy}"`,
    );
  }
  if (all('preloadModules', 'transport') && r.preloadModules.length && r.transport === 'exec') {
    problems.push(
      `${label('preloadModules')} needs the runner transport: with transport exec nothing would import them; ` +
        'set transport auto or runner, or leave preloadModules empty',
    );
  }
  if (all('size', 'maxContainers') && r.size > r.maxContainers) {
    problems.push(
      `${label('size')} (${r.size}) must not exceed maxContainers (${r.maxContainers})`,
    );
  }
  if (all('execTimeoutMs', 'maxExecTimeoutMs') && r.execTimeoutMs > r.maxExecTimeoutMs) {
    problems.push(
      `${label('execTimeoutMs')} (${r.execTimeoutMs}) must not exceed maxExecTimeoutMs (${r.maxExecTimeoutMs})`,
    );
  }
  if (all('maxExecTimeoutMs', 'containerLifetimeMs') && typeof r.replenishIntervalMs === 'number') {
    const minLifetime = r.maxExecTimeoutMs + LIFETIME_SAFETY_MARGIN_MS + r.replenishIntervalMs;
    if (r.containerLifetimeMs < minLifetime) {
      problems.push(
        `${label('containerLifetimeMs')} (${r.containerLifetimeMs}) must be at least maxExecTimeoutMs + ` +
          `replenishIntervalMs + ${LIFETIME_SAFETY_MARGIN_MS} ms (${minLifetime}) so a container can serve its longest execution`,
      );
    }
  }
  if (
    all('containerLifetimeMs') &&
    typeof r.sessionMaxLifetimeMs === 'number' &&
    ok.has('sessionMaxLifetimeMs')
  ) {
    const minLifetime =
      r.sessionMaxLifetimeMs + LIFETIME_SAFETY_MARGIN_MS + (r.replenishIntervalMs ?? 0);
    if (r.containerLifetimeMs < minLifetime) {
      problems.push(
        `${label('sessionMaxLifetimeMs')} (${r.sessionMaxLifetimeMs}) must leave containerLifetimeMs ` +
          `(${r.containerLifetimeMs}) at least replenishIntervalMs + ${LIFETIME_SAFETY_MARGIN_MS} ms: a session ` +
          `needs a container with that much life left`,
      );
    }
  }
  if (all('tmpSizeBytes', 'workdirSizeBytes', 'shmSizeBytes', 'memoryBytes')) {
    const tmpfsTotal = r.tmpSizeBytes + r.workdirSizeBytes + r.shmSizeBytes;
    if (tmpfsTotal >= r.memoryBytes) {
      problems.push(
        `${label('tmpSizeBytes')} + ${label('workdirSizeBytes')} + ${label('shmSizeBytes')} (${tmpfsTotal}) must be ` +
          `below memoryBytes (${r.memoryBytes}): tmpfs pages count against the memory limit`,
      );
    }
  }
  if (all('user')) {
    // Numbers, as the engine reads them: `00:00` is root too.
    const userMatch = /^(\d{1,10})(?::(\d{1,10}))?$/.exec(r.user);
    const ids = userMatch ? [Number(userMatch[1]), Number(userMatch[2] ?? userMatch[1])] : [];
    if (!userMatch) {
      problems.push(
        `${label('user')} must be numeric uid:gid such as 65534:65534, got "${r.user}"`,
      );
    } else if (ids.some((id) => id === 0)) {
      problems.push(`${label('user')} must not be root (uid or gid 0)`);
    } else if (ids.some((id) => id > 2147483647)) {
      problems.push(
        `${label('user')} must have uid and gid of at most 2147483647, got "${r.user}"`,
      );
    }
  }
  if (all('workdir') && (!r.workdir.startsWith('/') || r.workdir === '/' || r.workdir === '/tmp')) {
    problems.push(
      `${label('workdir')} must be an absolute path other than / and /tmp, got "${r.workdir}"`,
    );
  } else if (all('workdir') && overlaps(r.workdir.replace(/\/+$/, ''), DIRECT_CHANNEL_DIR)) {
    problems.push(
      `${label('workdir')} must not be, contain or lie in ${DIRECT_CHANNEL_DIR} (the runner's channel ` +
        `directory), got "${r.workdir}"`,
    );
  }
  if (all('seccompProfile') && r.seccompProfile !== undefined) {
    try {
      JSON.parse(r.seccompProfile);
    } catch {
      problems.push(`${label('seccompProfile')} must be the JSON text of a seccomp profile`);
    }
  }
  if (all(...TOKEN_KEYS)) {
    const scopeOf = new Map<string, string>();
    for (const key of TOKEN_KEYS) {
      for (const token of r[key]) {
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
  return ok;
}

const MODULE_KEYS = Object.keys(SETTINGS).filter(
  (k) => SETTINGS[k as keyof typeof SETTINGS].module,
);
const PROFILE_KEYS = Object.keys(SETTINGS).filter(
  (k) => !SETTINGS[k as keyof typeof SETTINGS].module,
);
const OPTION_KEYS = new Set([...Object.keys(SETTINGS), 'docker', 'readEnv', 'profiles']);

/**
 * Merges explicit options over the environment over the defaults and validates the result once: every problem,
 * of the environment's values, of the kinds and of the relations between settings, of every profile, in one
 * InvalidPoolConfigError naming each setting (its option and its environment variable).
 *
 * Without `profiles` the top-level options are one profile named by `name`. With them, each profile's value of
 * a setting is its own (explicit, then `POOL_PROFILE__<NAME>__<SETTING>`), else the top-level one (explicit,
 * then `POOL_<SETTING>`), else the default.
 */
export function resolvePoolOptions(
  explicit: ContainerPoolModuleOptions = {},
  fromEnv: PoolEnvConfig = NO_ENV,
): ResolvedModuleOptions {
  const prefix = fromEnv.prefix;
  const topLabel = (key: string) => `${key} (${envName(key, prefix)})`;
  const problems = [...fromEnv.problems];
  const top = given(explicit, topLabel, problems);
  for (const key of Object.keys(top)) {
    if (!OPTION_KEYS.has(key)) problems.push(`unknown option "${key}"`);
  }
  const merged: Values = { ...DEFAULT_OPTIONS, ...fromEnv.options, ...top };
  for (const k of ['runtime', 'seccompProfile'] as const) if (merged[k] === '') delete merged[k];
  delete merged.readEnv;
  delete merged.profiles;

  // The profiles: the explicit ones (when given), else those the environment lists, else one named by `name`.
  const explicitProfiles = top.profiles as Record<string, object> | undefined;
  if (
    explicitProfiles !== undefined &&
    (typeof explicitProfiles !== 'object' || explicitProfiles === null)
  ) {
    problems.push('profiles must be an object of profile name -> options');
  }
  const names = explicitProfiles
    ? Object.keys(explicitProfiles)
    : fromEnv.profiles
      ? Object.keys(fromEnv.profiles)
      : null;
  if (names && !names.length) problems.push('profiles must name at least one profile');
  const single = names === null;

  const moduleOk = validate(
    merged,
    single ? Object.keys(SETTINGS) : MODULE_KEYS,
    topLabel,
    problems,
  );
  const raw: [string, Values][] = [];
  if (single) {
    raw.push([String(merged.name), merged]);
  } else {
    for (const name of names) {
      if (!PROFILE_NAME.test(name)) {
        problems.push(`profile name "${name}" must match ${PROFILE_NAME} (lower case, digits, -)`);
        continue;
      }
      const label = (key: string) =>
        `profiles.${name}.${key} (${profileEnvName(name, key, prefix)}, or ${envName(key, prefix)})`;
      const own = given(explicitProfiles?.[name], label, problems);
      for (const key of Object.keys(own)) {
        if (!OPTION_KEYS.has(key)) problems.push(`profiles.${name}: unknown option "${key}"`);
        else if (!PROFILE_KEYS.includes(key)) {
          problems.push(
            `profiles.${name}.${key} is set for the whole module, not per profile: give it at the top level`,
          );
        }
      }
      const values: Values = { ...merged, ...(fromEnv.profiles?.[name] ?? {}), ...own };
      for (const k of ['runtime', 'seccompProfile'] as const)
        if (values[k] === '') delete values[k];
      validate(values, PROFILE_KEYS, label, problems);
      raw.push([name, values]);
    }
  }

  const profileNames = raw.map(([n]) => n);
  let defaultProfile = (merged.defaultProfile as string | undefined) ?? undefined;
  if (single) {
    if (defaultProfile !== undefined && defaultProfile !== profileNames[0]) {
      problems.push(
        `${topLabel('defaultProfile')} "${defaultProfile}" needs profiles: without them the module's one ` +
          `profile is named by name ("${profileNames[0]}")`,
      );
    }
    defaultProfile = profileNames[0];
  } else if (defaultProfile === undefined) {
    if (profileNames.length === 1) defaultProfile = profileNames[0];
    else if (profileNames.length > 1) {
      problems.push(
        `${topLabel('defaultProfile')} is required with several profiles: one of ${profileNames.join(', ')}`,
      );
    }
  } else if (!profileNames.includes(defaultProfile)) {
    problems.push(
      `${topLabel('defaultProfile')} "${defaultProfile}" is no profile; known: ${profileNames.join(', ')}`,
    );
  }
  const sum = (key: 'size' | 'maxContainers') =>
    raw.reduce((n, [, v]) => {
      const value = v[key];
      return n + (typeof value === 'number' ? value : 0);
    }, 0);
  const maxContainersTotal =
    moduleOk.has('maxContainersTotal') && typeof merged.maxContainersTotal === 'number'
      ? merged.maxContainersTotal
      : sum('maxContainers');
  if (sum('size') > maxContainersTotal) {
    problems.push(
      `${topLabel('maxContainersTotal')} (${maxContainersTotal}) must be at least the sum of the profiles' ` +
        `size (${sum('size')})`,
    );
  }
  if (problems.length) throw new InvalidPoolConfigError(problems);

  const profiles = raw.map(
    ([name, values]) =>
      ({
        ...values,
        profile: name,
        defaultProfile: defaultProfile!,
        maxContainersTotal,
        // Default: what every container handed out has left (no earlier recycling).
        sessionMaxLifetimeMs: values.sessionMaxLifetimeMs ?? values.maxExecTimeoutMs,
      }) as unknown as ResolvedContainerPoolOptions,
  );
  const main = profiles.find((p) => p.profile === defaultProfile)!;
  return { ...main, profiles };
}

/** Every effective setting as `key=value` for the startup log; tokens are counted, never shown. */
export function describeSettings(o: ResolvedContainerPoolOptions): string {
  return Object.keys(SETTINGS)
    .map((key) => {
      const value = (
        o as unknown as Record<string, string | number | boolean | string[] | undefined>
      )[key];
      if (key === 'profile' || key === 'defaultProfile') return `${key}=${String(value)}`;
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
): ResolvedModuleOptions {
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
  if (explicit?.profiles && fromEnv.profiles) {
    const ignored = Object.keys(fromEnv.profiles).filter((n) => !(n in explicit.profiles!));
    if (ignored.length) {
      warn(
        `${prefix}PROFILES lists ${ignored.join(', ')}, which the profiles given in code lack: ignored ` +
          '(the profiles in code win; their settings from the environment still apply)',
      );
    }
  }
  return resolvePoolOptions(explicit, fromEnv);
}

import type { ContainerPoolModuleOptions } from '../interfaces/container-pool-options.interface';
import { envName, Kind, MiB, SETTINGS } from './settings';

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

export function parseValue(kind: Kind, raw: string): { value?: unknown; error?: string } {
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
    case 'transport':
    case 'string':
      return { value: text };
    case 'argv': {
      const argv = text.split(/\s+/).filter(Boolean);
      return argv.length ? { value: argv } : { error: 'must name a command' };
    }
    case 'tokens':
      return { value: splitTokens(text) };
    case 'modules':
      return { value: text.split(/[\s,]+/).filter(Boolean) };
  }
}

export function splitTokens(text: string): string[] {
  return text
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean);
}

/** The default prefix of the environment settings. */
export const DEFAULT_ENV_PREFIX = 'POOL_';

/** What the environment says: parsed settings, values that do not parse, and variables nobody knows. */
export interface PoolEnvConfig {
  options: ContainerPoolModuleOptions;
  /** `<prefix>PROFILES` and each listed profile's `<prefix>PROFILE__<NAME>__<SETTING>` values. */
  profiles?: Record<string, Record<string, unknown>>;
  problems: string[];
  /** `<prefix>*` variables that are no setting, each with the closest known name. */
  unknown: { name: string; closest: string | null }[];
  prefix: string;
}

/** `data-sci` -> `DATA_SCI`: the profile's part of its environment variables. */
export function profileEnvPart(profile: string): string {
  return profile.toUpperCase().replace(/-/g, '_');
}

/** `(python, image)` -> `POOL_PROFILE__PYTHON__IMAGE`. */
export function profileEnvName(profile: string, key: string, prefix = DEFAULT_ENV_PREFIX): string {
  return `${prefix}PROFILE__${profileEnvPart(profile)}__${envName(key, '')}`;
}

/** Levenshtein distance, for "did you mean" hints. */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const here = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = here;
    }
  }
  return row[b.length];
}

/** The known name closest to `name`, when it is close enough to be a likely typo. */
export function closestName(name: string, known: string[]): string | null {
  let best: string | null = null;
  let bestDistance = Infinity;
  for (const k of known) {
    const d = distance(name, k);
    if (d < bestDistance) [best, bestDistance] = [k, d];
  }
  if (best !== null && bestDistance <= Math.max(2, Math.floor(name.length / 3))) return best;
  // A setting named by its start (POOL_MEMORY for POOL_MEMORY_BYTES), when only one fits.
  const starts = known.filter((k) => k.startsWith(name) || name.startsWith(k));
  return starts.length === 1 ? starts[0] : null;
}

/** One environment variable as the setting's kind, reported by name when it does not parse. */
function readOne(
  env: NodeJS.ProcessEnv,
  name: string,
  key: string,
  into: Record<string, unknown>,
  problems: string[],
): void {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return;
  const { value, error } = parseValue(SETTINGS[key as keyof typeof SETTINGS].kind, raw);
  if (error) problems.push(`${name} ${error}`);
  else into[key] = value;
}

/**
 * Reads the `<prefix>*` settings of an environment (prefix `POOL_` by default): the module's and top-level
 * ones (`POOL_SIZE`), the profile list (`POOL_PROFILES=python,shell`) and each listed profile's own
 * (`POOL_PROFILE__PYTHON__SIZE`). Unset and empty variables are skipped; values that do not parse are reported
 * by name, and so is every `<prefix>*` variable that is no setting (a profile's variable of a profile not
 * listed, a module-level setting given for a profile).
 */
export function readPoolEnv(env: NodeJS.ProcessEnv, prefix = DEFAULT_ENV_PREFIX): PoolEnvConfig {
  const options: Record<string, unknown> = {};
  const problems: string[] = [];
  const known = Object.keys(SETTINGS).map((key) => envName(key, prefix));
  for (const key of Object.keys(SETTINGS))
    readOne(env, envName(key, prefix), key, options, problems);

  const listName = `${prefix}PROFILES`;
  known.push(listName);
  let profiles: Record<string, Record<string, unknown>> | undefined;
  const list = env[listName];
  if (list !== undefined && list.trim() !== '') {
    profiles = {};
    for (const profile of list
      .split(',')
      .map((p) => p.trim())
      .filter(Boolean)) {
      const own: Record<string, unknown> = {};
      for (const [key, setting] of Object.entries(SETTINGS)) {
        if (setting.module) continue;
        const name = profileEnvName(profile, key, prefix);
        known.push(name);
        readOne(env, name, key, own, problems);
      }
      profiles[profile] = own;
    }
  }
  const knownSet = new Set(known);
  const listed = new Set(Object.keys(profiles ?? {}).map(profileEnvPart));
  const bySuffix = new Map(Object.keys(SETTINGS).map((key) => [envName(key, ''), key]));
  const profileVar = new RegExp(`^${prefix}PROFILE__([A-Z0-9_]+?)__([A-Z0-9_]+)$`);
  const unknown: PoolEnvConfig['unknown'] = [];
  for (const name of Object.keys(env).sort()) {
    if (!name.startsWith(prefix) || knownSet.has(name)) continue;
    if (env[name] === undefined || env[name].trim() === '') continue;
    // A profile's variable: of a profile not listed, or a module-level setting, fails the start.
    const m = profileVar.exec(name);
    const key = m && bySuffix.get(m[2]);
    if (m && key && !listed.has(m[1])) {
      problems.push(
        `${name} is a setting of profile ${m[1].toLowerCase().replace(/_/g, '-')}, which ${listName} ` +
          `does not list (${list?.trim() ? `it lists ${list.trim()}` : 'it is unset'})`,
      );
    } else if (m && key && SETTINGS[key as keyof typeof SETTINGS].module) {
      problems.push(
        `${name}: ${key} is set for the whole module, not per profile: set ${envName(key, prefix)}`,
      );
    } else unknown.push({ name, closest: closestName(name, known) });
  }
  return { options, profiles, problems, unknown, prefix };
}

/** No environment at all (env reading off). */
export const NO_ENV: PoolEnvConfig = {
  options: {},
  problems: [],
  unknown: [],
  prefix: DEFAULT_ENV_PREFIX,
};

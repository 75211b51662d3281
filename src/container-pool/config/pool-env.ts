import { registerAs } from '@nestjs/config';
import { CONTAINER_POOL_CONFIG_NAMESPACE } from '../container-pool.constants';
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

export function splitTokens(text: string): string[] {
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

import { DEFAULT_ENV_PREFIX, profileEnvName } from '../container-pool/config/pool-env';
import { PROFILE_NAME } from '../container-pool/config/resolve-options';

/** The data-science image's default name (what scripts/ensure-images.sh prints as DATASCIENCE_IMAGE). */
export const DATASCIENCE_IMAGE = 'container-pool-datascience:bookworm';

/**
 * The runnable service's `datascience` profile, as POOL_PROFILE__DATASCIENCE__* defaults: the offline data-science
 * image (numpy, pandas, matplotlib; built by `npm run serve` when missing, `npx container-pool image build
 * datascience` otherwise), the runner with those modules pre-imported, and the memory they need.
 */
export function datascienceProfile(env: NodeJS.ProcessEnv): Record<string, string> {
  return {
    image: env.DATASCIENCE_IMAGE?.trim() || DATASCIENCE_IMAGE,
    // Built locally: no registry has it.
    pullPolicy: 'never',
    transport: 'runner',
    size: '1',
    preloadModules: 'numpy,pandas,matplotlib,matplotlib.pyplot',
    memoryBytes: '1GiB',
    tmpSizeBytes: '128MiB',
    workdirSizeBytes: '256MiB',
  };
}

/** What addServiceProfiles() did: the profiles it listed (none: it left the settings as they were), and why not. */
export interface ServiceProfiles {
  profiles: string[];
  skipped?: string;
}

/**
 * The service's profiles when the operator names none (no POOL_PROFILES): the one it had, named by POOL_NAME
 * (`default`) and made by the POOL_* settings as before, and `datascience` (datascienceProfile()); the first is
 * the default profile. Written into `env` as the environment settings they are (POOL_PROFILES,
 * POOL_DEFAULT_PROFILE, POOL_PROFILE__DATASCIENCE__*), each only when the operator did not set it, so
 * POOL_PROFILE__DATASCIENCE__SIZE=0 and the like still apply. `CONTAINER_POOL_DATASCIENCE=0` leaves the profile
 * out (one profile, as before); so does a POOL_NAME that cannot name a profile (it would rename the one there is).
 */
export function addServiceProfiles(env: NodeJS.ProcessEnv = process.env): ServiceProfiles {
  const prefix = DEFAULT_ENV_PREFIX;
  const switchValue = env.CONTAINER_POOL_DATASCIENCE?.trim().toLowerCase() ?? '';
  if (!['', '1', 'true', 'yes', '0', 'false', 'no'].includes(switchValue)) {
    throw new Error(
      `Invalid CONTAINER_POOL_DATASCIENCE: must be 1 or 0, got "${env.CONTAINER_POOL_DATASCIENCE}"`,
    );
  }
  if (['0', 'false', 'no'].includes(switchValue)) {
    return { profiles: [], skipped: 'CONTAINER_POOL_DATASCIENCE=0' };
  }
  if (env[`${prefix}PROFILES`]?.trim()) {
    return { profiles: [], skipped: `${prefix}PROFILES names the profiles` };
  }
  const first = env[`${prefix}NAME`]?.trim() || 'default';
  if (!PROFILE_NAME.test(first) || first === 'datascience') {
    return {
      profiles: [],
      skipped: `${prefix}NAME "${first}" cannot name a profile beside datascience (lower case, digits, -)`,
    };
  }
  const set = (name: string, value: string) => {
    if (!env[name]?.trim()) env[name] = value;
  };
  env[`${prefix}PROFILES`] = `${first},datascience`;
  set(`${prefix}DEFAULT_PROFILE`, first);
  for (const [key, value] of Object.entries(datascienceProfile(env))) {
    set(profileEnvName('datascience', key, prefix), value);
  }
  return { profiles: [first, 'datascience'] };
}

/* The runnable service's profiles: `default` as before and `datascience` when the operator lists none. */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readPoolEnv, resolvePoolOptions } from '../../src/container-pool/config';
import { addServiceProfiles, DATASCIENCE_IMAGE } from '../../src/cli/service-profiles';

const MiB = 1024 * 1024;
const resolved = (env: NodeJS.ProcessEnv) => resolvePoolOptions({}, readPoolEnv(env));

describe('the service profiles', () => {
  it('without POOL_PROFILES: default (the POOL_* settings, as before) and datascience, default the default', () => {
    const env: NodeJS.ProcessEnv = { POOL_IMAGE: 'python:3.13-slim', POOL_SIZE: '3' };
    expect(addServiceProfiles(env)).toEqual({ profiles: ['default', 'datascience'] });
    expect(env.POOL_PROFILES).toBe('default,datascience');
    const o = resolved(env);
    expect(o.defaultProfile).toBe('default');
    expect(o.profiles.map((p) => p.profile)).toEqual(['default', 'datascience']);
    const [def, ds] = o.profiles;
    expect(def).toMatchObject({
      image: 'python:3.13-slim',
      size: 3,
      transport: 'auto',
      preloadModules: [],
      memoryBytes: 256 * MiB,
    });
    expect(ds).toMatchObject({
      image: DATASCIENCE_IMAGE,
      pullPolicy: 'never',
      transport: 'runner',
      size: 1,
      preloadModules: ['numpy', 'pandas', 'matplotlib', 'matplotlib.pyplot'],
      memoryBytes: 1024 * MiB,
      tmpSizeBytes: 128 * MiB,
      workdirSizeBytes: 256 * MiB,
      maxOutputs: 32,
    });
    expect(ds.memoryBytes).toBeGreaterThanOrEqual(512 * MiB);
  });

  it('DATASCIENCE_IMAGE names the image; POOL_PROFILE__DATASCIENCE__* of the operator win', () => {
    const env: NodeJS.ProcessEnv = {
      DATASCIENCE_IMAGE: 'registry.local/ds:1',
      POOL_PROFILE__DATASCIENCE__SIZE: '0',
      POOL_PROFILE__DATASCIENCE__PRELOAD_MODULES: 'numpy',
    };
    addServiceProfiles(env);
    const ds = resolved(env).profiles[1];
    expect(ds).toMatchObject({ image: 'registry.local/ds:1', size: 0, preloadModules: ['numpy'] });
  });

  it('POOL_PROFILES of the operator, or CONTAINER_POOL_DATASCIENCE=0, leave the settings as they are', () => {
    const listed: NodeJS.ProcessEnv = { POOL_PROFILES: 'python', POOL_DEFAULT_PROFILE: 'python' };
    expect(addServiceProfiles(listed)).toMatchObject({ profiles: [] });
    expect(listed).toEqual({ POOL_PROFILES: 'python', POOL_DEFAULT_PROFILE: 'python' });
    for (const off of ['0', 'false', 'no']) {
      const env: NodeJS.ProcessEnv = { CONTAINER_POOL_DATASCIENCE: off };
      expect(addServiceProfiles(env)).toEqual({
        profiles: [],
        skipped: 'CONTAINER_POOL_DATASCIENCE=0',
      });
      expect(resolved(env).profiles.map((p) => p.profile)).toEqual(['default']);
    }
    expect(addServiceProfiles({ CONTAINER_POOL_DATASCIENCE: '1' }).profiles).toHaveLength(2);
    expect(() => addServiceProfiles({ CONTAINER_POOL_DATASCIENCE: 'maybe' })).toThrow(
      /CONTAINER_POOL_DATASCIENCE: must be 1 or 0/,
    );
  });

  it("POOL_NAME names the first profile, as it named the service's one profile; one that cannot leaves it alone", () => {
    const named: NodeJS.ProcessEnv = { POOL_NAME: 'sandbox' };
    expect(addServiceProfiles(named).profiles).toEqual(['sandbox', 'datascience']);
    expect(resolved(named)).toMatchObject({ name: 'sandbox', defaultProfile: 'sandbox' });
    const upper: NodeJS.ProcessEnv = { POOL_NAME: 'My.Pool' };
    expect(addServiceProfiles(upper)).toMatchObject({ profiles: [], skipped: /My\.Pool/ });
    expect(upper.POOL_PROFILES).toBeUndefined();
    expect(resolved(upper).profiles.map((p) => p.profile)).toEqual(['My.Pool']);
  });

  it('scripts/serve.sh builds the data-science image exactly when the service will have the profile', () => {
    // serve.sh decides before the service runs (datascience_profile_wanted in scripts/lib/common.sh)
    const common = join(__dirname, '../../scripts/lib/common.sh');
    const cases: [string, string, string][] = [
      ['', '', ''],
      ['1', '', ''],
      [' Yes ', '', ''],
      ['0', '', ''],
      ['FALSE', '', ''],
      [' no\n', '', ''],
      ['No', '', ''],
      ['maybe', '', ''],
      ['', 'python', ''],
      ['', '  ', ''],
      ['1', '', 'sandbox'],
      ['', '', ' sandbox '],
      ['', '', 'My.Pool'],
      ['', '', 'datascience'],
      ['', '', 'x'.repeat(32)],
    ];
    for (const [sw, profiles, name] of cases) {
      const shell = execFileSync(
        'bash',
        [
          '-c',
          '. "$0"; datascience_profile_wanted "$1" "$2" "$3" && echo yes || echo no',
          common,
          sw,
          profiles,
          name,
        ],
        { encoding: 'utf8', env: { PATH: process.env.PATH } },
      ).trim();
      const env: NodeJS.ProcessEnv = {
        ...(sw && { CONTAINER_POOL_DATASCIENCE: sw }),
        ...(profiles && { POOL_PROFILES: profiles }),
        ...(name && { POOL_NAME: name }),
      };
      let service: string;
      try {
        service = addServiceProfiles(env).profiles.includes('datascience') ? 'yes' : 'no';
      } catch {
        service = 'no'; // the service refuses the switch: it does not start
      }
      expect({ sw, profiles, name, shell }).toEqual({ sw, profiles, name, shell: service });
    }
    expect(readFileSync(join(__dirname, '../../scripts/serve.sh'), 'utf8')).toContain(
      'if datascience_profile_wanted "$ds_switch" "$ds_profiles" "$ds_name"; then',
    );
  });
});

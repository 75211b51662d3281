/**
 * The configuration of profiles: in code (`profiles`) and from the environment (`POOL_PROFILES`,
 * `POOL_PROFILE__<NAME>__<SETTING>`), the fallback to the module-level values, and the validation, every
 * problem in one InvalidPoolConfigError naming the setting.
 */
import {
  profileEnvName,
  readPoolEnv,
  resolveModuleOptions,
  resolvePoolOptions,
} from '../../src/container-pool/config';
import { InvalidPoolConfigError } from '../../src/container-pool/errors/container-pool.errors';
import type {
  ContainerPoolModuleOptions,
  ResolvedContainerPoolOptions,
  ResolvedModuleOptions,
} from '../../src/container-pool/interfaces/container-pool-options.interface';

const MiB = 1024 * 1024;

/** The problems of the one InvalidPoolConfigError `fn` throws. */
function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidPoolConfigError);
    return (err as InvalidPoolConfigError).problems;
  }
  throw new Error('expected InvalidPoolConfigError');
}

function profile(o: ResolvedModuleOptions, name: string): ResolvedContainerPoolOptions {
  const p = o.profiles.find((x) => x.profile === name);
  if (!p) throw new Error(`no profile ${name} in ${o.profiles.map((x) => x.profile).join(', ')}`);
  return p;
}

/** resolveModuleOptions with env reading on, collecting the warnings. */
function fromEnv(env: NodeJS.ProcessEnv, explicit: ContainerPoolModuleOptions = {}) {
  const warnings: string[] = [];
  const options = resolveModuleOptions({ readEnv: true, ...explicit }, env, (m) =>
    warnings.push(m),
  );
  return { options, warnings };
}

describe('profiles configuration', () => {
  // ---------------------------------------------------------------- in code

  describe('in code', () => {
    it('gives each profile its own values, falling back to the module-level ones', () => {
      const o = resolvePoolOptions({
        name: 'mod',
        size: 1,
        maxContainers: 6,
        memoryBytes: '512m',
        maxConcurrentCreates: 3,
        profiles: {
          python: { image: 'py:1', size: 2 },
          shell: { image: 'bb:1', memoryBytes: '192m', maxContainers: 3 },
        },
        defaultProfile: 'python',
      });
      expect(o.profiles.map((p) => p.profile)).toEqual(['python', 'shell']);
      expect(profile(o, 'python')).toMatchObject({
        profile: 'python',
        name: 'mod',
        image: 'py:1',
        size: 2,
        maxContainers: 6,
        memoryBytes: 512 * MiB,
        maxConcurrentCreates: 3,
      });
      expect(profile(o, 'shell')).toMatchObject({
        profile: 'shell',
        name: 'mod',
        image: 'bb:1',
        size: 1,
        maxContainers: 3,
        memoryBytes: 192 * MiB,
        maxConcurrentCreates: 3,
      });
      // Every profile knows the module-wide values; the top level is the default profile's.
      for (const p of o.profiles) {
        expect(p).toMatchObject({ defaultProfile: 'python', maxContainersTotal: 9 });
      }
      expect(o).toMatchObject({ profile: 'python', image: 'py:1', defaultProfile: 'python' });
    });

    it('defaults maxContainersTotal to the sum of maxContainers and takes an explicit one', () => {
      const profiles = { a: { size: 1, maxContainers: 4 }, b: { size: 2, maxContainers: 5 } };
      expect(resolvePoolOptions({ profiles, defaultProfile: 'a' }).maxContainersTotal).toBe(9);
      // Below the sum of maxContainers is fine as long as every size fits.
      expect(
        resolvePoolOptions({ profiles, defaultProfile: 'a', maxContainersTotal: 3 })
          .maxContainersTotal,
      ).toBe(3);
    });

    it('takes one profile without defaultProfile: it is the default', () => {
      const o = resolvePoolOptions({ profiles: { shell: { image: 'bb:1' } } });
      expect(o.profiles).toHaveLength(1);
      expect(o).toMatchObject({ profile: 'shell', defaultProfile: 'shell', name: 'default' });
    });

    it('accepts profile names of lower case, digits and -, up to 31 characters', () => {
      const long = 'a' + 'b-9'.repeat(10);
      expect(long).toHaveLength(31);
      const o = resolvePoolOptions({
        profiles: { 'data-sci': {}, x1: {}, [long]: {} },
        defaultProfile: 'x1',
        size: 0,
      });
      expect(o.profiles.map((p) => p.profile)).toEqual(['data-sci', 'x1', long]);
    });
  });

  // ---------------------------------------------------------------- without profiles

  describe('without profiles', () => {
    it('is one profile named by `name`, the default', () => {
      const o = resolvePoolOptions({ name: 'lab', size: 1, maxContainers: 3 });
      expect(o.profiles).toHaveLength(1);
      expect(o.profiles[0]).toMatchObject({
        profile: 'lab',
        name: 'lab',
        defaultProfile: 'lab',
        maxContainersTotal: 3,
        size: 1,
      });
      expect(o).toMatchObject({ profile: 'lab', defaultProfile: 'lab' });
    });

    it('is named `default` by default, and `name` need not be a profile name', () => {
      expect(resolvePoolOptions().profiles.map((p) => p.profile)).toEqual(['default']);
      // Module names allow upper case, _ and . (the label of earlier versions' containers).
      expect(resolvePoolOptions({ name: 'Lab_1.x' }).profile).toBe('Lab_1.x');
    });

    it('takes module-level settings at the top level', () => {
      const o = resolvePoolOptions({ shutdownGraceMs: 5, replenishIntervalMs: 200 });
      expect(o).toMatchObject({ shutdownGraceMs: 5, replenishIntervalMs: 200 });
    });

    it('ignores POOL_PROFILES when env reading is off', () => {
      const o = resolveModuleOptions({}, { POOL_PROFILES: 'python,shell' }, () => undefined);
      expect(o.profiles.map((p) => p.profile)).toEqual(['default']);
    });

    it('refuses a defaultProfile that names no profile (in code or POOL_DEFAULT_PROFILE)', () => {
      expect(
        problemsOf(() => resolvePoolOptions({ name: 'lab', defaultProfile: 'python' })),
      ).toEqual([
        'defaultProfile (POOL_DEFAULT_PROFILE) "python" needs profiles: without them the module\'s one ' +
          'profile is named by name ("lab")',
      ]);
      // POOL_PROFILES forgotten: the start fails rather than serving the top-level image as `default`.
      expect(problemsOf(() => fromEnv({ POOL_DEFAULT_PROFILE: 'python' }))).toEqual([
        expect.stringContaining('"python" needs profiles'),
      ]);
      expect(resolvePoolOptions({ name: 'lab', defaultProfile: 'lab' }).defaultProfile).toBe('lab');
    });
  });

  // ---------------------------------------------------------------- from the environment

  describe('from the environment', () => {
    it("reads POOL_PROFILES and each profile's POOL_PROFILE__<NAME>__<SETTING>", () => {
      const { options: o, warnings } = fromEnv({
        POOL_PROFILES: 'python, shell',
        POOL_DEFAULT_PROFILE: 'shell',
        POOL_IMAGE: 'python:3.13-slim',
        POOL_SIZE: '1',
        POOL_MEMORY_BYTES: '512m',
        POOL_MAX_CONTAINERS_TOTAL: '15',
        POOL_PROFILE__PYTHON__SIZE: '3',
        POOL_PROFILE__SHELL__IMAGE: 'busybox:1',
        POOL_PROFILE__SHELL__MEMORY_BYTES: '192m',
        POOL_PROFILE__SHELL__SINGLE_USE: 'false',
      });
      expect(warnings).toEqual([]);
      expect(o.profiles.map((p) => p.profile)).toEqual(['python', 'shell']);
      expect(profile(o, 'python')).toMatchObject({
        image: 'python:3.13-slim',
        size: 3,
        memoryBytes: 512 * MiB,
        singleUse: true,
      });
      expect(profile(o, 'shell')).toMatchObject({
        image: 'busybox:1',
        size: 1,
        memoryBytes: 192 * MiB,
        singleUse: false,
      });
      expect(o).toMatchObject({
        profile: 'shell',
        defaultProfile: 'shell',
        maxContainersTotal: 15,
      });
    });

    it("spells a profile's variables upper case with - as _", () => {
      expect(profileEnvName('data-sci', 'memoryBytes')).toBe(
        'POOL_PROFILE__DATA_SCI__MEMORY_BYTES',
      );
      const { options: o } = fromEnv({
        POOL_PROFILES: 'data-sci',
        POOL_PROFILE__DATA_SCI__IMAGE: 'jupyter:1',
      });
      expect(o).toMatchObject({ profile: 'data-sci', image: 'jupyter:1' });
    });

    it('follows readEnv.prefix', () => {
      const { options: o, warnings } = fromEnv(
        { SANDBOX_PROFILES: 'a,b', SANDBOX_DEFAULT_PROFILE: 'b', SANDBOX_PROFILE__A__IMAGE: 'a:1' },
        { readEnv: { prefix: 'SANDBOX_' } },
      );
      expect(warnings).toEqual([]);
      expect(o.profiles.map((p) => [p.profile, p.image])).toEqual([
        ['a', 'a:1'],
        ['b', 'python:3.13-slim'],
      ]);
      expect(o.defaultProfile).toBe('b');
    });

    it("puts a profile's own variable over the top-level option in code, and its option in code over both", () => {
      const { options: o } = fromEnv(
        { POOL_PROFILES: 'python,shell', POOL_PROFILE__SHELL__IMAGE: 'busybox:env' },
        {
          image: 'top:code',
          defaultProfile: 'python',
          size: 0,
        },
      );
      expect(profile(o, 'python').image).toBe('top:code');
      expect(profile(o, 'shell').image).toBe('busybox:env');
      const { options: withOwn } = fromEnv(
        { POOL_PROFILE__SHELL__IMAGE: 'busybox:env', POOL_PROFILES: 'shell' },
        { profiles: { shell: { image: 'busybox:code' } } },
      );
      expect(withOwn.image).toBe('busybox:code');
    });

    it('takes the profiles in code over POOL_PROFILES, warning about the ones only it lists', () => {
      const { options: o, warnings } = fromEnv(
        { POOL_PROFILES: 'only,b', POOL_PROFILE__ONLY__SIZE: '0' },
        { profiles: { only: { image: 'x:1' } } },
      );
      expect(o.profiles.map((p) => p.profile)).toEqual(['only']);
      // Its settings from the environment still apply.
      expect(o).toMatchObject({ image: 'x:1', size: 0 });
      expect(warnings).toEqual([
        'POOL_PROFILES lists b, which the profiles given in code lack: ignored (the profiles in code win; ' +
          'their settings from the environment still apply)',
      ]);
    });

    it('fails the start on a variable of a profile POOL_PROFILES does not list', () => {
      expect(
        problemsOf(() =>
          fromEnv({
            POOL_PROFILES: 'python',
            POOL_PROFILE__PYTHON__IMAGE: 'py:1',
            POOL_PROFILE__SHELL__IMAGE: 'busybox:1',
          }),
        ),
      ).toEqual([
        'POOL_PROFILE__SHELL__IMAGE is a setting of profile shell, which POOL_PROFILES does not list (it lists python)',
      ]);
      // Without POOL_PROFILES at all, and with a - in the name.
      expect(problemsOf(() => fromEnv({ POOL_PROFILE__DATA_SCI__SIZE: '1' }))).toEqual([
        'POOL_PROFILE__DATA_SCI__SIZE is a setting of profile data-sci, which POOL_PROFILES does not list (it is unset)',
      ]);
      // An empty variable is no setting.
      expect(fromEnv({ POOL_PROFILE__SHELL__IMAGE: ' ' }).options.profile).toBe('default');
    });

    it('fails the start on a module-level setting given for a profile, naming the module-level variable', () => {
      expect(
        problemsOf(() =>
          fromEnv({
            POOL_PROFILES: 'x',
            POOL_PROFILE__X__REPLENISH_INTERVAL_MS: '200',
            POOL_PROFILE__X__SHUTDOWN_GRACE_MS: '1',
          }),
        ),
      ).toEqual([
        'POOL_PROFILE__X__REPLENISH_INTERVAL_MS: replenishIntervalMs is set for the whole module, not per ' +
          'profile: set POOL_REPLENISH_INTERVAL_MS',
        'POOL_PROFILE__X__SHUTDOWN_GRACE_MS: shutdownGraceMs is set for the whole module, not per profile: ' +
          'set POOL_SHUTDOWN_GRACE_MS',
      ]);
      // readPoolEnv reads no module-level setting per profile.
      expect(
        readPoolEnv({ POOL_PROFILES: 'x', POOL_PROFILE__X__REPLENISH_INTERVAL_MS: '200' }).profiles,
      ).toEqual({ x: {} });
    });

    it('still only warns about a POOL_* variable that is no setting at all', () => {
      const { warnings } = fromEnv({ POOL_PROFILES: 'x', POOL_SIZ: '1' });
      expect(warnings).toEqual([
        'unknown POOL_* environment variable(s), ignored: POOL_SIZ (did you mean POOL_SIZE?)',
      ]);
    });

    it("names a profile's variable whose value does not parse", () => {
      expect(
        problemsOf(() => fromEnv({ POOL_PROFILES: 'shell', POOL_PROFILE__SHELL__SIZE: 'lots' })),
      ).toEqual(['POOL_PROFILE__SHELL__SIZE must be an integer, got "lots"']);
    });

    it('refuses a POOL_PROFILES that names no profile', () => {
      expect(problemsOf(() => fromEnv({ POOL_PROFILES: ' , ' }))).toContain(
        'profiles must name at least one profile',
      );
    });
  });

  // ---------------------------------------------------------------- validation

  describe('validation', () => {
    const two = { python: { size: 1 }, shell: { size: 1 } };

    it.each([
      ['upper case', 'Python'],
      ['a leading digit', '1shell'],
      ['a leading -', '-shell'],
      ['an underscore', 'data_sci'],
      ['32 characters', 'a'.repeat(32)],
      ['empty', ''],
    ])('refuses a profile name with %s', (_, name) => {
      const problems = problemsOf(() =>
        resolvePoolOptions({ profiles: { [name]: {}, ok: {} }, defaultProfile: 'ok' }),
      );
      expect(problems).toEqual([
        `profile name "${name}" must match /^[a-z][a-z0-9-]{0,30}$/ (lower case, digits, -)`,
      ]);
    });

    it('requires defaultProfile with several profiles, naming them', () => {
      expect(problemsOf(() => resolvePoolOptions({ profiles: two }))).toEqual([
        'defaultProfile (POOL_DEFAULT_PROFILE) is required with several profiles: one of python, shell',
      ]);
    });

    it('refuses a defaultProfile that is no profile, naming the known ones', () => {
      expect(
        problemsOf(() => resolvePoolOptions({ profiles: two, defaultProfile: 'ghost' })),
      ).toEqual([
        'defaultProfile (POOL_DEFAULT_PROFILE) "ghost" is no profile; known: python, shell',
      ]);
    });

    it("refuses a sum of the profiles' size above maxContainersTotal", () => {
      const problems = problemsOf(() =>
        resolvePoolOptions({
          profiles: { python: { size: 3 }, shell: { size: 2 } },
          defaultProfile: 'python',
          maxContainersTotal: 4,
        }),
      );
      expect(problems).toEqual([
        "maxContainersTotal (POOL_MAX_CONTAINERS_TOTAL) (4) must be at least the sum of the profiles' size (5)",
      ]);
      // Equal is fine.
      expect(
        resolvePoolOptions({
          profiles: { python: { size: 3 }, shell: { size: 2 } },
          defaultProfile: 'python',
          maxContainersTotal: 5,
        }).maxContainersTotal,
      ).toBe(5);
    });

    it.each([
      'shutdownGraceMs',
      'replenishIntervalMs',
      'maxConcurrentCreates',
      'maxContainersTotal',
      'requireSeccomp',
      'adminToken',
      'name',
      'docker',
    ])('refuses the module-level setting %s per profile', (key) => {
      const problems = problemsOf(() =>
        resolvePoolOptions({
          profiles: { x: { [key]: key === 'requireSeccomp' ? false : 1000 } },
        }),
      );
      expect(problems).toContain(
        `profiles.x.${key} is set for the whole module, not per profile: give it at the top level`,
      );
    });

    it("names a profile's setting, its variable and the module-level fallback in its problems", () => {
      const problems = problemsOf(() =>
        resolvePoolOptions({
          profiles: {
            shell: { size: -1 },
            python: { size: 5, maxContainers: 4 },
            tiny: { memoryBytes: '1k' },
          },
          defaultProfile: 'python',
        }),
      );
      expect(problems).toEqual(
        expect.arrayContaining([
          'profiles.shell.size (POOL_PROFILE__SHELL__SIZE, or POOL_SIZE) must be at least 0, got -1',
          'profiles.python.size (POOL_PROFILE__PYTHON__SIZE, or POOL_SIZE) (5) must not exceed maxContainers (4)',
          'profiles.tiny.memoryBytes (POOL_PROFILE__TINY__MEMORY_BYTES, or POOL_MEMORY_BYTES) must be at least 6291456, got 1024',
        ]),
      );
    });

    it('finds a module-level value bad for one profile only in that profile', () => {
      // size 3 at the top level: too many for shell's maxContainers 2 only.
      const problems = problemsOf(() =>
        resolvePoolOptions({
          size: 3,
          profiles: { python: {}, shell: { maxContainers: 2 } },
          defaultProfile: 'python',
        }),
      );
      expect(problems).toEqual([
        'profiles.shell.size (POOL_PROFILE__SHELL__SIZE, or POOL_SIZE) (3) must not exceed maxContainers (2)',
      ]);
    });

    it('refuses an unknown option in a profile', () => {
      expect(
        problemsOf(() => resolvePoolOptions({ profiles: { x: { imag: 'typo' } as never } })),
      ).toEqual(['profiles.x: unknown option "imag"']);
    });

    it('refuses profiles that are no object, or none', () => {
      expect(problemsOf(() => resolvePoolOptions({ profiles: {} }))).toEqual([
        'profiles must name at least one profile',
      ]);
      expect(problemsOf(() => resolvePoolOptions({ profiles: 'python' as never }))).toContain(
        'profiles must be an object of profile name -> options',
      );
    });

    it('reports every problem of every profile in the one error', () => {
      const problems = problemsOf(() =>
        resolvePoolOptions({
          maxContainersTotal: 1,
          profiles: {
            Bad: {},
            python: { size: 2, shutdownGraceMs: 1 } as never,
            shell: { size: 1, user: '0:0' },
          },
        }),
      );
      expect(problems).toEqual(
        expect.arrayContaining([
          expect.stringContaining('profile name "Bad"'),
          expect.stringContaining('profiles.python.shutdownGraceMs is set for the whole module'),
          expect.stringContaining(
            'profiles.shell.user (POOL_PROFILE__SHELL__USER, or POOL_USER) must not be root',
          ),
          expect.stringContaining('defaultProfile (POOL_DEFAULT_PROFILE) is required'),
          expect.stringContaining("must be at least the sum of the profiles' size (3)"),
        ]),
      );
      expect(problems).toHaveLength(5);
    });
  });
});

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Test } from '@nestjs/testing';
import {
  DEFAULT_OPTIONS,
  envName,
  readPoolEnv,
  resolveModuleOptions,
  resolvePoolOptions,
  SETTINGS,
} from '../../src/container-pool/config';
import { ContainerPoolModule } from '../../src/container-pool/container-pool.module';
import { ContainerPoolService } from '../../src/container-pool/container-pool.service';
import { CONTAINER_DRIVER } from '../../src/container-pool/container-pool.constants';
import { InvalidPoolConfigError } from '../../src/container-pool/errors/container-pool.errors';
import { FakeDriver } from '../support/fake-driver';

function problemsOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidPoolConfigError);
    return (err as Error).message;
  }
  throw new Error('expected InvalidPoolConfigError');
}

describe('pool configuration', () => {
  it('uses the documented defaults', () => {
    const o = resolvePoolOptions();
    expect(o).toMatchObject({
      image: 'python:3.13-slim',
      size: 2,
      maxContainers: 10,
      maxConcurrentCreates: 2,
      acquireTimeoutMs: 30_000,
      maxOutputBytes: 1024 * 1024,
      memoryBytes: 256 * 1024 * 1024,
      nanoCpus: 1e9,
      pidsLimit: 128,
      nofileLimit: 256,
      user: '65534:65534',
      pullPolicy: 'if-not-present',
    });
  });

  it('reads POOL_* settings, with units', () => {
    const env = readPoolEnv({
      POOL_SIZE: '0',
      POOL_MAX_CONTAINERS: '16',
      POOL_MEMORY_BYTES: '512m',
      POOL_TMP_SIZE_BYTES: '32MiB',
      POOL_SINGLE_USE: 'false',
      POOL_PULL_POLICY: 'never',
      POOL_PYTHON_COMMAND: 'python3 -I',
      POOL_RUNTIME: '',
    });
    expect(env.problems).toEqual([]);
    expect(env.options).toEqual({
      size: 0,
      maxContainers: 16,
      memoryBytes: 512 * 1024 * 1024,
      tmpSizeBytes: 32 * 1024 * 1024,
      singleUse: false,
      pullPolicy: 'never',
      pythonCommand: ['python3', '-I'],
    });
  });

  it('gives explicit options precedence over the environment over defaults', () => {
    const o = resolvePoolOptions(
      { size: 3 },
      readPoolEnv({ POOL_SIZE: '1', POOL_MAX_CONTAINERS: '5' }),
    );
    expect(o.size).toBe(3);
    expect(o.maxContainers).toBe(5);
    expect(o.acquireTimeoutMs).toBe(DEFAULT_OPTIONS.acquireTimeoutMs);
  });

  it.each([
    [{ POOL_SIZE: 'ten' }, /POOL_SIZE must be an integer, got "ten"/],
    [{ POOL_SIZE: '11' }, /size \(POOL_SIZE\) \(11\) must not exceed maxContainers \(10\)/],
    [{ POOL_MEMORY_BYTES: '-5' }, /memoryBytes \(POOL_MEMORY_BYTES\) must be at least/],
    [
      { POOL_PULL_POLICY: 'sometimes' },
      /pullPolicy \(POOL_PULL_POLICY\) must be one of if-not-present, always, never/,
    ],
    [{ POOL_MEMORY_BYTES: '128m' }, /tmpSizeBytes .* must be below memoryBytes/],
    [{ POOL_USER: '0:0' }, /user \(POOL_USER\) must not be root/],
    [{ POOL_USER: '00:00' }, /user \(POOL_USER\) must not be root/],
    [{ POOL_USER: '0000' }, /user \(POOL_USER\) must not be root/],
    [{ POOL_USER: '65534:00' }, /user \(POOL_USER\) must not be root/],
    [{ POOL_USER: '000:65534' }, /user \(POOL_USER\) must not be root/],
    [{ POOL_USER: '4294967296:65534' }, /user \(POOL_USER\) must have uid and gid of at most/],
    [{ POOL_SINGLE_USE: 'maybe' }, /POOL_SINGLE_USE must be true or false/],
    [{ POOL_EXEC_TIMEOUT_MS: '400000' }, /execTimeoutMs .* must not exceed maxExecTimeoutMs/],
    [{ POOL_CONTAINER_LIFETIME_MS: '60000' }, /containerLifetimeMs .* must be at least/],
  ])('rejects %j naming the setting', (env, message) => {
    expect(problemsOf(() => resolvePoolOptions({}, readPoolEnv(env)))).toMatch(message);
  });

  it('rejects bad explicit options naming the option', () => {
    expect(problemsOf(() => resolvePoolOptions({ maxContainers: 0 }))).toMatch(/maxContainers/);
    expect(problemsOf(() => resolvePoolOptions({ size: 1.5 }))).toMatch(
      /size .* must be an integer/,
    );
    expect(problemsOf(() => resolvePoolOptions({ nope: 1 } as never))).toMatch(
      /unknown option "nope"/,
    );
    expect(resolvePoolOptions({ size: 0 }).size).toBe(0);
  });

  it('profiles from the environment: a variable of an unlisted profile or a module-level one fails the start', () => {
    const env = (vars: Record<string, string>) => () =>
      resolveModuleOptions({ readEnv: true }, vars, () => undefined);
    const ok = env({
      POOL_PROFILES: 'python,data-sci',
      POOL_DEFAULT_PROFILE: 'python',
      POOL_SIZE: '1',
      POOL_PROFILE__DATA_SCI__SIZE: '3',
    })();
    expect(ok.profiles.map((p) => [p.profile, p.size])).toEqual([
      ['python', 1],
      ['data-sci', 3],
    ]);
    expect(
      problemsOf(env({ POOL_PROFILES: 'python', POOL_PROFILE__SHELL__IMAGE: 'busybox' })),
    ).toMatch(
      /POOL_PROFILE__SHELL__IMAGE is a setting of profile shell, which POOL_PROFILES does not list \(it lists python\)/,
    );
    expect(problemsOf(env({ POOL_PROFILE__SHELL__IMAGE: 'busybox' }))).toMatch(/it is unset/);
    expect(
      problemsOf(env({ POOL_PROFILES: 'shell', POOL_PROFILE__SHELL__MAX_CONTAINERS_TOTAL: '4' })),
    ).toMatch(
      /POOL_PROFILE__SHELL__MAX_CONTAINERS_TOTAL: maxContainersTotal is set for the whole module, not per profile: set POOL_MAX_CONTAINERS_TOTAL/,
    );
    expect(
      problemsOf(env({ POOL_PROFILES: 'shell', POOL_PROFILE__SHELL__ADMIN_TOKEN: 'x'.repeat(20) })),
    ).toMatch(/adminToken is set for the whole module/);
    // Without profiles, defaultProfile names nothing: an error, not silently replaced.
    expect(problemsOf(() => resolvePoolOptions({ defaultProfile: 'python' }))).toMatch(
      /defaultProfile .*"python" needs profiles/,
    );
    // The work dir's tmpfs must not shadow (or be shadowed by) a runner's direct channel directory.
    for (const workdir of [
      '/run/container-pool',
      '/run/container-pool/',
      '/run/container-pool/w',
      '/run',
    ]) {
      expect(problemsOf(() => resolvePoolOptions({ workdir }))).toMatch(
        /workdir .*must not be, contain or lie in \/run\/container-pool/,
      );
    }
    expect(() => resolvePoolOptions({ workdir: '/run/other' })).not.toThrow();
    // Profiles in code win over POOL_PROFILES: the ones only the environment lists are ignored, with a warning.
    const warnings: string[] = [];
    resolveModuleOptions(
      { readEnv: true, profiles: { python: {} } },
      { POOL_PROFILES: 'python,shell' },
      (m) => warnings.push(m),
    );
    expect(warnings.join('\n')).toMatch(
      /POOL_PROFILES lists shell, which the profiles given in code lack/,
    );
  });

  it('fails the module at startup with the setting named', async () => {
    const builder = Test.createTestingModule({
      imports: [ContainerPoolModule.forRoot({ size: 20, maxContainers: 5 })],
    })
      .overrideProvider(CONTAINER_DRIVER)
      .useValue(new FakeDriver());
    await expect(builder.compile()).rejects.toThrow(
      /size \(POOL_SIZE\) \(20\) must not exceed maxContainers \(5\)/,
    );
  });

  it('supports forRootAsync with injected factories', async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [
        ContainerPoolModule.forRootAsync({
          useFactory: () => ({ name: 'async', size: 0, image: 'x:1' }),
        }),
      ],
    })
      .overrideProvider(CONTAINER_DRIVER)
      .useValue(new FakeDriver())
      .compile();
    const pool = moduleRef.get(ContainerPoolService);
    expect(pool.stats()).toMatchObject({ name: 'async', size: 0, image: 'x:1' });
  });

  it('documents every setting in .env.example with its default', () => {
    const example = readFileSync(join(__dirname, '../../.env.example'), 'utf8');
    for (const key of Object.keys(SETTINGS)) {
      const name = envName(key);
      const line = example.split('\n').find((l) => l.replace(/^#\s*/, '').startsWith(`${name}=`));
      expect(line).toBeDefined();
      const def = (DEFAULT_OPTIONS as unknown as Record<string, unknown>)[key];
      const shown = line!.replace(/^#\s*/, '').slice(name.length + 1);
      if (Array.isArray(def) && def.length === 0) {
        expect(shown).toBe('');
      } else if (def !== undefined) {
        const parsed = readPoolEnv({ [name]: shown }).options as Record<string, unknown>;
        expect(parsed[key]).toEqual(def);
      }
    }
  });
});

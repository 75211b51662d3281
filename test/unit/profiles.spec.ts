/**
 * Profiles through Nest on a FakeDriver: the registry (one ContainerPool per profile on one driver), the service
 * facade (pool(name), profiles(), a `profile` in run/acquire/withContainer), injection by name
 * (@InjectContainerPool, getContainerPoolToken) from forRoot and forRootAsync, unknown profiles, a profile
 * degraded on its own, the events' `profile` and the sweep set shared by the profiles.
 */
import { Injectable, type INestApplication, type ModuleMetadata } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import {
  CONTAINER_DRIVER,
  getContainerPoolToken,
  LABELS,
} from '../../src/container-pool/container-pool.constants';
import { InjectContainerPool } from '../../src/container-pool/container-pool.decorators';
import { ContainerPoolModule } from '../../src/container-pool/container-pool.module';
import { ContainerPoolService } from '../../src/container-pool/container-pool.service';
import {
  ImageUnavailableError,
  InvalidRequestError,
  UnknownProfileError,
} from '../../src/container-pool/errors/container-pool.errors';
import type { ContainerPoolModuleOptions } from '../../src/container-pool/interfaces/container-pool-options.interface';
import type { ContainerPoolEventMap } from '../../src/container-pool/interfaces/events.interface';
import { ContainerPool } from '../../src/container-pool/profiles/container-pool';
import { FakeDriver, type FakeContainer } from '../support/fake-driver';
import { waitFor } from '../support/pool-testing';

const PYTHON = 'python:fake';
const SHELL = 'busybox:fake';

/** Two profiles of one module (named `mod`), python the default. */
function twoProfiles(overrides: ContainerPoolModuleOptions = {}): ContainerPoolModuleOptions {
  return {
    name: 'mod',
    replenishIntervalMs: 60_000,
    maxContainers: 4,
    profiles: {
      python: { image: PYTHON, size: 1 },
      shell: { image: SHELL, size: 1 },
    },
    defaultProfile: 'python',
    ...overrides,
  };
}

/** A provider of the host app that injects the profiles by name. */
@Injectable()
class Consumer {
  constructor(
    @InjectContainerPool('shell') readonly shell: ContainerPool,
    @InjectContainerPool('python') readonly python: ContainerPool,
    @InjectContainerPool() readonly byDefault: ContainerPool,
  ) {}
}

describe('profiles (fake driver)', () => {
  const apps: INestApplication[] = [];
  const drivers: FakeDriver[] = [];

  afterEach(async () => {
    // Held creates would keep the shutdown waiting: let them finish.
    for (const d of drivers.splice(0)) {
      d.manualCreates = false;
      for (const p of [...d.pendingCreates]) p.succeed();
    }
    for (const app of apps.splice(0)) await app.close();
  });

  async function boot(
    imports: ModuleMetadata['imports'],
    driver = new FakeDriver(),
    providers: ModuleMetadata['providers'] = [],
  ) {
    drivers.push(driver);
    const moduleRef = await Test.createTestingModule({ imports, providers })
      .overrideProvider(CONTAINER_DRIVER)
      .useValue(driver)
      .compile();
    const app = moduleRef.createNestApplication({ logger: false });
    apps.push(app);
    await app.init();
    return { app, svc: app.get(ContainerPoolService), driver };
  }

  const bootRoot = (options: ContainerPoolModuleOptions, driver?: FakeDriver) =>
    boot([ContainerPoolModule.forRoot(options)], driver, [Consumer]);

  /** Both profiles filled to their size. */
  async function filled(svc: ContainerPoolService) {
    await svc.initialize();
    await waitFor(
      () => svc.profiles().every((p) => p.stats.idle === p.stats.size),
      2_000,
      'every profile filled',
    );
  }

  // ---------------------------------------------------------------- registry

  it('serves two profiles at once, each with its own image, labels and names', async () => {
    const driver = new FakeDriver();
    const images: string[] = [];
    let release!: () => void;
    const bothRunning = new Promise<void>((r) => (release = r));
    driver.execBehaviour = async (_req, c: FakeContainer) => {
      images.push(c.spec.image.replace('sha256:fake-', ''));
      if (images.length === 2) release();
      // Each execution waits for the other: they run at the same time.
      await bothRunning;
      return {
        exitCode: 0,
        stdout: Buffer.from(
          `${c.spec.image.replace('sha256:fake-', '')} ${c.spec.labels[LABELS.profile]}`,
        ),
        stderr: Buffer.alloc(0),
        truncated: false,
        aborted: false,
      };
    };
    const { svc } = await bootRoot(twoProfiles(), driver);
    await filled(svc);

    const [py, sh] = await Promise.all([
      svc.run({ cmd: ['true'], profile: 'python' }),
      svc.run({ cmd: ['true'], profile: 'shell' }),
    ]);
    expect(py.stdout).toBe(`${PYTHON} python`);
    expect(sh.stdout).toBe(`${SHELL} shell`);
    expect(images.sort()).toEqual([SHELL, PYTHON].sort());

    // Every container on the one driver: the module's pool label, its profile's label, image and name.
    const byProfile = (p: string) =>
      driver.created.filter((c) => c.spec.labels[LABELS.profile] === p);
    for (const [profile, image] of [
      ['python', PYTHON],
      ['shell', SHELL],
    ]) {
      const made = byProfile(profile);
      expect(made.length).toBeGreaterThanOrEqual(1);
      for (const c of made) {
        expect(c.spec.image).toBe(`sha256:fake-${image}`);
        expect(c.spec.labels[LABELS.pool]).toBe('mod');
        expect(c.spec.labels[LABELS.owner]).toBe(svc.instanceId);
        expect(c.name).toMatch(new RegExp(`^cpool-mod-${profile}-`));
      }
    }
    expect(driver.created).toHaveLength(byProfile('python').length + byProfile('shell').length);
    expect([...new Set(driver.ensuredImages)].sort()).toEqual([SHELL, PYTHON].sort());
  });

  it('resolves initialize() once the default profile is full, the create slots shared round-robin', async () => {
    const { svc } = await bootRoot(
      twoProfiles({
        maxConcurrentCreates: 1,
        profiles: { python: { image: PYTHON, size: 3 }, shell: { image: SHELL, size: 3 } },
      }),
    );
    await svc.initialize();
    expect(svc.pool('python').stats()).toMatchObject({ idle: 3, creating: 0 });
    // replenish() of a profile likewise waits for its turns.
    svc.pool('shell').resize({ size: 4 });
    await svc.pool('shell').replenish();
    expect(svc.pool('shell').stats()).toMatchObject({ idle: 4 });
  });

  it('profiles() and profileNames() describe every profile, the default one first', async () => {
    const { svc } = await bootRoot(twoProfiles({ defaultProfile: 'shell' }));
    await filled(svc);
    expect(svc.profileNames()).toEqual(['shell', 'python']);
    const infos = Object.fromEntries(svc.profiles().map((p) => [p.name, p]));
    expect(infos.python).toMatchObject({
      name: 'python',
      image: PYTHON,
      imageId: `sha256:fake-${PYTHON}`,
      transport: 'exec',
      ready: true,
      stats: { profile: 'python', name: 'mod', image: PYTHON, idle: 1, size: 1 },
    });
    expect(infos.shell).toMatchObject({
      name: 'shell',
      image: SHELL,
      imageId: `sha256:fake-${SHELL}`,
      ready: true,
      stats: { profile: 'shell', idle: 1 },
    });
    // The methods without a profile are the default profile's.
    expect(svc.stats().profile).toBe('shell');
    expect(svc.pool()).toBe(svc.pool('shell'));
    expect(svc.options.profile).toBe('shell');
  });

  it("keeps each profile's operations to itself and releases a container into its own profile", async () => {
    const { svc } = await bootRoot(twoProfiles());
    await filled(svc);
    const c = await svc.acquire({ profile: 'shell' });
    expect(svc.pool('shell').stats()).toMatchObject({ leased: 1 });
    expect(svc.pool('python').stats()).toMatchObject({ leased: 0, idle: 1 });
    expect(() => svc.pool('python').release(c)).toThrow(InvalidRequestError);
    svc.release(c);
    expect(svc.pool('shell').stats().leased).toBe(0);

    // withContainer with a profile hands out that profile's container.
    const image = await svc.withContainer(
      (x) =>
        svc
          .pool('shell')
          .containers()
          .find((row) => row.id === x.id)?.image,
      { profile: 'shell' },
    );
    expect(image).toBe(SHELL);

    // Resizing one profile leaves the other alone.
    svc.pool('shell').resize({ size: 2 });
    await svc.pool('shell').replenish();
    expect(svc.pool('shell').stats()).toMatchObject({ size: 2, idle: 2 });
    expect(svc.pool('python').stats()).toMatchObject({ size: 1, idle: 1 });
    await svc.pool('python').drain();
    expect(svc.pool('python').stats().draining).toBe(true);
    expect(svc.pool('shell').stats().draining).toBe(false);
  });

  it("forwards every profile's events with its name as `profile`", async () => {
    const { svc } = await bootRoot(twoProfiles());
    const seen: { event: keyof ContainerPoolEventMap; profile?: string }[] = [];
    for (const event of ['acquired', 'created', 'executed', 'destroyed'] as const) {
      svc.events.on(event, (payload: { profile?: string }) =>
        seen.push({ event, profile: payload.profile }),
      );
    }
    await filled(svc);
    await svc.run({ cmd: ['true'], profile: 'shell' });
    await svc.run({ cmd: ['true'] });
    await waitFor(
      () => seen.filter((e) => e.event === 'destroyed').length === 2,
      2_000,
      'removals',
    );
    for (const profile of ['python', 'shell']) {
      for (const event of ['acquired', 'created', 'executed', 'destroyed'] as const) {
        expect(seen).toContainEqual({ event, profile });
      }
    }
    expect(seen.every((e) => e.profile === 'python' || e.profile === 'shell')).toBe(true);
    // One execution each, in the order they ran, under its own profile.
    expect(seen.filter((e) => e.event === 'executed')).toEqual([
      { event: 'executed', profile: 'shell' },
      { event: 'executed', profile: 'python' },
    ]);
  });

  it("sweeps the module's leftovers, sparing what another profile of the module is creating", async () => {
    const driver = new FakeDriver();
    driver.manualCreates = true;
    // The default profile sweeps for the module; its image is missing at first, so shell creates first.
    driver.missingImages.add(PYTHON);
    const { svc } = await bootRoot(twoProfiles(), driver);
    await expect(svc.initialize()).rejects.toBeInstanceOf(ImageUnavailableError);
    await waitFor(() => driver.pendingCreates.length === 1, 2_000, "shell's create");
    const held = driver.pendingCreates[0].spec;
    expect(held.labels[LABELS.profile]).toBe('shell');
    const labels = {
      [LABELS.managedBy]: 'container-pool',
      [LABELS.pool]: 'mod',
      [LABELS.owner]: svc.instanceId,
    };
    // As the engine lists them: shell's create in flight (not running yet), and a dead one nobody holds.
    driver.listed = [
      { id: 'held-1', name: held.name, state: 'created', labels, createdAt: new Date() },
      { id: 'dead-1', name: 'cpool-mod-shell-x-9', state: 'exited', labels, createdAt: new Date() },
    ];
    // python's image arrives: its preparation sweeps the module's leftovers.
    driver.missingImages.delete(PYTHON);
    void svc
      .pool('python')
      .replenish()
      .catch(() => undefined);
    await waitFor(() => driver.removeCounts.has('dead-1'), 2_000, 'the sweep');
    expect(driver.removeCounts.has('held-1')).toBe(false);
    expect(svc.pool('python').stats().totals.orphansRemoved).toBe(1);
  });

  it('without profiles is one profile named by `name`, labelled and named as before', async () => {
    const { svc, driver } = await boot([
      ContainerPoolModule.forRoot({ name: 'lab', size: 1, replenishIntervalMs: 60_000 }),
    ]);
    await svc.initialize();
    expect(svc.profileNames()).toEqual(['lab']);
    const [c] = driver.created;
    expect(c.spec.labels).toMatchObject({ [LABELS.pool]: 'lab', [LABELS.profile]: 'lab' });
    // No profile part in the name: `cpool-<pool>-<instance>-<n>`.
    expect(c.name).toMatch(new RegExp(`^cpool-lab-${svc.instanceId.slice(0, 8)}-\\d+$`));
    expect(svc.pool('lab')).toBe(svc.pool());
  });

  it.each<[string, ContainerPoolModuleOptions]>([
    ['without profiles', { maxContainers: 6 }],
    ['with one profile', { profiles: { only: { maxContainers: 6 } } }],
  ])('holds maxContainersTotal below maxContainers %s', async (_, options) => {
    const { svc, driver } = await boot([
      ContainerPoolModule.forRoot({
        size: 0,
        replenishIntervalMs: 60_000,
        maxContainersTotal: 2,
        ...options,
      }),
    ]);
    await svc.initialize();
    await svc.acquire();
    await svc.acquire();
    const third = svc.acquire({ timeoutMs: 200 });
    await expect(third).rejects.toThrow(/within 200 ms/);
    expect(driver.createCalls).toBe(2);
  });

  // ---------------------------------------------------------------- injection

  describe('injection by name', () => {
    function expectInjected(app: INestApplication, svc: ContainerPoolService) {
      const consumer = app.get(Consumer);
      expect(consumer.shell).toBeInstanceOf(ContainerPool);
      expect(consumer.shell).toBe(svc.pool('shell'));
      expect(consumer.python).toBe(svc.pool('python'));
      expect(consumer.byDefault).toBe(svc.pool());
      expect(consumer.byDefault).toBe(svc.pool('python'));
      expect(consumer.shell).not.toBe(consumer.python);
      expect(app.get(getContainerPoolToken('shell'))).toBe(svc.pool('shell'));
      expect(app.get(getContainerPoolToken('python'))).toBe(svc.pool('python'));
      expect(app.get(getContainerPoolToken())).toBe(svc.pool('python'));
      expect(consumer.shell.name).toBe('shell');
      expect(consumer.shell.options.image).toBe(SHELL);
    }

    it('forRoot provides every profile given in code', async () => {
      const { app, svc } = await bootRoot(twoProfiles());
      expectInjected(app, svc);
      // The injected pool serves its profile.
      await svc.initialize();
      const c = await app.get(Consumer).shell.acquire();
      expect(svc.pool('shell').stats().leased).toBe(1);
      svc.release(c);
    });

    it('forRoot provides every profile the environment lists (readEnv)', async () => {
      const saved = { ...process.env };
      Object.assign(process.env, {
        POOL_PROFILES: 'python,shell',
        POOL_PROFILE__PYTHON__IMAGE: PYTHON,
        POOL_PROFILE__SHELL__IMAGE: SHELL,
        POOL_DEFAULT_PROFILE: 'python',
        POOL_NAME: 'mod',
        POOL_SIZE: '0',
        POOL_REPLENISH_INTERVAL_MS: '60000',
      });
      try {
        const { app, svc } = await bootRoot({ readEnv: true });
        expectInjected(app, svc);
        expect(svc.profileNames()).toEqual(['python', 'shell']);
      } finally {
        for (const key of Object.keys(process.env)) if (!(key in saved)) delete process.env[key];
        Object.assign(process.env, saved);
      }
    });

    it('forRootAsync provides the profiles listed in profileNames', async () => {
      const { app, svc } = await boot(
        [
          ContainerPoolModule.forRootAsync({
            useFactory: () => Promise.resolve(twoProfiles()),
            profileNames: ['python', 'shell'],
          }),
        ],
        new FakeDriver(),
        [Consumer],
      );
      expectInjected(app, svc);
    });

    it('forRootAsync without profileNames provides only the default token', async () => {
      const { app, svc } = await boot([
        ContainerPoolModule.forRootAsync({ useFactory: () => twoProfiles() }),
      ]);
      expect(app.get(getContainerPoolToken())).toBe(svc.pool('python'));
      expect(() => app.get(getContainerPoolToken('shell'))).toThrow();
    });

    it('fails the start when profileNames lists a profile the options lack', async () => {
      const compile = (imports: ModuleMetadata['imports']) =>
        Test.createTestingModule({ imports })
          .overrideProvider(CONTAINER_DRIVER)
          .useValue(new FakeDriver())
          .compile();
      const err = await compile([
        ContainerPoolModule.forRootAsync({
          useFactory: () => twoProfiles(),
          profileNames: ['python', 'ghost'],
        }),
      ]).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UnknownProfileError);
      expect(err).toMatchObject({
        code: 'UNKNOWN_PROFILE',
        profile: 'ghost',
        known: ['python', 'shell'],
      });
      const fromForRoot = await compile([
        ContainerPoolModule.forRoot({ ...twoProfiles(), profileNames: ['ghost'] }),
      ]).catch((e: unknown) => e);
      expect(fromForRoot).toBeInstanceOf(UnknownProfileError);
    });
  });

  // ---------------------------------------------------------------- unknown profiles

  it('refuses an unknown profile with UnknownProfileError naming the known ones', async () => {
    const { svc, driver } = await bootRoot(twoProfiles());
    await filled(svc);
    const created = driver.createCalls;
    const check = (err: unknown) => {
      expect(err).toBeInstanceOf(UnknownProfileError);
      expect(err).toMatchObject({
        code: 'UNKNOWN_PROFILE',
        field: 'profile',
        profile: 'nope',
        known: ['python', 'shell'],
      });
      expect((err as Error).message).toContain('"python", "shell"');
      expect((err as Error).message).toContain('"nope"');
    };
    check(await svc.run({ cmd: ['true'], profile: 'nope' }).catch((e: unknown) => e));
    check(await svc.acquire({ profile: 'nope' }).catch((e: unknown) => e));
    const fn = jest.fn();
    check(await svc.withContainer(fn, { profile: 'nope' }).catch((e: unknown) => e));
    expect(fn).not.toHaveBeenCalled();
    let thrown: unknown;
    try {
      svc.pool('nope');
    } catch (e) {
      thrown = e;
    }
    check(thrown);
    // Nothing was taken or made for them.
    expect(driver.createCalls).toBe(created);
    expect(svc.profiles().map((p) => p.stats.leased)).toEqual([0, 0]);
  });

  // ---------------------------------------------------------------- degraded profile

  it('degrades only the profile whose image is missing: its acquires fail fast, the other serves', async () => {
    const driver = new FakeDriver();
    driver.missingImages.add(SHELL);
    const { svc } = await bootRoot(twoProfiles(), driver);
    // The module's start waits for the default profile only.
    await expect(svc.initialize()).resolves.toBeUndefined();
    await waitFor(() => svc.pool('shell').stats().lastError !== null, 2_000, 'shell failing');

    const t0 = Date.now();
    const err = await svc.acquire({ profile: 'shell' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ImageUnavailableError);
    expect((err as Error).message).toContain(SHELL);
    await expect(svc.run({ cmd: ['true'], profile: 'shell' })).rejects.toBeInstanceOf(
      ImageUnavailableError,
    );
    expect(Date.now() - t0).toBeLessThan(500);

    const result = await svc.run({ cmd: ['echo', 'hi'], profile: 'python' });
    expect(result).toMatchObject({ exitCode: 0, stdout: 'ran echo hi\n' });
    await expect(svc.run({ cmd: ['true'] })).resolves.toMatchObject({ exitCode: 0 });
    const ready = Object.fromEntries(svc.profiles().map((p) => [p.name, p.ready]));
    expect(ready).toEqual({ python: true, shell: false });
    expect(driver.created.every((c) => c.spec.image === `sha256:fake-${PYTHON}`)).toBe(true);

    // The image arrives: shell recovers by itself.
    driver.missingImages.delete(SHELL);
    await waitFor(() => svc.pool('shell').stats().idle === 1, 3_000, 'shell recovering');
    expect(svc.profiles().every((p) => p.ready)).toBe(true);
  });

  it("fails the module's start when the default profile's image is missing, while the other serves", async () => {
    const driver = new FakeDriver();
    driver.missingImages.add(PYTHON);
    const { svc } = await bootRoot(twoProfiles(), driver);
    await expect(svc.initialize()).rejects.toBeInstanceOf(ImageUnavailableError);
    await waitFor(() => svc.pool('shell').stats().idle === 1, 2_000, 'shell filled');
    await expect(svc.run({ cmd: ['true'], profile: 'shell' })).resolves.toMatchObject({
      exitCode: 0,
    });
    await expect(svc.run({ cmd: ['true'] })).rejects.toBeInstanceOf(ImageUnavailableError);
    const ready = Object.fromEntries(svc.profiles().map((p) => [p.name, p.ready]));
    expect(ready).toEqual({ python: false, shell: true });
  });
});

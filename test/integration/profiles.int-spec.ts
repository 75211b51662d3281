import type { ChildProcess } from 'node:child_process';
import { Injectable, INestApplication, Module } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import request from 'supertest';
import { getContainerPoolToken } from '../../src/container-pool/container-pool.constants';
import { InjectContainerPool } from '../../src/container-pool/container-pool.decorators';
import { ContainerPoolModule } from '../../src/container-pool/container-pool.module';
import { ContainerPoolService } from '../../src/container-pool/container-pool.service';
import {
  ImageUnavailableError,
  UnknownProfileError,
} from '../../src/container-pool/errors/container-pool.errors';
import type { Container } from '../../src/container-pool/interfaces/container.interface';
import type { ContainerPool } from '../../src/container-pool/profiles/container-pool';
import {
  BUSYBOX_IMAGE,
  docker,
  engineContainers,
  eventually,
  expectNoContainersLeft,
  SANDBOX_IMAGE,
  startPool,
  startPoolHost,
  uniquePoolName,
} from '../support/integration';

const PROFILE_LABEL = 'io.container-pool.profile';
const TOKEN = 'profiles-admin-token-0123456789';
const auth = { Authorization: `Bearer ${TOKEN}` };

/** Several named profiles in one module, on the real engine: the Python sandbox image and busybox. */
describe('profiles on a real engine', () => {
  describe('python and shell in one module', () => {
    let app: INestApplication;
    let svc: ContainerPoolService;
    let name: string;

    beforeAll(async () => {
      ({
        app,
        pool: svc,
        name,
      } = await startPool({
        size: 0,
        profiles: {
          python: { image: SANDBOX_IMAGE, size: 1, maxContainers: 3 },
          shell: {
            image: BUSYBOX_IMAGE,
            size: 1,
            maxContainers: 2,
            memoryBytes: 64 * 1024 * 1024,
            tmpSizeBytes: 8 * 1024 * 1024,
            workdirSizeBytes: 8 * 1024 * 1024,
            shmSizeBytes: 1024 * 1024,
          },
        },
        defaultProfile: 'python',
        http: true,
        adminToken: TOKEN,
      }));
      await svc.initialize();
      await eventually(() => svc.pool('shell').stats().idle === 1, 20_000, 'shell filled');
    });

    afterAll(async () => {
      await app?.close();
      await expectNoContainersLeft(name);
    });

    it('each profile keeps its own warm containers, labelled with the profile and of its image', async () => {
      const listed = await engineContainers(name, { 'io.container-pool.owner': svc.instanceId });
      const byProfile = (p: string) => listed.filter((c) => c.Labels[PROFILE_LABEL] === p);
      expect(byProfile('python').length).toBeGreaterThanOrEqual(1);
      expect(byProfile('shell').length).toBeGreaterThanOrEqual(1);
      for (const c of byProfile('python')) expect(c.Image).toBe(SANDBOX_IMAGE);
      for (const c of byProfile('shell')) expect(c.Image).toBe(BUSYBOX_IMAGE);
      for (const c of listed) expect(c.Labels['io.container-pool.pool']).toBe(name);

      const infos = svc.profiles();
      expect(infos.map((p) => p.name).sort()).toEqual(['python', 'shell']);
      for (const info of infos) {
        const image = await docker.getImage(info.image).inspect();
        expect(info).toMatchObject({ imageId: image.Id, transport: 'exec', ready: true });
      }
    });

    it('both profiles serve at once, each with its image and its limits', async () => {
      const [py, sh, byDefault] = await Promise.all([
        svc.run({ profile: 'python', code: 'import sys; print(sys.version_info[0])' }),
        svc.run({
          profile: 'shell',
          cmd: [
            'sh',
            '-c',
            'ls /bin/busybox >/dev/null && cat /sys/fs/cgroup/memory/memory.limit_in_bytes',
          ],
        }),
        svc.run({ code: 'print("default")' }),
      ]);
      expect(py).toMatchObject({ exitCode: 0, stdout: '3\n' });
      expect(sh).toMatchObject({ exitCode: 0, stdout: `${64 * 1024 * 1024}\n` });
      expect(byDefault).toMatchObject({ exitCode: 0, stdout: 'default\n' });
      expect([py.profile, sh.profile, byDefault.profile]).toEqual(['python', 'shell', 'python']);
      // The shell image has no Python: the profile really is another sandbox.
      const noPython = await svc.run({
        profile: 'shell',
        cmd: ['sh', '-c', 'command -v python3 || echo none'],
      });
      expect(noPython.stdout).toBe('none\n');
      expect(py.containerId).not.toBe(sh.containerId);
    });

    it('acquire/withContainer take a profile; release finds the profile of the container', async () => {
      const c: Container = await svc.acquire({ profile: 'shell' });
      try {
        expect(
          svc
            .pool('shell')
            .containers()
            .some((x) => x.id === c.id),
        ).toBe(true);
        expect(
          svc
            .pool('python')
            .containers()
            .some((x) => x.id === c.id),
        ).toBe(false);
        const r = await c.execute(['sh', '-c', 'echo in-shell']);
        expect(r.stdout).toBe('in-shell\n');
      } finally {
        svc.release(c);
      }
      const out = await svc.withContainer(
        async (x) => (await x.execute(['python3', '-c', 'print(1+1)'])).stdout,
        { profile: 'python' },
      );
      expect(out).toBe('2\n');
    });

    it('an unknown profile is UnknownProfileError naming the known ones', async () => {
      await expect(svc.run({ profile: 'nope', cmd: ['true'] })).rejects.toThrow(
        UnknownProfileError,
      );
      await expect(svc.acquire({ profile: 'nope' })).rejects.toThrow(/"python", "shell"/);
      expect(() => svc.pool('nope')).toThrow(UnknownProfileError);
    });

    it('HTTP: profiles listed, each profile under .../profiles/<name>, 404 and 400 for an unknown one', async () => {
      const api = () => request(app.getHttpServer());
      const list = await api().get('/admin/pool/profiles').set(auth).expect(200);
      expect(list.body.map((p: { name: string }) => p.name).sort()).toEqual(['python', 'shell']);

      const viaRoute = await api()
        .post('/admin/pool/profiles/shell/executions')
        .set(auth)
        .send({ cmd: ['sh', '-c', 'command -v python3 || echo no-python'] })
        .expect(200);
      expect(viaRoute.body.stdout).toBe('no-python\n');
      const viaBody = await api()
        .post('/admin/pool/executions')
        .set(auth)
        .send({ profile: 'shell', cmd: ['sh', '-c', 'echo body'] })
        .expect(200);
      expect(viaBody.body.stdout).toBe('body\n');

      const unknownBody = await api()
        .post('/admin/pool/executions')
        .set(auth)
        .send({ profile: 'nope', cmd: ['true'] })
        .expect(400);
      expect(unknownBody.body).toMatchObject({ code: 'UNKNOWN_PROFILE', field: 'profile' });
      expect(unknownBody.body.message).toMatch(/"python", "shell"/);
      const unknownRoute = await api()
        .get('/admin/pool/profiles/nope/containers')
        .set(auth)
        .expect(404);
      expect(unknownRoute.body).toMatchObject({ code: 'UNKNOWN_PROFILE', statusCode: 404 });
      const differing = await api()
        .post('/admin/pool/profiles/shell/executions')
        .set(auth)
        .send({ profile: 'python', cmd: ['true'] })
        .expect(400);
      expect(differing.body.field).toBe('profile');

      const shellStats = await api().get('/admin/pool/profiles/shell').set(auth).expect(200);
      expect(shellStats.body).toMatchObject({ image: BUSYBOX_IMAGE, maxContainers: 2 });
      const resized = await api()
        .put('/admin/pool/profiles/shell/size')
        .set(auth)
        .send({ size: 2 })
        .expect(200);
      expect(resized.body.size).toBe(2);
      expect(svc.pool('shell').stats().size).toBe(2);
      expect(svc.pool('python').stats().size).toBe(1);
      await api().put('/admin/pool/profiles/shell/size').set(auth).send({ size: 1 }).expect(200);

      const ready = await api().get('/health/ready').expect(200);
      expect(Object.keys(ready.body.details).sort()).toEqual([
        'containerPool',
        'containerPool:shell',
      ]);
      expect(ready.body.details.containerPool.profile).toBe('python');
      await api().get('/health/ready?profile=shell').expect(200);
      await api().get('/health/ready?profile=nope').expect(404);

      const metrics = await api().get('/metrics').set(auth).expect(200);
      expect(metrics.text).toMatch(/container_pool_size\{profile="python",pool="[^"]+"\} 1/);
      expect(metrics.text).toMatch(
        /container_pool_max_containers\{profile="shell",pool="[^"]+"\} 2/,
      );
      expect(metrics.text).toMatch(
        /container_pool_executions_total\{profile="shell",pool="[^"]+"\} [1-9]/,
      );
    });
  });

  describe('injection by name', () => {
    @Injectable()
    class Tools {
      constructor(
        @InjectContainerPool('shell') readonly shell: ContainerPool,
        @InjectContainerPool() readonly byDefault: ContainerPool,
        readonly svc: ContainerPoolService,
      ) {}
    }

    const profiles = {
      python: { image: SANDBOX_IMAGE, size: 0, maxContainers: 2 },
      shell: { image: BUSYBOX_IMAGE, size: 0, maxContainers: 2 },
    };

    async function check(app: INestApplication): Promise<void> {
      const tools = app.get(Tools);
      expect(tools.shell).toBe(tools.svc.pool('shell'));
      expect(tools.byDefault).toBe(tools.svc.pool('python'));
      expect(app.get(getContainerPoolToken('python'))).toBe(tools.svc.pool('python'));
      const [sh, py] = await Promise.all([
        tools.shell.run({ cmd: ['sh', '-c', 'command -v python3 || echo none'] }),
        tools.byDefault.run({ code: 'print(7 * 6)' }),
      ]);
      expect(sh.stdout).toBe('none\n');
      expect(py.stdout).toBe('42\n');
    }

    it('forRoot: a ContainerPool per profile, the default one without a name', async () => {
      const name = uniquePoolName('inject');
      @Module({
        imports: [
          ContainerPoolModule.forRoot({
            name,
            pullPolicy: 'never',
            profiles,
            defaultProfile: 'python',
          }),
        ],
        providers: [Tools],
      })
      class AppModule {}
      const app = (
        await Test.createTestingModule({ imports: [AppModule] }).compile()
      ).createNestApplication({
        logger: ['error', 'warn'],
      });
      await app.init();
      try {
        await check(app);
      } finally {
        await app.close();
        await expectNoContainersLeft(name);
      }
    });

    it('forRootAsync: the tokens of the profileNames extra; a name the options lack fails the start', async () => {
      const name = uniquePoolName('inject-async');
      const asyncModule = (profileNames: string[]) =>
        ContainerPoolModule.forRootAsync({
          useFactory: () => ({
            name,
            pullPolicy: 'never' as const,
            profiles,
            defaultProfile: 'python',
          }),
          profileNames,
        });
      @Module({ imports: [asyncModule(['shell', 'python'])], providers: [Tools] })
      class AppModule {}
      const app = (
        await Test.createTestingModule({ imports: [AppModule] }).compile()
      ).createNestApplication({
        logger: ['error', 'warn'],
      });
      await app.init();
      try {
        await check(app);
      } finally {
        await app.close();
        await expectNoContainersLeft(name);
      }

      @Module({ imports: [asyncModule(['shell', 'ruby'])] })
      class Wrong {}
      await expect(Test.createTestingModule({ imports: [Wrong] }).compile()).rejects.toThrow(
        /Unknown profile "ruby": the module has "python", "shell"/,
      );
      await expectNoContainersLeft(name);
    });
  });

  describe('a profile whose image is missing', () => {
    it('degrades only itself: its acquires fail fast with the typed error, the others serve', async () => {
      const missing = `container-pool-test-missing-${process.pid}:latest`;
      const {
        app,
        pool: svc,
        name,
      } = await startPool({
        size: 0,
        pullPolicy: 'never',
        profiles: {
          shell: { image: BUSYBOX_IMAGE, size: 1, maxContainers: 2 },
          broken: { image: missing, size: 1, maxContainers: 2 },
        },
        defaultProfile: 'shell',
        http: true,
      });
      try {
        await svc.initialize(); // the default profile fills: the broken one does not hold it up
        const started = Date.now();
        await expect(svc.run({ profile: 'broken', cmd: ['true'] })).rejects.toThrow(
          ImageUnavailableError,
        );
        expect(Date.now() - started).toBeLessThan(2000);
        const ok = await svc.run({ profile: 'shell', cmd: ['sh', '-c', 'echo fine'] });
        expect(ok.stdout).toBe('fine\n');
        const info = (p: string) => svc.profiles().find((x) => x.name === p)!;
        await eventually(() => info('shell').ready, 10_000, 'shell ready again after its run');
        const infos = { broken: info('broken') };
        expect(infos.broken).toMatchObject({ ready: false, imageId: null });
        // The module is ready (its default profile is); the broken one is reported, and down on its own.
        const api = () => request(app.getHttpServer());
        const ready = await api().get('/health/ready').expect(200);
        expect(ready.body.error['containerPool:broken'].reason).toMatch(/not available/);
        await api().get('/health/ready?profile=broken').expect(503);
        expect(await engineContainers(name, { [PROFILE_LABEL]: 'broken' })).toEqual([]);
      } finally {
        await app.close();
      }
      await expectNoContainersLeft(name);
    });
  });

  describe('the global cap and fairness under a burst', () => {
    it('a burst on A never takes the module over maxContainersTotal, and B is served from its warm stock', async () => {
      const total = 4;
      const {
        app,
        pool: svc,
        name,
      } = await startPool({
        size: 0,
        maxContainersTotal: total,
        profiles: {
          a: { image: BUSYBOX_IMAGE, size: 1, maxContainers: 4 },
          b: { image: BUSYBOX_IMAGE, size: 1, maxContainers: 2 },
        },
        defaultProfile: 'a',
        acquireTimeoutMs: 60_000,
      });
      let polling = true;
      let maxSeen = 0;
      let maxA = 0;
      const poll = (async () => {
        while (polling) {
          const listed = await engineContainers(name, {
            'io.container-pool.owner': svc.instanceId,
          });
          const live = listed.filter((c) => c.State !== 'exited' && c.State !== 'dead');
          maxSeen = Math.max(maxSeen, live.length);
          const a = svc.pool('a').stats();
          const heldA = a.idle + a.leased + a.creating + a.destroying;
          maxA = Math.max(maxA, heldA);
          await new Promise((r) => setTimeout(r, 50));
        }
      })();
      try {
        await svc.initialize();
        await eventually(() => svc.pool('b').stats().idle === 1, 20_000, 'b filled');
        const burst = Array.from({ length: 10 }, () =>
          svc.run({ profile: 'a', cmd: ['sh', '-c', 'sleep 0.4; echo a'] }),
        );
        await eventually(() => svc.pool('a').stats().waiting > 0, 20_000, 'a saturated');
        // A is at its ceiling (total - b's size) with waiters; b's acquire is served at once from its stock.
        const bCreated = svc.pool('b').stats().totals.created;
        const waits: number[] = [];
        const onAcquired = (e: { waitMs: number; profile?: string }) => {
          if (e.profile === 'b') waits.push(e.waitMs);
        };
        svc.events.on('acquired', onAcquired);
        const c = await svc.acquire({ profile: 'b', timeoutMs: 1000 });
        svc.events.off('acquired', onAcquired);
        expect(svc.pool('b').stats().totals.created).toBe(bCreated);
        expect(waits).toHaveLength(1);
        expect(waits[0]).toBeLessThan(50);
        svc.release(c);
        const results = await Promise.all(burst);
        expect(results.every((r) => r.exitCode === 0 && r.stdout === 'a\n')).toBe(true);
      } finally {
        polling = false;
        await poll;
        await app.close();
      }
      expect(maxA).toBeLessThanOrEqual(total - 1);
      expect(maxSeen).toBeLessThanOrEqual(total);
      expect(maxSeen).toBeGreaterThanOrEqual(3);
      await expectNoContainersLeft(name);
    });
  });

  describe('the sweep goes by module name', () => {
    const hosts: ChildProcess[] = [];
    afterAll(() => {
      for (const h of hosts) if (h.exitCode === null) h.kill('SIGKILL');
    });

    it("a profile removed from the config still has a dead owner's leftovers swept", async () => {
      const name = uniquePoolName('sweep-profiles');
      const { child, instanceId } = await startPoolHost(
        {
          POOL_NAME: name,
          POOL_SIZE: '1',
          POOL_PROFILES: 'keep,gone',
          POOL_DEFAULT_PROFILE: 'keep',
          POOL_PROFILE__KEEP__IMAGE: BUSYBOX_IMAGE,
          POOL_PROFILE__GONE__IMAGE: BUSYBOX_IMAGE,
        },
        hosts,
      );
      await eventually(
        async () =>
          (
            await engineContainers(name, {
              [PROFILE_LABEL]: 'gone',
              'io.container-pool.owner': instanceId,
            })
          ).length === 1,
        20_000,
        'the gone profile filled',
      );
      child.kill('SIGKILL');
      // The next instance knows only "keep": the leftovers of both profiles of the dead one are removed.
      const { app, pool: svc } = await startPool({
        name,
        size: 0,
        profiles: { keep: { image: BUSYBOX_IMAGE, size: 1 } },
      });
      try {
        await svc.initialize();
        await eventually(
          async () =>
            (await engineContainers(name, { 'io.container-pool.owner': instanceId })).length === 0,
          30_000,
          "the dead owner's containers swept",
        );
        const mine = await engineContainers(name);
        expect(mine.every((c) => c.Labels['io.container-pool.owner'] === svc.instanceId)).toBe(
          true,
        );
      } finally {
        await app.close();
      }
      await expectNoContainersLeft(name);
    });
  });
});

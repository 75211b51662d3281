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
  TEST_LABEL,
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
      // Created by the image's id (never by its name, so a re-tag changes nothing until it is rolled out).
      const idOf = async (ref: string) => (await docker.getImage(ref).inspect()).Id;
      const [pythonId, shellId] = [await idOf(SANDBOX_IMAGE), await idOf(BUSYBOX_IMAGE)];
      for (const c of byProfile('python')) expect(c.ImageID).toBe(pythonId);
      for (const c of byProfile('shell')) expect(c.ImageID).toBe(shellId);
      for (const c of listed) expect(c.Labels['io.container-pool.pool']).toBe(name);

      const infos = svc.profiles();
      expect(infos.map((p) => p.name).sort()).toEqual(['python', 'shell']);
      for (const info of infos) {
        const image = await docker.getImage(info.image).inspect();
        // transport auto: the runner where the image has Python, exec on busybox.
        const transport = info.name === 'python' ? 'runner' : 'exec';
        expect(info).toMatchObject({ imageId: image.Id, transport, ready: true });
        expect(info.stats.transport).toBe(transport);
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
      // Its runs above were single-use: ready again once refilled.
      await eventually(() => svc.pool('shell').stats().idle === 1, 20_000, 'shell refilled');
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
    it("a profile removed from the config still has a dead owner's leftovers swept", async () => {
      const name = uniquePoolName('sweep-profiles');
      // A leftover of a dead instance, of a profile the next configuration no longer has: exited (its
      // lifeline's fate does not matter here; the sweep must remove it by the module's name).
      const leftover = await docker.createContainer({
        Image: BUSYBOX_IMAGE,
        Cmd: ['true'],
        Labels: {
          'io.container-pool.managed-by': 'container-pool',
          'io.container-pool.pool': name,
          [PROFILE_LABEL]: 'gone',
          'io.container-pool.owner': '00000000-dead-4000-8000-000000000000',
          [TEST_LABEL]: 'profiles-sweep',
        },
        HostConfig: { NetworkMode: 'none' },
      });
      try {
        await leftover.start();
        await leftover.wait();
        expect((await leftover.inspect()).State.Status).toBe('exited');
        const { app, pool: svc } = await startPool({
          name,
          size: 0,
          profiles: {
            keep: { image: BUSYBOX_IMAGE, size: 1 },
            other: { image: BUSYBOX_IMAGE, size: 1 },
          },
          defaultProfile: 'keep',
        });
        try {
          await svc.initialize();
          await eventually(
            async () => (await engineContainers(name, { [PROFILE_LABEL]: 'gone' })).length === 0,
            30_000,
            'the leftover of the removed profile swept',
          );
          // One sweep per module: the removal is counted once.
          const swept = svc.profiles().reduce((n, p) => n + p.stats.totals.orphansRemoved, 0);
          expect(swept).toBe(1);
        } finally {
          await app.close();
        }
      } finally {
        await leftover.remove({ force: true }).catch(() => undefined);
      }
      await expectNoContainersLeft(name);
    });
  });

  describe('shared limits, the hard cases', () => {
    const missing = `container-pool-test-missing-${process.pid}:latest`;

    it('a profile that cannot create holds no create slot: the others fill and serve', async () => {
      const {
        app,
        pool: svc,
        name,
      } = await startPool({
        size: 0,
        pullPolicy: 'never',
        maxConcurrentCreates: 1,
        // The broken ones first: the round-robin would start with them.
        profiles: {
          broken: { image: missing, size: 1, maxContainers: 2 },
          'broken-too': { image: missing, size: 1, maxContainers: 2 },
          shell: { image: BUSYBOX_IMAGE, size: 2, maxContainers: 3 },
        },
        defaultProfile: 'shell',
      });
      try {
        await svc.initialize();
        await eventually(() => svc.pool('shell').stats().idle === 2, 20_000, 'shell filled to 2');
        const r = await svc.run({ profile: 'shell', cmd: ['sh', '-c', 'echo ok'] });
        expect(r.stdout).toBe('ok\n');
        await eventually(() => svc.pool('shell').stats().idle === 2, 20_000, 'shell refilled');
      } finally {
        await app.close();
      }
      await expectNoContainersLeft(name);
    });

    it('a run-time resize may not take the sizes past maxContainersTotal; a drained profile keeps its share', async () => {
      const {
        app,
        pool: svc,
        name,
      } = await startPool({
        size: 0,
        maxContainersTotal: 3,
        acquireTimeoutMs: 1500,
        profiles: {
          a: { image: BUSYBOX_IMAGE, size: 1, maxContainers: 3 },
          b: { image: BUSYBOX_IMAGE, size: 1, maxContainers: 3, maxWaiters: 0 },
        },
        defaultProfile: 'a',
        http: true,
        adminToken: TOKEN,
      });
      const held: Container[] = [];
      try {
        await svc.initialize();
        expect(() => svc.pool('a').resize({ size: 3 })).toThrow(
          /maxContainersTotal \(3\) minus the other profiles' sizes \(1\): at most 2/,
        );
        const api = () => request(app.getHttpServer());
        const refused = await api()
          .put('/admin/pool/profiles/a/size')
          .set(auth)
          .send({ size: 3 })
          .expect(400);
        expect(refused.body).toMatchObject({ code: 'INVALID_REQUEST', field: 'size' });
        expect(svc.pool('a').stats().size).toBe(1);

        // b drained: a still holds at most 3 - b's size.
        await svc.pool('b').drain();
        for (let i = 0; i < 2; i++) held.push(await svc.acquire({ profile: 'a' }));
        await expect(svc.acquire({ profile: 'a', timeoutMs: 1500 })).rejects.toThrow(
          /maxContainersTotal 3/,
        );
        svc.pool('b').resume();
        await eventually(() => svc.pool('b').stats().idle === 1, 20_000, 'b refilled after resume');
        // b at its share with maxWaiters 0: a second acquire is refused at once, not after a wait.
        held.push(await svc.acquire({ profile: 'b' }));
        const started = Date.now();
        await expect(svc.acquire({ profile: 'b' })).rejects.toThrow(/waiting/i);
        expect(Date.now() - started).toBeLessThan(1000);
        const ready = await api().get('/health/ready?profile=b').expect(503);
        expect(JSON.stringify(ready.body)).toMatch(/saturated/);
      } finally {
        for (const c of held) svc.release(c);
        await app.close();
      }
      await expectNoContainersLeft(name);
    });

    it("at the cap, another profile's returned idle containers make way for a waiter at once", async () => {
      const {
        app,
        pool: svc,
        name,
      } = await startPool({
        size: 0,
        maxContainersTotal: 2,
        replenishIntervalMs: 60_000, // no tick to trim the surplus meanwhile
        profiles: {
          a: { image: BUSYBOX_IMAGE, size: 0, maxContainers: 2, singleUse: false },
          b: { image: BUSYBOX_IMAGE, size: 0, maxContainers: 2 },
        },
        defaultProfile: 'a',
      });
      try {
        await svc.initialize();
        const two = [await svc.acquire({ profile: 'a' }), await svc.acquire({ profile: 'a' })];
        for (const c of two) svc.release(c);
        expect(svc.pool('a').stats().idle).toBe(2);
        const started = Date.now();
        const r = await svc.run({ profile: 'b', cmd: ['sh', '-c', 'echo b'], timeoutMs: 5000 });
        expect(r.stdout).toBe('b\n');
        expect(Date.now() - started).toBeLessThan(5000);
        expect(svc.pool('a').stats().idle).toBeLessThan(2);
      } finally {
        await app.close();
      }
      await expectNoContainersLeft(name);
    });

    it('maxContainersTotal binds one profile too', async () => {
      const {
        app,
        pool: svc,
        name,
      } = await startPool({
        image: BUSYBOX_IMAGE,
        size: 1,
        maxContainers: 4,
        maxContainersTotal: 2,
      });
      const held: Container[] = [];
      try {
        await svc.initialize();
        for (let i = 0; i < 2; i++) held.push(await svc.acquire());
        await expect(svc.acquire({ timeoutMs: 1000 })).rejects.toThrow(/maxContainersTotal 2/);
        const live = (await engineContainers(name)).filter((c) => c.State === 'running');
        expect(live.length).toBeLessThanOrEqual(2);
      } finally {
        for (const c of held) svc.release(c);
        await app.close();
      }
      await expectNoContainersLeft(name);
    });
  });
});

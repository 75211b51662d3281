import { execFileSync } from 'node:child_process';
import request from 'supertest';
import type { INestApplication } from '@nestjs/common';
import type { ContainerPoolService } from '../../src/container-pool/container-pool.service';
import { ImageUnavailableError } from '../../src/container-pool/errors';
import type { Container } from '../../src/container-pool/interfaces/container.interface';
import type { ContainerPoolModuleOptions } from '../../src/container-pool/interfaces/container-pool-options.interface';
import {
  BUSYBOX_IMAGE,
  docker,
  engineContainers,
  eventually,
  expectNoContainersLeft,
  SANDBOX_IMAGE,
  startPool,
  TEST_LABEL,
} from '../support/integration';

const GENERATION = 'io.container-pool.generation';
/** This run's images: tags of busybox and busybox's file system imported again (a new image id each). */
const REPO = `container-pool-test-rollout-${process.pid}`;
const MiB = 1024 * 1024;

function dockerCli(args: string[]): string {
  return execFileSync('docker', args, { encoding: 'utf8' }).trim();
}

/** `REPO:tag` as an image of its own: busybox's file system exported and `docker import`ed (a tag event). */
function importImage(tag: string): string {
  const cid = dockerCli(['create', '--label', `${TEST_LABEL}=rollout`, BUSYBOX_IMAGE]);
  try {
    execFileSync('sh', ['-c', `docker export ${cid} | docker import - ${REPO}:${tag}`], {
      stdio: 'ignore',
    });
  } finally {
    dockerCli(['rm', '-f', cid]);
  }
  return imageId(`${REPO}:${tag}`);
}

function imageId(ref: string): string {
  return dockerCli(['image', 'inspect', '--format', '{{.Id}}', ref]);
}

/** The engine's view of a container: its generation label and the image id it runs. */
async function engineView(c: { id: string }): Promise<{ generation: string; image: string }> {
  const info = await docker.getContainer(c.id).inspect();
  return { generation: info.Config.Labels[GENERATION], image: info.Image };
}

/** A single-profile pool of busybox containers (small limits), on `image`. */
const busybox = (image: string, options: ContainerPoolModuleOptions = {}) => ({
  image,
  size: 2,
  maxContainers: 4,
  memoryBytes: 64 * MiB,
  tmpSizeBytes: 8 * MiB,
  workdirSizeBytes: 8 * MiB,
  shmSizeBytes: 1 * MiB,
  replenishIntervalMs: 60_000,
  ...options,
});

describe('rollouts on a real engine', () => {
  const apps: { app: INestApplication; name: string }[] = [];
  let baseId: string;
  let v2Id: string;

  beforeAll(() => {
    dockerCli(['tag', BUSYBOX_IMAGE, `${REPO}:base`]);
    baseId = imageId(`${REPO}:base`);
    v2Id = importImage('v2');
    expect(v2Id).not.toBe(baseId);
  });

  afterEach(async () => {
    for (const { app, name } of apps.splice(0)) {
      await app.close();
      await expectNoContainersLeft(name);
    }
  });

  afterAll(() => {
    const tags = dockerCli(['image', 'ls', '--format', '{{.Repository}}:{{.Tag}}', REPO]);
    for (const ref of tags.split('\n').filter(Boolean)) dockerCli(['rmi', '-f', ref]);
  });

  let lastName = '';
  let lastApp: INestApplication | undefined;
  async function filled(options: ContainerPoolModuleOptions): Promise<ContainerPoolService> {
    const started = await startPool(options);
    lastName = started.name;
    lastApp = started.app;
    apps.push(started);
    await started.pool.initialize();
    const size = options.size ?? 2;
    await eventually(() => started.pool.stats().idle === size, 60_000, 'filled');
    return started.pool;
  }

  /** acquire, one command, release: the container it ran in, as the engine sees it. */
  async function handOut(pool: ContainerPoolService) {
    return pool.withContainer(async (c: Container) => {
      const r = await c.execute(['true']);
      expect(r.exitCode).toBe(0);
      return { id: c.id, ...(await engineView(c)) };
    });
  }

  it('recreate: once update() resolves, every hand-out is of the new generation (by image id); the old idle ones are removed', async () => {
    const pool = await filled(busybox(`${REPO}:base`));
    const old = pool.stats().rollout!.generation!;
    const oldIdle = pool.containers().map((c) => c.id);
    for (const id of oldIdle)
      expect(await engineView({ id })).toEqual({ generation: old, image: baseId });

    const status = await pool.update({ image: `${REPO}:v2` }, { strategy: 'recreate' });
    expect(status).toMatchObject({ strategy: 'recreate', state: 'complete' });
    expect(status.generation).not.toBe(old);
    for (let i = 0; i < 3; i++) {
      expect(await handOut(pool)).toMatchObject({ generation: status.generation, image: v2Id });
    }
    // The engine's list names the image by the id the container was created with.
    await eventually(() => pool.stats().idle === 2, 30_000, 'refilled');
    for (const row of await engineContainers(lastName)) {
      if (row.State !== 'running' || oldIdle.includes(row.Id)) continue;
      expect(row.ImageID).toBe(v2Id);
      expect(row.Image).toBe(v2Id);
    }
    for (const id of oldIdle) {
      await eventually(
        () =>
          docker
            .getContainer(id)
            .inspect()
            .then(
              () => false,
              () => true,
            ),
        20_000,
        `old ${id} removed`,
      );
    }
    expect(pool.stats().image).toBe(`${REPO}:v2`);
    expect(pool.profiles()[0].imageId).toBe(v2Id);
  });

  it('onReplenish: old idle ones are handed out first, every container made after the update is new; complete once none is left', async () => {
    const pool = await filled(busybox(`${REPO}:base`));
    const old = pool.stats().rollout!.generation!;
    const status = await pool.update({ image: `${REPO}:v2` }, { strategy: 'onReplenish' });
    expect(status).toMatchObject({ state: 'progressing', generation: old, stale: 2 });
    const first = [await handOut(pool), await handOut(pool)];
    expect(first.map((c) => c.generation)).toEqual([old, old]);
    await eventually(() => pool.stats().rollout!.state === 'complete', 60_000, 'complete');
    expect(pool.stats().rollout!.generation).toBe(status.targetGeneration);
    for (let i = 0; i < 3; i++) {
      expect(await handOut(pool)).toMatchObject({
        generation: status.targetGeneration,
        image: v2Id,
      });
    }
  });

  it('rolling: every hand-out during the rollout is warm (no acquire creates or waits), then only new ones', async () => {
    const pool = await filled(
      // Room for the surge under the module-wide cap (by default the sum of maxContainers: 2).
      busybox(`${REPO}:base`, {
        size: 2,
        maxContainers: 2,
        maxContainersTotal: 3,
        singleUse: false,
        maxSurge: 1,
      }),
    );
    const waits: number[] = [];
    pool.events.on('acquired', (e) => waits.push(e.waitMs));
    let done = false;
    const updated = pool.update({ image: `${REPO}:v2` }, { strategy: 'rolling' });
    void updated.finally(() => (done = true)).catch(() => undefined);
    let rounds = 0;
    const generations = new Set<string>();
    while (!done) {
      const idleBefore = new Set(
        pool
          .containers()
          .filter((c) => c.state === 'idle')
          .map((c) => c.id),
      );
      const c = await pool.acquire();
      // Warm: it was idle when the acquire was called, not created for it.
      expect(idleBefore.has(c.id)).toBe(true);
      expect(pool.stats().waiting).toBe(0);
      expect((await c.execute(['true'])).exitCode).toBe(0);
      generations.add((await engineView(c)).generation);
      // Never beyond maxContainers + maxSurge nor maxContainersTotal, as the engine counts them.
      expect((await engineContainers(lastName)).length).toBeLessThanOrEqual(3);
      pool.release(c);
      rounds++;
    }
    const status = await updated;
    expect(status).toMatchObject({ strategy: 'rolling', state: 'complete' });
    expect(rounds).toBeGreaterThan(0);
    expect(waits.length).toBe(rounds);
    expect(waits.every((w) => w === 0)).toBe(true);
    expect(pool.stats().rollout!.stale).toBe(0);
    for (let i = 0; i < 3; i++) {
      expect(await handOut(pool)).toMatchObject({ generation: status.generation, image: v2Id });
    }
  });

  it('an update to a missing image fails and the old generation serves throughout', async () => {
    const pool = await filled(busybox(`${REPO}:base`));
    const old = pool.stats().rollout!.generation!;
    const before = await handOut(pool);
    const updating = pool.update({ image: `${REPO}:does-not-exist` }, { strategy: 'recreate' });
    const during = await handOut(pool);
    const err = await updating.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ImageUnavailableError);
    const after = [await handOut(pool), await handOut(pool)];
    for (const c of [before, during, ...after]) {
      expect(c).toMatchObject({ generation: old, image: baseId });
    }
    expect(pool.stats().rollout).toMatchObject({ state: 'failed', generation: old });
    expect(pool.stats().rollout!.reason).toContain('does-not-exist');
    expect(pool.stats().image).toBe(`${REPO}:base`);
  });

  it('over HTTP: PUT .../profiles/:profile?wait=true answers 200 once complete; executions then run in the new generation', async () => {
    const token = 'rollout-admin-token-0123456789';
    // The default profile: filled() waits for its 2 idle containers.
    const pool = await filled({
      http: true,
      adminToken: token,
      defaultProfile: 'sh',
      replenishIntervalMs: 60_000,
      profiles: { sh: { ...busybox(`${REPO}:base`), replenishIntervalMs: undefined } },
    } as ContainerPoolModuleOptions);
    expect(pool.pool('sh').stats().idle).toBe(2);
    const http = () => request(lastApp!.getHttpServer());
    const auth = { Authorization: `Bearer ${token}` };
    const res = await http()
      .put('/admin/pool/profiles/sh?wait=true')
      .set(auth)
      .send({ image: `${REPO}:v2`, strategy: 'rolling', maxSurge: 1 })
      .expect(200);
    expect(res.body).toMatchObject({ strategy: 'rolling', state: 'complete', stale: 0 });
    const bad = await http()
      .put('/admin/pool/profiles/sh')
      .set(auth)
      .send({ image: `${REPO}:v2`, pidsLimit: 'many' })
      .expect(400);
    expect(bad.body).toMatchObject({ code: 'INVALID_REQUEST', field: 'pidsLimit' });
    for (let i = 0; i < 2; i++) {
      const run = await http()
        .post('/admin/pool/profiles/sh/executions')
        .set(auth)
        .send({ cmd: ['true'] })
        .expect(200);
      expect(await engineView({ id: run.body.containerId })).toMatchObject({
        generation: res.body.generation,
        image: v2Id,
      });
    }
  });

  it("a re-tag of the profile's image (docker import over its name) is noticed by the tag event and rolled out", async () => {
    dockerCli(['tag', BUSYBOX_IMAGE, `${REPO}:current`]);
    const pool = await filled(busybox(`${REPO}:current`, { updateStrategy: 'recreate' }));
    const old = pool.stats().rollout!.generation!;
    expect(pool.profiles()[0].imageId).toBe(baseId);
    // The scheduled tick is a minute away: only the engine's tag event can notice it this soon.
    const newId = importImage('current');
    await eventually(
      () => pool.stats().rollout!.state === 'complete' && pool.profiles()[0].imageId === newId,
      30_000,
      're-tag rolled out',
    );
    const status = pool.stats().rollout!;
    expect(status.strategy).toBe('recreate');
    expect(status.generation).not.toBe(old);
    for (let i = 0; i < 3; i++) {
      expect(await handOut(pool)).toMatchObject({ generation: status.generation, image: newId });
    }
  });
});

/**
 * The generation names the transport, chosen for each image id: a rollout from the Python image (auto: the
 * runner) to busybox (no Python: exec) and back switches the transport of new containers with the generation.
 */
describe('rollout across transports (auto)', () => {
  let app: INestApplication;
  let pool: ContainerPoolService;
  let name: string;

  afterAll(async () => {
    await app?.close();
    if (name) await expectNoContainersLeft(name);
  });

  it('recreate to an image without Python hands out exec containers; back to Python, runner ones', async () => {
    ({ app, pool, name } = await startPool({ size: 2, maxContainers: 4, transport: 'auto' }));
    await pool.initialize();
    const before = await pool.run({ cmd: ['echo', 'one'] });
    expect(before).toMatchObject({ stdout: 'one\n', transport: 'runner' });
    const pythonGeneration = pool.stats().rollout?.generation;

    const toBusybox = await pool.update({ image: BUSYBOX_IMAGE }, { strategy: 'recreate' });
    expect(toBusybox).toMatchObject({ state: 'complete' });
    expect(toBusybox.generation).not.toBe(pythonGeneration);
    expect(pool.stats().transport).toBe('exec');
    for (let i = 0; i < 3; i++) {
      const r = await pool.run({ cmd: ['echo', 'two'] });
      expect(r).toMatchObject({ stdout: 'two\n', transport: 'exec' });
      expect((await engineView({ id: r.containerId })).image).toBe(imageId(BUSYBOX_IMAGE));
    }

    const back = await pool.update({ image: SANDBOX_IMAGE }, { strategy: 'recreate' });
    expect(back).toMatchObject({ state: 'complete', generation: pythonGeneration });
    expect(pool.stats().transport).toBe('runner');
    const r = await pool.run({ code: 'print(3)' });
    expect(r).toMatchObject({ stdout: '3\n', transport: 'runner' });
  });
});

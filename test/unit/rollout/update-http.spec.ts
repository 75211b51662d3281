/**
 * PUT <prefix>/profiles/:profile (and PUT <prefix> for the default profile) on a FakeDriver: admin scope, the
 * DTO's 400 naming the field, 202 with the rollout status, ?wait=true, the error shapes of a failed update.
 */
import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import request from 'supertest';
import { CONTAINER_DRIVER } from '../../../src/container-pool/container-pool.constants';
import { ContainerPoolModule } from '../../../src/container-pool/container-pool.module';
import { ContainerPoolService } from '../../../src/container-pool/container-pool.service';
import { FakeDriver } from '../../support/fake-driver';
import { waitFor } from '../../support/pool-testing';

const TOKEN = 'unit-admin-token-0123456789';
const READ = 'unit-read-token-0123456789ab';
const admin = { Authorization: `Bearer ${TOKEN}` };

describe('PUT .../profiles/:profile (fake driver)', () => {
  let app: INestApplication | undefined;
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  async function host(driver = new FakeDriver()) {
    const moduleRef = await Test.createTestingModule({
      imports: [
        ContainerPoolModule.forRoot({
          name: 'mod',
          maxContainers: 4,
          replenishIntervalMs: 60_000,
          adminToken: TOKEN,
          readToken: READ,
          http: true,
          defaultProfile: 'py',
          profiles: { py: { image: 'py:fake', size: 2 }, sh: { image: 'sh:fake', size: 1 } },
        }),
      ],
    })
      .overrideProvider(CONTAINER_DRIVER)
      .useValue(driver)
      .compile();
    app = moduleRef.createNestApplication({ logger: false });
    await app.init();
    const svc = app.get(ContainerPoolService);
    await svc.initialize();
    await waitFor(() => svc.pool('sh').stats().idle === 1, 2000, 'sh filled');
    return { svc, driver, http: () => request(app!.getHttpServer()) };
  }

  it('202 with the rollout status; GET shows it in stats; ?wait=true answers 200 once complete', async () => {
    const { svc, http } = await host();
    const put = await http()
      .put('/admin/pool/profiles/sh')
      .set(admin)
      .send({ image: 'sh:v2', strategy: 'onReplenish' })
      .expect(202);
    expect(put.body).toMatchObject({ strategy: 'onReplenish', state: 'progressing', stale: 1 });
    expect(put.body.targetGeneration).not.toBe(put.body.generation);
    const got = await http().get('/admin/pool/profiles/sh').set(admin).expect(200);
    expect(got.body.rollout).toMatchObject({ state: 'progressing' });
    expect(got.body.image).toBe('sh:v2');

    const waited = await http()
      .put('/admin/pool/profiles/sh?wait=true')
      .set(admin)
      .send({ memoryBytes: '512m', strategy: 'recreate' })
      .expect(200);
    expect(waited.body).toMatchObject({ strategy: 'recreate', state: 'complete', stale: 0 });
    expect(svc.pool('sh').options.memoryBytes).toBe(512 * 1024 * 1024);
    // The default profile's route, without the profile segment.
    await http().put('/admin/pool').set(admin).send({ size: 1 }).expect(202);
    expect(svc.pool('py').stats().size).toBe(1);
  });

  it('400 naming the field: unknown fields, wrong types, a bad strategy, a size above the shared cap', async () => {
    const { http } = await host();
    const field = async (body: object, path = '/admin/pool/profiles/sh') => {
      const r = await http().put(path).set(admin).send(body).expect(400);
      expect(r.body.code).toBe('INVALID_REQUEST');
      return r.body.field as string;
    };
    expect(await field({ user: '0:0' })).toBe('user');
    expect(await field({ image: 7 })).toBe('image');
    expect(await field({ memoryBytes: 'lots' })).toBe('memoryBytes');
    expect(await field({ strategy: 'bluegreen' })).toBe('strategy');
    expect(await field({ image: 'x', maxSurge: 0 })).toBe('maxSurge');
    expect(await field({ pidsLimit: 1 })).toBe('pidsLimit');
    expect(await field({ size: 9 })).toBe('size');
    const r = await http()
      .put('/admin/pool/profiles/sh?wait=maybe')
      .set(admin)
      .send({})
      .expect(400);
    expect(r.body.field).toBe('wait');
  });

  it('admin scope only; an unknown profile is a 404', async () => {
    const { http } = await host();
    const r = await http()
      .put('/admin/pool/profiles/sh')
      .set({ Authorization: `Bearer ${READ}` })
      .send({ size: 1 })
      .expect(403);
    expect(r.body.code).toBe('FORBIDDEN_SCOPE');
    await http().put('/admin/pool/profiles/sh').send({ size: 1 }).expect(401);
    const u = await http()
      .put('/admin/pool/profiles/nope')
      .set(admin)
      .send({ size: 1 })
      .expect(404);
    expect(u.body.code).toBe('UNKNOWN_PROFILE');
  });

  it('a missing image: 503 IMAGE_UNAVAILABLE, the profile unchanged; a failed wait is a 409 ROLLOUT_FAILED', async () => {
    const driver = new FakeDriver();
    driver.missingImages.add('gone:img');
    const { svc, http } = await host(driver);
    const r = await http()
      .put('/admin/pool/profiles/sh')
      .set(admin)
      .send({ image: 'gone:img' })
      .expect(503);
    expect(r.body.code).toBe('IMAGE_UNAVAILABLE');
    expect(svc.pool('sh').stats().rollout).toMatchObject({ state: 'failed' });
    expect(svc.pool('sh').stats().image).toBe('sh:fake');

    // Superseded while waiting: 409.
    driver.manualCreates = true;
    const waiting = http()
      .put('/admin/pool/profiles/sh?wait=true')
      .set(admin)
      .send({ image: 'sh:v2', strategy: 'rolling' })
      .then((res) => res);
    await waitFor(() => driver.pendingCreates.length > 0, 2000, 'rolling started');
    await http()
      .put('/admin/pool/profiles/sh')
      .set(admin)
      .send({ image: 'sh:v3', strategy: 'onReplenish' })
      .expect(202);
    const superseded = await waiting;
    expect(superseded.status).toBe(409);
    expect(superseded.body.code).toBe('ROLLOUT_SUPERSEDED');
    driver.manualCreates = false;
    for (const p of [...driver.pendingCreates]) p.succeed();
  });
});

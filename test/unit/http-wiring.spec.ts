/*
 * How the module's HTTP parts fit a host app: the OpenAPI document under a global prefix, and
 * ContainerPoolHttpModule in an app without a global pool.
 */
import { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import request from 'supertest';
import { CONTAINER_DRIVER } from '../../src/container-pool/container-pool.constants';
import { ContainerPoolModule } from '../../src/container-pool/container-pool.module';
import { InvalidPoolConfigError } from '../../src/container-pool/errors/container-pool.errors';
import {
  ContainerPoolHttpModule,
  NO_GLOBAL_POOL,
} from '../../src/container-pool/http/container-pool-http';
import { setupContainerPoolDocs } from '../../src/container-pool/http/openapi/document';
import { FakeDriver } from '../support/fake-driver';

const TOKEN = 'unit-admin-token-0123456789';

async function appOf(imports: any[]): Promise<INestApplication> {
  const moduleRef = await Test.createTestingModule({ imports })
    .overrideProvider(CONTAINER_DRIVER)
    .useValue(new FakeDriver())
    .compile();
  return moduleRef.createNestApplication({ logger: false });
}

const pool = (extra: object = {}) =>
  ContainerPoolModule.forRoot({
    image: 'fake:latest',
    size: 0,
    adminToken: TOKEN,
    replenishIntervalMs: 60_000,
    http: { prefix: 'ops/pool', metricsPath: 'ops/metrics' },
    ...extra,
  });

describe('OpenAPI document under a global prefix', () => {
  let app: INestApplication | undefined;
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  it('paths and text name the routes with the prefix, set before or after; the UI stays at /<path>', async () => {
    for (const order of ['before', 'after'] as const) {
      app = await appOf([pool()]);
      if (order === 'before') app.setGlobalPrefix('api');
      expect(setupContainerPoolDocs(app, 'docs')).toBe(true);
      if (order === 'after') app.setGlobalPrefix('api');
      await app.init();
      const doc = (await request(app.getHttpServer()).get('/docs-json').expect(200)).body;
      expect(doc.info.description).toContain('Every route under `/api/ops/pool`');
      expect(doc.info.description).toContain('`POST /api/ops/pool/executions`');
      expect(doc.info.description).toContain('`/api/ops/metrics` needs a read or admin token');
      expect(Object.keys(doc.paths)).toEqual(
        expect.arrayContaining([
          '/api/ops/pool/executions',
          '/api/ops/metrics',
          '/api/health/live',
        ]),
      );
      await request(app.getHttpServer())
        .get('/api/ops/pool')
        .set('Authorization', `Bearer ${TOKEN}`)
        .expect(200);
      await app.close();
      app = undefined;
    }
  });

  it('useGlobalPrefix serves the UI and the JSON under the prefix too; an excluded route keeps its path', async () => {
    app = await appOf([pool()]);
    app.setGlobalPrefix('api', { exclude: ['ops/metrics'] });
    setupContainerPoolDocs(app, 'docs', { useGlobalPrefix: true });
    await app.init();
    const api = () => request(app!.getHttpServer());
    const doc = (await api().get('/api/docs-json').expect(200)).body;
    await api().get('/docs-json').expect(404);
    await api().get('/api/docs').expect(200);
    expect(doc.info.description).toContain('`/ops/metrics` needs');
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/ops/metrics']));
  });
});

describe('ContainerPoolHttpModule without a global pool', () => {
  it('fails the start with an InvalidPoolConfigError saying to register the pool with isGlobal', async () => {
    for (const imports of [
      [ContainerPoolHttpModule.register()],
      // A pool that is not global is not seen from ContainerPoolHttpModule.
      [
        ContainerPoolModule.forRoot({ image: 'fake:latest', size: 0 }),
        ContainerPoolHttpModule.register(),
      ],
    ]) {
      const app = await appOf(imports).catch((err: unknown) => err);
      let error: unknown = app;
      if (!(app instanceof Error)) {
        error = await (app as INestApplication).init().then(
          () => null,
          (err: unknown) => err,
        );
        await (app as INestApplication).close().catch(() => undefined);
      }
      expect(error).toBeInstanceOf(InvalidPoolConfigError);
      expect((error as InvalidPoolConfigError).problems).toEqual([NO_GLOBAL_POOL]);
      expect((error as Error).message).toMatch(
        /ContainerPoolHttpModule serves the routes of a pool registered globally, and this app has none: register the pool with ContainerPoolModule\.forRoot\(\{ isGlobal: true/,
      );
    }
  });

  it('with a global pool it starts', async () => {
    const app = await appOf([
      ContainerPoolModule.forRoot({
        image: 'fake:latest',
        size: 0,
        isGlobal: true,
        adminToken: TOKEN,
      }),
      ContainerPoolHttpModule.register({ prefix: 'sandbox' }),
    ]);
    await app.init();
    await request(app.getHttpServer())
      .get('/sandbox')
      .set('Authorization', `Bearer ${TOKEN}`)
      .expect(200);
    await app.close();
  });
});

/*
 * A request under the module's prefix that no route answers: a 404 (or a 405) in the module's one error shape,
 * at the prefix as the app places it, without ever taking a route of the host's.
 */
import { Controller, Get, INestApplication, Module, VersioningType } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import request from 'supertest';
import { CONTAINER_DRIVER } from '../../src/container-pool/container-pool.constants';
import { ContainerPoolModule } from '../../src/container-pool/container-pool.module';
import type { ContainerPoolModuleExtras } from '../../src/container-pool/container-pool.module-definition';
import { ContainerPoolHttpModule } from '../../src/container-pool/http/container-pool-http';
import type { ContainerPoolModuleOptions } from '../../src/container-pool/interfaces/container-pool-options.interface';
import { FakeDriver } from '../support/fake-driver';

const TOKEN = 'unit-admin-token-0123456789';
const auth = { Authorization: `Bearer ${TOKEN}` };

@Controller('admin/pool/custom')
class HostUnderPrefixController {
  @Get()
  get() {
    return { host: 'custom' };
  }
}
/** A module of the host's imported after the pool's: its routes are registered after the pool's. */
@Module({ controllers: [HostUnderPrefixController] })
class HostFeatureModule {}

const pool = (options: ContainerPoolModuleOptions & ContainerPoolModuleExtras = {}) =>
  ContainerPoolModule.forRoot({
    image: 'fake:latest',
    size: 0,
    adminToken: TOKEN,
    replenishIntervalMs: 60_000,
    http: true,
    ...options,
  });

describe('unknown routes under the prefix', () => {
  let app: INestApplication | undefined;
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  async function start(imports: any[], prepare: (a: INestApplication) => void = () => undefined) {
    const moduleRef = await Test.createTestingModule({ imports })
      .overrideProvider(CONTAINER_DRIVER)
      .useValue(new FakeDriver())
      .compile();
    app = moduleRef.createNestApplication({ logger: false });
    prepare(app);
    await app.init();
    return () => request(app!.getHttpServer());
  }

  const expectShape = (body: Record<string, unknown>, status: number, code: string) => {
    expect(Object.keys(body).sort()).toEqual(
      ['code', 'error', 'message', 'retryable', 'statusCode'].sort(),
    );
    expect(body).toMatchObject({ statusCode: status, code, retryable: false });
  };

  it("404 in the module's shape with or without a token; 405 naming the path's methods", async () => {
    const api = await start([pool(), HostFeatureModule]);
    for (const req of [
      api().get('/admin/pool/nope'),
      api().get('/admin/pool/nope/deeper?x=1').set(auth),
      api().post('/admin/pool/containers/x/y').set(auth).send({ a: 1 }),
      api().get('/ADMIN/POOL/nope'),
    ]) {
      const res = await req.expect(404);
      expectShape(res.body, 404, 'NOT_FOUND');
      expect(res.body.error).toBe('Not Found');
      expect(res.body.message).toMatch(
        /^No route (GET|POST) \/(admin|ADMIN)\/(pool|POOL)\/\S+ in the container pool's API/,
      );
      expect(res.body.message).not.toContain('x=1');
    }
    const wrong = await api().get('/admin/pool/executions').set(auth).expect(405);
    expectShape(wrong.body, 405, 'METHOD_NOT_ALLOWED');
    expect(wrong.headers.allow).toBe('POST');
    expect(wrong.body.message).toBe(
      "GET is not a method of /admin/pool/executions in the container pool's API: use POST.",
    );
    const del = await api().put('/admin/pool/containers/abc').set(auth).expect(405);
    expect(del.headers.allow).toBe('DELETE');
    const root = await api().delete('/admin/pool').set(auth).expect(405);
    expect(root.headers.allow).toBe('GET, HEAD, PUT');
  });

  it("never takes a route: the host's under the prefix, the pool's own, and nothing outside it", async () => {
    const api = await start([pool(), HostFeatureModule]);
    expect((await api().get('/admin/pool/custom').expect(200)).body).toEqual({ host: 'custom' });
    await api().get('/admin/pool').set(auth).expect(200);
    await api().get('/admin/pool/containers').set(auth).expect(200);
    // Outside the prefix: the host's (Nest's) 404, not the module's.
    for (const path of ['/nope', '/admin/poolx', '/admin']) {
      const res = await api().get(path).expect(404);
      expect(res.body).toEqual({
        statusCode: 404,
        error: 'Not Found',
        message: `Cannot GET ${path}`,
      });
    }
    // OPTIONS is passed on.
    const options = await api().options('/admin/pool/nope');
    expect(options.body.code).toBeUndefined();
  });

  it('at the prefix as the app places it: global prefix, URI version; none without the admin API', async () => {
    let api = await start([pool({ http: { prefix: 'ops' } })], (a) => a.setGlobalPrefix('api'));
    expect((await api().get('/api/ops/nope').expect(404)).body.code).toBe('NOT_FOUND');
    expect((await api().get('/ops/nope').expect(404)).body.code).toBeUndefined();
    await app!.close();
    api = await start([pool()], (a) =>
      a.enableVersioning({ type: VersioningType.URI, defaultVersion: '1' }),
    );
    await api().get('/v1/admin/pool').set(auth).expect(200);
    expect((await api().get('/v1/admin/pool/nope').expect(404)).body.code).toBe('NOT_FOUND');
    await app!.close();
    api = await start([pool({ http: { adminApi: false } })]);
    expect((await api().get('/admin/pool/nope').expect(404)).body.code).toBeUndefined();
    await app!.close();
    api = await start([
      pool({ isGlobal: true, http: false }),
      ContainerPoolHttpModule.register({ prefix: 'sandbox' }),
    ]);
    expect((await api().get('/sandbox/nope').expect(404)).body.code).toBe('NOT_FOUND');
  });
});

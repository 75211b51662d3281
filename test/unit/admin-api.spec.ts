import { request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { INestApplication, Logger, Module } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import request from 'supertest';
import { CONTAINER_DRIVER } from '../../src/container-pool/container-pool.constants';
import { ContainerPoolModule } from '../../src/container-pool/container-pool.module';
import type { ContainerPoolModuleExtras } from '../../src/container-pool/container-pool.module-definition';
import { ContainerPoolService } from '../../src/container-pool/container-pool.service';
import type { ContainerPoolModuleOptions } from '../../src/container-pool/interfaces/container-pool-options.interface';
import { tokenFingerprint } from '../../src/container-pool/http/guards/admin-token.guard';
import { setupContainerPoolDocs } from '../../src/container-pool/http/openapi/document';
import { ADMIN_BEARER_SCHEME } from '../../src/container-pool/http/openapi/swagger';
import { FakeDriver, hangingExec, type FakeExecResult } from '../support/fake-driver';
import { waitFor } from '../support/pool-testing';

const TOKEN = 'unit-admin-token-0123456789';
const auth = { Authorization: `Bearer ${TOKEN}` };

/** A POST with the admin token on a connection of its own; resolves with the status and the JSON body. */
function post(port: number, path: string, body: unknown): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port,
        path,
        method: 'POST',
        agent: false,
        headers: { ...auth, 'Content-Type': 'application/json' },
      },
      (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
      },
    );
    req.once('error', reject);
    req.end(JSON.stringify(body));
  });
}

async function host(
  options: ContainerPoolModuleOptions & ContainerPoolModuleExtras = {},
  appOptions: { bodyParser?: boolean } = {},
  driver = new FakeDriver(),
) {
  const moduleRef = await Test.createTestingModule({
    imports: [
      ContainerPoolModule.forRoot({
        image: 'fake:latest',
        size: 1,
        maxContainers: 3,
        replenishIntervalMs: 60_000,
        adminToken: TOKEN,
        http: true,
        ...options,
      }),
    ],
  })
    .overrideProvider(CONTAINER_DRIVER)
    .useValue(driver)
    .compile();
  const app = moduleRef.createNestApplication({ logger: false, ...appOptions });
  await app.init();
  const pool = app.get(ContainerPoolService);
  await pool.initialize().catch(() => undefined);
  return { app, pool, driver, http: () => request(app.getHttpServer()) };
}

describe('admin API (fake driver)', () => {
  let app: INestApplication | undefined;
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  it('serves stats, containers, executions with auth and maps validation', async () => {
    const h = await host();
    app = h.app;
    await h.http().get('/admin/pool').expect(401);
    const stats = await h.http().get('/admin/pool').set(auth).expect(200);
    expect(stats.body).toMatchObject({ idle: 1, leased: 0, maxContainers: 3 });
    const list = await h.http().get('/admin/pool/containers').set(auth).expect(200);
    expect(list.body).toHaveLength(1);
    const run = await h
      .http()
      .post('/admin/pool/executions')
      .set(auth)
      .send({ cmd: ['echo', 'hi'] })
      .expect(200);
    expect(run.body).toMatchObject({ exitCode: 0, stdout: 'ran echo hi\n' });
    // Valid UTF-8 comes once, as text; base64 only when asked for.
    expect(run.body).not.toHaveProperty('stdoutBase64');
    const raw = await h
      .http()
      .post('/admin/pool/executions')
      .set(auth)
      .send({ cmd: ['echo', 'hi'], outputEncoding: 'base64' })
      .expect(200);
    expect(Buffer.from(raw.body.stdoutBase64, 'base64').toString()).toBe('ran echo hi\n');
    const bad = await h
      .http()
      .post('/admin/pool/executions')
      .set(auth)
      .send({ cmd: ['x'], timeoutMs: 'soon', extra: 1 })
      .expect(400);
    expect(bad.body).toMatchObject({ code: 'INVALID_REQUEST', retryable: false });
    expect(bad.body.details.map((d: { message: string }) => d.message)).toEqual(
      expect.arrayContaining([expect.stringMatching(/^timeoutMs/), expect.stringMatching(/extra/)]),
    );
    expect(bad.body.message).toBe(bad.body.details[0].message);
    await waitFor(() => h.pool.stats().idle === 1, 2000, 'refill');
  });

  it('health and metrics', async () => {
    const h = await host();
    app = h.app;
    await h.http().get('/health/live').expect(200);
    const ready = await h.http().get('/health/ready').expect(200);
    expect(ready.body.status).toBe('ok');
    await h.http().get('/metrics').expect(401);
    const m = await h.http().get('/metrics').set(auth).expect(200);
    expect(m.text).toContain('container_pool_containers{profile="default",state="idle",pool=');
    expect(m.headers['content-type']).toMatch(/text\/plain/);
  });

  it('maps pool errors at the edge: engine down 503 + Retry-After, not ready with the reason', async () => {
    const down = new FakeDriver();
    down.engineUp = false;
    const h = await host({ size: 0 }, {}, down);
    app = h.app;
    const res = await h.http().post('/admin/pool/replenish').set(auth).expect(503);
    expect(res.headers['retry-after']).toBe('5');
    expect(res.body).toMatchObject({ code: 'ENGINE_UNAVAILABLE', retryable: true });
    expect(res.body.message).toMatch(/Docker engine unavailable/);
    const ready = await h.http().get('/health/ready').expect(503);
    expect(ready.body.error.containerPool).toMatchObject({
      status: 'down',
      engineAvailable: false,
    });
    expect(ready.body.error.containerPool.reason).toMatch(/Docker engine unavailable/);
    await h.http().get('/health/live').expect(200);
  });

  it('acquire timeout: 503 with Retry-After', async () => {
    const h = await host({ size: 0, maxContainers: 1, acquireTimeoutMs: 100 });
    app = h.app;
    let open!: () => void;
    h.driver.createGate = new Promise<void>((r) => (open = r));
    const res = await h
      .http()
      .post('/admin/pool/executions')
      .set(auth)
      .send({ cmd: ['true'] })
      .expect(503);
    expect(res.headers['retry-after']).toBe('1');
    expect(res.body.code).toBe('ACQUIRE_TIMEOUT');
    open();
  });

  it('a container lost mid-execution: 502; an unknown error: 500 without details; shutdown: 503', async () => {
    const h = await host({ size: 0, maxContainers: 2 });
    app = h.app;
    const none = Buffer.alloc(0);
    h.driver.execBehaviour = (req, c) =>
      new Promise<FakeExecResult>((resolve) => {
        const done = () =>
          resolve({ exitCode: null, stdout: none, stderr: none, truncated: false, aborted: true });
        req.signal.addEventListener('abort', done, { once: true });
        setTimeout(() => c.die('it was killed (fake)'), 10);
      });
    const lost = await h
      .http()
      .post('/admin/pool/executions')
      .set(auth)
      .send({ cmd: ['true'] })
      .expect(502);
    expect(lost.body).toMatchObject({ code: 'CONTAINER_LOST', retryable: true });

    h.driver.execBehaviour = () => {
      throw new TypeError('internal detail /srv/secret.js:1');
    };
    const unknown = await h
      .http()
      .post('/admin/pool/executions')
      .set(auth)
      .send({ cmd: ['true'] })
      .expect(500);
    expect(JSON.stringify(unknown.body)).not.toMatch(/internal detail|secret|stack/);

    await h.pool.shutdown();
    const down = await h
      .http()
      .post('/admin/pool/executions')
      .set(auth)
      .send({ cmd: ['true'] })
      .expect(503);
    expect(down.body.code).toBe('POOL_SHUTTING_DOWN');
    expect(down.headers['retry-after']).toBeUndefined();
  });

  it('app.close() with an HTTP execution in flight: the shutdown starts before the server closes, so the execution is stopped at the grace (503) and close() ends then', async () => {
    const driver = new FakeDriver();
    driver.execBehaviour = hangingExec; // runs until the pool stops it
    const h = await host({ size: 1, shutdownGraceMs: 300 }, {}, driver);
    app = h.app;
    const shutdown = jest.spyOn(h.pool, 'shutdown');
    const adapter = h.app.getHttpAdapter();
    const closeServer = adapter.close.bind(adapter) as () => Promise<void>;
    const order: string[] = [];
    jest.spyOn(adapter, 'close').mockImplementation(() => {
      order.push(`server closes after ${shutdown.mock.calls.length} shutdown call(s)`);
      return closeServer();
    });
    await h.app.listen(0, '127.0.0.1');
    const { port } = h.app.getHttpServer().address() as AddressInfo;
    // One request on its own connection (no keep-alive: an idle kept-alive connection would hold close() too).
    const running = post(port, '/admin/pool/executions', { cmd: ['sleep', '100'] });
    await waitFor(() => h.pool.stats().leased === 1, 2000, 'the execution to start');

    const t0 = Date.now();
    await h.app.close();
    const took = Date.now() - t0;
    app = undefined;
    const res = await running;
    expect(res.status).toBe(503);
    expect(res.body.code).toBe('POOL_SHUTTING_DOWN');
    expect(order).toEqual(['server closes after 1 shutdown call(s)']);
    // beforeApplicationShutdown started it, onApplicationShutdown awaited the same promise.
    expect(shutdown).toHaveBeenCalledTimes(2);
    expect(shutdown.mock.results[0].value).toBe(shutdown.mock.results[1].value);
    expect(took).toBeGreaterThanOrEqual(250);
    expect(took).toBeLessThan(3000);
    expect(driver.live).toHaveLength(0);
  });

  it('logs each state-changing call with the token fingerprint, never the token', async () => {
    const lines: string[] = [];
    const spies = (['log', 'warn'] as const).map((level) =>
      jest.spyOn(Logger.prototype, level).mockImplementation((...args: any[]) => {
        lines.push(`${level} ${String(args[0])}`);
      }),
    );
    try {
      const h = await host({ size: 0 });
      app = h.app;
      await h.http().put('/admin/pool/size').set(auth).send({ size: 2 }).expect(200);
      await h
        .http()
        .put('/admin/pool/size')
        .set(auth)
        .send({ size: 1, maxContainers: 1 })
        .expect(200);
      await h.http().post('/admin/pool/drain').set(auth).expect(200);
      await h.http().delete('/admin/pool/containers/no-such').set(auth).expect(404);
      const fp = tokenFingerprint(TOKEN);
      expect(lines).toEqual(
        expect.arrayContaining([
          expect.stringMatching(
            new RegExp(`^log token=${fp} action=resize size=2 result=ok idle=`),
          ),
          expect.stringMatching(new RegExp(`token=${fp} action=drain result=ok`)),
          expect.stringMatching(
            new RegExp(`^warn token=${fp} action=remove-container no-such result=error`),
          ),
        ]),
      );
      expect(lines.join('\n')).not.toContain(TOKEN);
    } finally {
      spies.forEach((s) => s.mockRestore());
    }
  });

  it('forRootAsync: options from a factory, prefix and paths from the extras', async () => {
    const driver = new FakeDriver();
    const moduleRef = await Test.createTestingModule({
      imports: [
        ContainerPoolModule.forRootAsync({
          useFactory: () => ({
            image: 'fake:latest',
            size: 0,
            adminToken: [TOKEN],
            metricsPublic: true,
          }),
          http: { prefix: 'ops/pool', healthPath: false, metricsPath: 'ops/metrics' },
        }),
      ],
    })
      .overrideProvider(CONTAINER_DRIVER)
      .useValue(driver)
      .compile();
    app = moduleRef.createNestApplication({ logger: false });
    await app.init();
    const api = () => request(app!.getHttpServer());
    await api().get('/ops/pool').set(auth).expect(200);
    await api().get('/admin/pool').set(auth).expect(404);
    await api().get('/health/live').expect(404);
    await api().get('/ops/metrics').expect(200);
  });

  it('two pools in one app: own prefixes, own metric registries', async () => {
    const pool = (name: string, prefix: string, metricsPath: string) =>
      ContainerPoolModule.forRoot({
        name,
        image: 'fake:latest',
        size: 0,
        adminToken: TOKEN,
        http: true,
        adminPrefix: prefix,
        metricsPath,
        healthPath: `${name}/health`,
      });
    @Module({ imports: [pool('one', 'admin/one', 'one/metrics')] })
    class One {}
    @Module({ imports: [pool('two', 'admin/two', 'two/metrics')] })
    class Two {}
    const moduleRef = await Test.createTestingModule({ imports: [One, Two] })
      .overrideProvider(CONTAINER_DRIVER)
      .useValue(new FakeDriver())
      .compile();
    app = moduleRef.createNestApplication({ logger: false });
    await app.init();
    const api = () => request(app!.getHttpServer());
    expect((await api().get('/admin/one').set(auth).expect(200)).body.name).toBe('one');
    expect((await api().get('/admin/two').set(auth).expect(200)).body.name).toBe('two');
    const one = await api().get('/one/metrics').set(auth).expect(200);
    const two = await api().get('/two/metrics').set(auth).expect(200);
    expect(one.text).toContain('pool="one"');
    expect(one.text).not.toContain('pool="two"');
    expect(two.text).toContain('pool="two"');
    await api().get('/two/health/ready').expect(200);
  });

  it('documents every route in OpenAPI, with the bearer scheme on the guarded ones', async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [
        ContainerPoolModule.forRoot({
          image: 'fake:latest',
          size: 0,
          adminToken: TOKEN,
          http: true,
        }),
      ],
    })
      .overrideProvider(CONTAINER_DRIVER)
      .useValue(new FakeDriver())
      .compile();
    app = moduleRef.createNestApplication({ logger: false });
    expect(setupContainerPoolDocs(app, 'docs')).toBe(true);
    await app.init();
    const api = () => request(app!.getHttpServer());
    await api().get('/docs').expect(200);
    const doc = (await api().get('/docs-json').expect(200)).body;
    expect(doc.components.securitySchemes[ADMIN_BEARER_SCHEME]).toMatchObject({
      type: 'http',
      scheme: 'bearer',
    });
    const ops = Object.entries(doc.paths as Record<string, Record<string, any>>).flatMap(
      ([path, byMethod]) =>
        Object.entries(byMethod).map(([method, op]) => ({
          route: `${method.toUpperCase()} ${path}`,
          op,
        })),
    );
    expect(ops.map((o) => o.route).sort()).toEqual(
      [
        'DELETE /admin/pool/containers/{id}',
        'GET /admin/pool',
        'GET /admin/pool/containers',
        'GET /health/live',
        'GET /health/ready',
        'GET /metrics',
        'POST /admin/pool/drain',
        'POST /admin/pool/executions',
        'POST /admin/pool/replenish',
        'POST /admin/pool/resume',
        'PUT /admin/pool',
        'PUT /admin/pool/size',
        'GET /admin/pool/profiles',
        'DELETE /admin/pool/profiles/{profile}/containers/{id}',
        'GET /admin/pool/profiles/{profile}',
        'GET /admin/pool/profiles/{profile}/containers',
        'POST /admin/pool/profiles/{profile}/drain',
        'POST /admin/pool/profiles/{profile}/executions',
        'POST /admin/pool/profiles/{profile}/replenish',
        'POST /admin/pool/profiles/{profile}/resume',
        'PUT /admin/pool/profiles/{profile}',
        'PUT /admin/pool/profiles/{profile}/size',
        'POST /admin/pool/sessions',
        'GET /admin/pool/sessions',
        'GET /admin/pool/sessions/{id}',
        'DELETE /admin/pool/sessions/{id}',
        'POST /admin/pool/sessions/{id}/executions',
        'POST /admin/pool/sessions/{id}/interrupt',
        'POST /admin/pool/sessions/{id}/restart',
        'PUT /admin/pool/sessions/{id}/files/{path}',
        'GET /admin/pool/sessions/{id}/files/{path}',
      ].sort(),
    );
    // The executions answer JSON, or streams NDJSON or SSE.
    for (const path of ['/admin/pool/executions', '/admin/pool/profiles/{profile}/executions']) {
      const ok = doc.paths[path].post.responses['200'];
      expect(Object.keys(ok.content).sort()).toEqual(
        ['application/json', 'application/x-ndjson', 'text/event-stream'].sort(),
      );
      expect(ok.content['application/json'].schema).toEqual({
        $ref: '#/components/schemas/ExecResultDto',
      });
      expect(doc.paths[path].post.description).toContain('application/x-ndjson');
    }
    for (const { route, op } of ops) {
      if (route.includes('/health/')) expect(op.security).toBeUndefined();
      else {
        expect(op.security).toEqual([{ [ADMIN_BEARER_SCHEME]: [] }]);
        expect(Object.keys(op.responses)).toEqual(expect.arrayContaining(['401', '403']));
        // Its success: 200, or 201 (a session opened), 204 (no content).
        expect(Object.keys(op.responses).filter((s) => /^2\d\d$/.test(s))).not.toEqual([]);
      }
    }
    // The profile routes have the path parameter; the default routes have none.
    for (const { route, op } of ops) {
      const names = ((op.parameters ?? []) as { name: string; in: string }[])
        .filter((p) => p.in === 'path')
        .map((p) => p.name);
      expect(names.includes('profile')).toBe(route.includes('{profile}'));
      // A profile route answers 404 UNKNOWN_PROFILE for a name the module lacks; the default routes do not.
      if (route.includes('{profile}')) expect(Object.keys(op.responses)).toContain('404');
    }
    const exec = ops.find((o) => o.route === 'POST /admin/pool/executions')!.op;
    expect(Object.keys(exec.responses)).toEqual(
      expect.arrayContaining(['200', '400', '401', '403', '413', '502', '503']),
    );
    expect(doc.components.schemas.ExecResultDto.properties.stdoutBase64).toMatchObject({
      format: 'byte',
    });
  });
});

/*
 * The admin REST API, health, metrics and executions, served by ContainerPoolModule in a host app built the way
 * a host app would build it (no global pipes, no global filters, Nest's default body parser), against the
 * real engine.
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import request from 'supertest';
import { ContainerPoolModule } from '../../src/container-pool/container-pool.module';
import type { ContainerPoolModuleExtras } from '../../src/container-pool/container-pool.module-definition';
import { ContainerPoolService } from '../../src/container-pool/container-pool.service';
import type { Container } from '../../src/container-pool/interfaces/container.interface';
import type { ContainerPoolModuleOptions } from '../../src/container-pool/interfaces/container-pool-options.interface';
import {
  BUSYBOX_IMAGE,
  docker,
  engineContainers,
  eventually,
  expectNoContainersLeft,
  SANDBOX_IMAGE,
  TEST_LABEL,
  uniquePoolName,
} from '../support/integration';

const OLD_TOKEN = `e2e-old-${randomBytes(12).toString('hex')}`;
const NEW_TOKEN = `e2e-new-${randomBytes(12).toString('hex')}`;
const bearer = (t: string) => ({ Authorization: `Bearer ${t}` });
const AUTH = bearer(NEW_TOKEN);
const MAX_BODY = 64 * 1024;

/** Every problem of an invalid-request body (the one error shape: message, then details). */
const problems = (body: { message: string; details?: { message: string }[] }) =>
  [body.message, ...(body.details ?? []).map((d) => d.message)].join('; ');

/** A host app importing the module; `bodyParser` as in NestFactory.create. */
async function hostApp(
  options: ContainerPoolModuleOptions & ContainerPoolModuleExtras,
  appOptions: { bodyParser?: boolean } = {},
) {
  const name = options.name ?? uniquePoolName('e2e');
  const moduleRef = await Test.createTestingModule({
    imports: [
      ContainerPoolModule.forRoot({
        image: SANDBOX_IMAGE,
        pullPolicy: 'never',
        http: true,
        ...options,
        name,
      }),
    ],
  }).compile();
  const app = moduleRef.createNestApplication({ logger: ['error'], ...appOptions });
  await app.init();
  const pool = app.get(ContainerPoolService);
  await pool.initialize();
  return { app, name, pool, http: () => request(app.getHttpServer()) };
}

async function isRunning(id: string): Promise<boolean | null> {
  try {
    return (await docker.getContainer(id).inspect()).State.Running;
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode === 404) return null;
    throw err;
  }
}

describe('admin API on the real engine (default host app)', () => {
  let app: INestApplication;
  let pool: ContainerPoolService;
  let name: string;
  let api: () => ReturnType<typeof request>;

  beforeAll(async () => {
    ({
      app,
      pool,
      name,
      http: api,
    } = await hostApp({
      adminToken: [OLD_TOKEN, NEW_TOKEN],
      size: 1,
      maxContainers: 3,
      maxBodyBytes: MAX_BODY,
      maxExecTimeoutMs: 60_000,
      containerLifetimeMs: 120_000,
    }));
    await eventually(() => pool.stats().idle === 1, 20_000, 'first fill');
  });

  afterAll(async () => {
    await app?.close();
    if (name) await expectNoContainersLeft(name);
  });

  const idleAgain = () => eventually(() => pool.stats().idle >= 1, 20_000, 'refill');

  describe('auth', () => {
    // Every row has three entries: jest.each passes `done` in the place of a missing one.
    const routes: [string, string, object | null][] = [
      ['get', '/admin/pool', null],
      ['get', '/admin/pool/containers', null],
      ['post', '/admin/pool/replenish', null],
      ['put', '/admin/pool/size', { size: 2 }],
      ['post', '/admin/pool/drain', null],
      ['post', '/admin/pool/resume', null],
      ['delete', '/admin/pool/containers/aaaaaaaaaaaa', null],
      ['post', '/admin/pool/executions', { cmd: ['true'] }],
      ['get', '/metrics', null],
    ];
    const call = (method: string, path: string, body: object | null, headers: object = {}) => {
      const req = (api() as any)[method](path).set(headers);
      return body ? req.send(body) : req;
    };

    it.each(routes)(
      '%s %s without a token: 401 with WWW-Authenticate',
      async (method, path, body) => {
        const before = pool.stats();
        const res = await call(method, path, body);
        expect(res.status).toBe(401);
        expect(res.headers['www-authenticate']).toMatch(/^Bearer realm=/);
        expect(res.body.message).toMatch(/Authorization: Bearer/);
        const after = pool.stats();
        expect(after).toMatchObject({
          size: before.size,
          maxContainers: before.maxContainers,
          draining: false,
        });
        expect(after.totals.executions).toBe(before.totals.executions);
      },
    );

    it.each(routes)('%s %s with a wrong token: 401', async (method, path, body) => {
      const res = await call(method, path, body, bearer(`${NEW_TOKEN}x`));
      expect(res.status).toBe(401);
      expect(res.headers['www-authenticate']).toMatch(/error="invalid_token"/);
      expect(res.body.message).toBe('Invalid bearer token.');
    });

    it('rejects a malformed Authorization header and a token in another scheme', async () => {
      await api().get('/admin/pool').set('Authorization', NEW_TOKEN).expect(401);
      await api().get('/admin/pool').set('Authorization', `Basic ${NEW_TOKEN}`).expect(401);
      await api().get('/admin/pool').set('Authorization', `Bearer ${NEW_TOKEN} extra`).expect(401);
    });

    it('accepts both tokens of a rotation', async () => {
      await api().get('/admin/pool').set(bearer(OLD_TOKEN)).expect(200);
      await api().get('/admin/pool').set(bearer(NEW_TOKEN)).expect(200);
      await api().get('/admin/pool').set('Authorization', `bearer ${NEW_TOKEN}`).expect(200);
    });

    it('serves health without a token', async () => {
      await api()
        .get('/health/live')
        .expect(200, { status: 'ok', info: {}, error: {}, details: {} });
      const ready = await api().get('/health/ready').expect(200);
      expect(ready.body.info.containerPool).toMatchObject({
        status: 'up',
        pool: name,
        engineAvailable: true,
      });
    });
  });

  describe('stats and containers', () => {
    it('GET / answers the stats', async () => {
      const res = await api().get('/admin/pool').set(AUTH).expect(200);
      expect(res.body).toMatchObject({
        name,
        image: SANDBOX_IMAGE,
        idle: 1,
        leased: 0,
        creating: 0,
        waiting: 0,
        size: 1,
        maxContainers: 3,
        engineAvailable: true,
        draining: false,
        lastError: null,
      });
      for (const key of [
        'created',
        'destroyed',
        'failedCreates',
        'timeouts',
        'ooms',
        'orphansRemoved',
      ]) {
        expect(typeof res.body.totals[key]).toBe('number');
      }
    });

    it('GET /containers lists the containers of the pool', async () => {
      const res = await api().get('/admin/pool/containers').set(AUTH).expect(200);
      const engine = await engineContainers(name);
      expect(res.body).toHaveLength(1);
      const [c] = res.body;
      expect(c).toMatchObject({ state: 'idle', image: SANDBOX_IMAGE });
      expect(c.id).toMatch(/^[0-9a-f]{64}$/);
      expect(engine.map((e) => e.Id)).toContain(c.id);
      expect(new Date(c.createdAt).toISOString()).toBe(c.createdAt);
      expect(Date.parse(c.expiry)).toBeGreaterThan(Date.parse(c.createdAt));
    });

    it('POST /replenish tops up and answers the stats', async () => {
      const res = await api().post('/admin/pool/replenish').set(AUTH).expect(200);
      expect(res.body).toMatchObject({ name, idle: 1, size: 1 });
    });
  });

  describe('executions', () => {
    it('runs a command and answers 200 with the result', async () => {
      await idleAgain();
      const res = await api()
        .post('/admin/pool/executions')
        .set(AUTH)
        .send({
          cmd: ['sh', '-c', 'echo "$GREETING"; cat; echo err >&2'],
          env: { GREETING: 'hi' },
          stdin: 'in',
        })
        .expect(200);
      expect(res.body).toMatchObject({
        exitCode: 0,
        stdout: 'hi\nin',
        stderr: 'err\n',
        timedOut: false,
        oomKilled: false,
        truncated: false,
      });
      expect(res.body).not.toHaveProperty('stdoutBase64');
      expect(res.body.containerId).toMatch(/^[0-9a-f]{64}$/);
      expect(res.body).not.toHaveProperty('stdoutBytes');
    });

    it('answers 200 for a non-zero exit, with raw bytes in base64', async () => {
      await idleAgain();
      const res = await api()
        .post('/admin/pool/executions')
        .set(AUTH)
        .send({ cmd: ['sh', '-c', "printf '\\000\\377ok'; exit 3"] })
        .expect(200);
      expect(res.body.exitCode).toBe(3);
      expect([...Buffer.from(res.body.stdoutBase64, 'base64')]).toEqual([0, 255, 111, 107]);
    });

    it('runs Python code', async () => {
      await idleAgain();
      const res = await api()
        .post('/admin/pool/executions')
        .set(AUTH)
        .send({ code: 'import sys\nprint(sum(range(10)), sys.stdin.read())', stdin: 'x' })
        .expect(200);
      expect(res.body).toMatchObject({ exitCode: 0, stdout: '45 x\n' });
    });

    it('answers 200 with timedOut when the program runs past timeoutMs', async () => {
      await idleAgain();
      const res = await api()
        .post('/admin/pool/executions')
        .set(AUTH)
        .send({ cmd: ['sleep', '30'], timeoutMs: 500 })
        .expect(200);
      expect(res.body).toMatchObject({ timedOut: true, exitCode: null });
    });

    it('aborts the execution and removes its container when the client disconnects', async () => {
      await idleAgain();
      const before = pool.stats().totals;
      const server = app.getHttpServer() as http.Server;
      if (!server.listening) await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      const { port } = server.address() as AddressInfo;
      const body = JSON.stringify({ cmd: ['sleep', '30'] });
      const req = http.request({
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: '/admin/pool/executions',
        headers: {
          ...AUTH,
          'Content-Type': 'application/json',
          'Content-Length': Buffer.byteLength(body),
        },
      });
      req.on('error', () => undefined);
      req.end(body);
      await eventually(() => pool.stats().leased === 1, 10_000, 'the execution to start');
      const leasedId = pool.containers().find((c) => c.state === 'leased')!.id;
      expect(await isRunning(leasedId)).toBe(true);
      await new Promise((r) => setTimeout(r, 300));
      req.destroy();
      await eventually(() => pool.stats().leased === 0, 5_000, 'the lease to end');
      await eventually(
        async () => (await isRunning(leasedId)) === null,
        5_000,
        'the container removal',
      );
      const after = pool.stats().totals;
      expect(after.executions).toBe(before.executions);
      expect(after.destroyed).toBeGreaterThan(before.destroyed);
    });
  });

  describe('validation', () => {
    const exec = (body: unknown) =>
      api()
        .post('/admin/pool/executions')
        .set(AUTH)
        .set('Content-Type', 'application/json')
        .send(body as object);

    it.each([
      [{ cmd: 'echo hi' }, /cmd must be an array/],
      [{ cmd: [] }, /cmd should not be empty/],
      [{ cmd: ['echo', 1] }, /each value in cmd must be a string/],
      [{ code: 42 }, /code must be a string/],
      [{ cmd: ['true'], timeoutMs: 'soon' }, /timeoutMs must be an integer/],
      [{ cmd: ['true'], timeoutMs: 1.5 }, /timeoutMs must be an integer/],
      [{ cmd: ['true'], timeoutMs: -1 }, /timeoutMs must not be less than 1/],
      [
        { cmd: ['true'], timeoutMs: 60_001 },
        /timeoutMs must not be greater than maxExecTimeoutMs \(60000\)/,
      ],
      [{ cmd: ['true'], maxOutputBytes: 0 }, /maxOutputBytes must not be less than 1/],
      [{ cmd: ['true'], env: { A: 1 } }, /env must be an object/],
      [{ cmd: ['true'], env: { 'BAD-NAME': 'x' } }, /env must be an object/],
      [{ cmd: ['true'], workdir: 'relative' }, /workdir must be an absolute path/],
      [{ cmd: ['true'], stdin: null }, /stdin must be a string/],
      [{ cmd: ['true'], extra: 1 }, /property extra should not exist/],
      [{ cmd: ['true'], code: 'print(1)' }, /give exactly one of cmd/],
      [{}, /give exactly one of cmd/],
      [[{ cmd: ['true'] }], /body must be a JSON object/],
    ])('POST /executions %j: 400 naming the field', async (body, message) => {
      const before = pool.stats().totals.executions;
      const res = await exec(body).expect(400);
      expect(problems(res.body)).toMatch(message);
      expect(res.body).toMatchObject({
        statusCode: 400,
        code: 'INVALID_REQUEST',
        retryable: false,
      });
      expect(res.body).not.toHaveProperty('stack');
      expect(pool.stats().totals.executions).toBe(before);
    });

    it.each([
      [{ size: -1 }, /size must not be less than 0/],
      [{ size: 'big' }, /size must be an integer/],
      [{ size: 4 }, /size must not be greater than maxContainers \(3\)/],
      [{ size: 2, maxContainers: 1 }, /size must not be greater than maxContainers \(1\)/],
      [{ maxContainers: 0 }, /maxContainers must not be less than 1/],
      [{ size: 1, colour: 'red' }, /property colour should not exist/],
      [{}, /size or maxContainers is required/],
    ])('PUT /size %j: 400 naming the field', async (body, message) => {
      const res = await api().put('/admin/pool/size').set(AUTH).send(body).expect(400);
      expect(problems(res.body)).toMatch(message);
      expect(pool.stats()).toMatchObject({ size: 1, maxContainers: 3 });
    });

    it('malformed JSON: 400 saying so', async () => {
      const res = await api()
        .post('/admin/pool/executions')
        .set(AUTH)
        .set('Content-Type', 'application/json')
        .send('{"cmd": ["true"],}')
        .expect(400);
      expect(String(res.body.message)).toMatch(/JSON/);
    });

    it('a body over maxBodyBytes: 413 naming the limit', async () => {
      const res = await exec({ cmd: ['true'], stdin: 'x'.repeat(MAX_BODY) }).expect(413);
      expect(res.body.message).toMatch(new RegExp(`limit of ${MAX_BODY} bytes`));
    });

    it.each(['not valid!', 'abc', 'a'.repeat(65), '-leading-dash', '%2e%2e'])(
      'DELETE /containers/%s: 400',
      async (id) => {
        const res = await api()
          .delete(`/admin/pool/containers/${encodeURIComponent(id)}`)
          .set(AUTH)
          .expect(400);
        expect(res.body.message).toMatch(/^id must be a full container id/);
      },
    );
  });

  describe('DELETE /containers/:id', () => {
    it('removes a container of the pool by full id, id prefix or name', async () => {
      for (const ref of ['id', 'prefix', 'name'] as const) {
        await eventually(
          () => pool.containers().some((c) => c.state === 'idle'),
          20_000,
          'an idle container',
        );
        const c = pool.containers().find((x) => x.state === 'idle')!;
        const param = ref === 'id' ? c.id : ref === 'prefix' ? c.id.slice(0, 12) : c.name;
        const res = await api().delete(`/admin/pool/containers/${param}`).set(AUTH).expect(200);
        expect(res.body.removed).toMatchObject({ id: c.id, name: c.name, state: 'idle' });
        expect(await isRunning(c.id)).toBeNull();
      }
    });

    it('answers 404 for a container outside the pool and leaves it running', async () => {
      const foreign = await docker.createContainer({
        Image: BUSYBOX_IMAGE,
        Cmd: ['sleep', '60'],
        Labels: { [TEST_LABEL]: 'e2e-foreign' },
        HostConfig: { NetworkMode: 'none' },
      });
      try {
        await foreign.start();
        const info = await foreign.inspect();
        for (const ref of [info.Id, info.Id.slice(0, 12), info.Name.replace(/^\//, '')]) {
          const res = await api().delete(`/admin/pool/containers/${ref}`).set(AUTH).expect(404);
          expect(res.body.message).toMatch(/No container/);
        }
        expect(await isRunning(info.Id)).toBe(true);
      } finally {
        await foreign.remove({ force: true });
      }
    });

    it('answers 404 for an unknown name', async () => {
      await api().delete('/admin/pool/containers/no-such-container').set(AUTH).expect(404);
    });
  });

  describe('resize, drain and resume', () => {
    let leased: Container | undefined;
    afterEach(async () => {
      if (leased) pool.release(leased);
      leased = undefined;
      await api().post('/admin/pool/resume').set(AUTH);
      await api().put('/admin/pool/size').set(AUTH).send({ size: 1, maxContainers: 3 });
    });

    it('resizes up and down while a container is leased, never removing the leased one', async () => {
      await idleAgain();
      leased = await pool.acquire();
      const up = await api().put('/admin/pool/size').set(AUTH).send({ size: 2 }).expect(200);
      expect(up.body).toMatchObject({ size: 2, maxContainers: 3, leased: 1 });
      await eventually(() => pool.stats().idle === 2, 20_000, 'growth to 2 idle');

      const down = await api()
        .put('/admin/pool/size')
        .set(AUTH)
        .send({ size: 0, maxContainers: 1 })
        .expect(200);
      expect(down.body).toMatchObject({ size: 0, maxContainers: 1, leased: 1 });
      await eventually(
        () => pool.stats().idle === 0 && pool.stats().destroying === 0,
        10_000,
        'shrink',
      );
      expect(await isRunning(leased.id)).toBe(true);
      const run = await leased.execute(['echo', 'still here']);
      expect(run.stdout).toBe('still here\n');
      const rows = await api().get('/admin/pool/containers').set(AUTH).expect(200);
      expect(rows.body).toEqual([expect.objectContaining({ id: leased.id, state: 'leased' })]);
    });

    it('drains (503 with Retry-After meanwhile, not ready), then resumes', async () => {
      await idleAgain();
      const drained = await api().post('/admin/pool/drain').set(AUTH).expect(200);
      expect(drained.body).toMatchObject({ draining: true, idle: 0 });
      expect(await engineContainers(name)).toHaveLength(0);

      const refused = await api()
        .post('/admin/pool/executions')
        .set(AUTH)
        .send({ cmd: ['true'] })
        .expect(503);
      expect(refused.headers['retry-after']).toBe('30');
      expect(refused.body).toMatchObject({ code: 'POOL_DRAINED', retryable: true });
      const ready = await api().get('/health/ready').expect(503);
      expect(ready.body.error.containerPool.reason).toMatch(/drained .*POST \/admin\/pool\/resume/);
      await new Promise((r) => setTimeout(r, 300));
      expect(pool.stats().idle).toBe(0);

      const resumed = await api().post('/admin/pool/resume').set(AUTH).expect(200);
      expect(resumed.body.draining).toBe(false);
      await idleAgain();
      await api().get('/health/ready').expect(200);
    });
  });

  describe('metrics', () => {
    it('serves Prometheus text with the pool label, gauges, counters and histograms', async () => {
      const res = await api().get('/metrics').set(AUTH).expect(200);
      expect(res.headers['content-type']).toMatch(/^text\/plain;.*version=0\.0\.4/);
      const s = pool.stats();
      /** The value of one series, whatever the order of its labels. */
      const sample = (metric: string, labels: Record<string, string> = {}): number | undefined => {
        // Without profiles the module's one profile is named by the module's name.
        const want = Object.entries({ ...labels, pool: name, profile: name }).map(
          ([k, v]) => `${k}="${v}"`,
        );
        for (const line of res.text.split('\n')) {
          const m = /^([a-z_]+)\{([^}]*)\} (\S+)$/.exec(line);
          if (!m || m[1] !== metric) continue;
          const have = m[2].split(',');
          if (have.length === want.length && want.every((l) => have.includes(l)))
            return Number(m[3]);
        }
        return undefined;
      };
      expect(sample('container_pool_containers', { state: 'leased' })).toBe(s.leased);
      expect(sample('container_pool_containers', { state: 'idle' })).toBe(s.idle);
      expect(sample('container_pool_max_containers')).toBe(3);
      expect(sample('container_pool_engine_available')).toBe(1);
      expect(sample('container_pool_containers_created_total')).toBe(s.totals.created);
      expect(sample('container_pool_containers_destroyed_total')).toBe(s.totals.destroyed);
      expect(sample('container_pool_execution_timeouts_total')).toBe(1);
      expect(sample('container_pool_executions_total')).toBe(s.totals.executions);
      expect(sample('container_pool_orphans_removed_total')).toBe(s.totals.orphansRemoved);
      expect(sample('container_pool_exec_duration_seconds_count', { outcome: 'success' })).toBe(3);
      expect(sample('container_pool_exec_duration_seconds_count', { outcome: 'failure' })).toBe(1);
      expect(sample('container_pool_exec_duration_seconds_count', { outcome: 'timeout' })).toBe(1);
      expect(sample('container_pool_create_duration_seconds_count')).toBe(s.totals.created);
      expect(sample('container_pool_acquire_wait_seconds_count')).toBe(s.totals.acquired);
    });
  });
});

describe('admin API with the module parsing bodies itself (host created with bodyParser: false)', () => {
  let app: INestApplication;
  let name: string;
  let api: () => ReturnType<typeof request>;

  beforeAll(async () => {
    ({
      app,
      name,
      http: api,
    } = await hostApp(
      {
        adminToken: NEW_TOKEN,
        size: 0,
        maxContainers: 1,
        maxWaiters: 0,
        maxBodyBytes: 1024 * 1024,
        metricsPublic: true,
        adminPrefix: '/ops/pool/',
        healthPath: 'hc',
      },
      { bodyParser: false },
    ));
  });

  afterAll(async () => {
    await app?.close();
    if (name) await expectNoContainersLeft(name);
  });

  it('serves the admin API at the configured prefix only', async () => {
    await api().get('/ops/pool').set(AUTH).expect(200);
    await api().get('/admin/pool').set(AUTH).expect(404);
    await api().get('/hc/ready').expect(200);
  });

  it('accepts bodies above the 100 kB of the default parser, up to maxBodyBytes', async () => {
    // 900 kB of code gets through parsing and validation and runs.
    const res = await api()
      .post('/ops/pool/executions')
      .set(AUTH)
      .send({ code: `x = "${'a'.repeat(900 * 1024)}"\nprint(len(x))` })
      .expect(200);
    expect(res.body).toMatchObject({ exitCode: 0, stdout: `${900 * 1024}\n`, timedOut: false });
  });

  it('malformed JSON: 400 saying the body is not valid JSON', async () => {
    const res = await api()
      .post('/ops/pool/executions')
      .set(AUTH)
      .set('Content-Type', 'application/json')
      .send('{"cmd": [')
      .expect(400);
    expect(res.body.message).toMatch(/^Request body is not valid JSON/);
  });

  it('a body over the limit: 413, declared or streamed', async () => {
    const big = JSON.stringify({ code: 'a'.repeat(1024 * 1024) });
    const declared = await api()
      .post('/ops/pool/executions')
      .set(AUTH)
      .set('Content-Type', 'application/json')
      .send(big)
      .expect(413);
    expect(declared.body.message).toMatch(
      /limit of 1048576 bytes \(maxBodyBytes, POOL_MAX_BODY_BYTES\)/,
    );

    const server = app.getHttpServer() as http.Server;
    if (!server.listening) await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as AddressInfo;
    const streamed = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.request(
        {
          host: '127.0.0.1',
          port,
          method: 'POST',
          path: '/ops/pool/executions',
          headers: { ...AUTH, 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' },
        },
        (res) => {
          let body = '';
          res.on('data', (c: Buffer) => (body += c.toString()));
          res.on('end', () => resolve({ status: res.statusCode!, body }));
        },
      );
      req.on('error', reject);
      for (let i = 0; i < 20; i++) req.write(Buffer.alloc(64 * 1024, 'a'));
      req.end();
    });
    expect(streamed.status).toBe(413);
    expect(streamed.body).toMatch(/maxBodyBytes/);
  });

  it('a body that is not JSON: 415', async () => {
    const res = await api()
      .put('/ops/pool/size')
      .set(AUTH)
      .set('Content-Type', 'application/x-www-form-urlencoded')
      .send('size=2')
      .expect(415);
    expect(res.body.message).toMatch(/application\/json/);
  });

  it('serves public metrics without a token', async () => {
    const res = await api().get('/metrics').expect(200);
    expect(res.text).toContain(`container_pool_size{profile="${name}",pool="${name}"} 0`);
  });
});

describe('admin API without a token configured', () => {
  let app: INestApplication;
  let name: string;
  let api: () => ReturnType<typeof request>;

  beforeAll(async () => {
    ({ app, name, http: api } = await hostApp({ adminToken: [], size: 0, maxContainers: 1 }));
  });

  afterAll(async () => {
    await app?.close();
    if (name) await expectNoContainersLeft(name);
  });

  it.each([
    ['get', '/admin/pool'],
    ['get', '/admin/pool/containers'],
    ['post', '/admin/pool/replenish'],
    ['put', '/admin/pool/size'],
    ['post', '/admin/pool/drain'],
    ['post', '/admin/pool/resume'],
    ['delete', '/admin/pool/containers/aaaaaaaaaaaa'],
    ['post', '/admin/pool/executions'],
  ])('%s %s: 403 with how to enable it, whatever the token', async (method, path) => {
    for (const headers of [{}, AUTH]) {
      const res = await (api() as any)[method](path).set(headers).send({ size: 1 });
      expect(res.status).toBe(403);
      expect(res.body.message).toMatch(/Set POOL_ADMIN_TOKEN/);
    }
  });

  it('metrics: 403 naming the settings; health stays open', async () => {
    const res = await api().get('/metrics').expect(403);
    expect(res.body.message).toMatch(/POOL_METRICS_PUBLIC/);
    await api().get('/health/live').expect(200);
  });
});

describe('admin API switched off', () => {
  it('serves no admin route but keeps health and metrics', async () => {
    const {
      app,
      name,
      http: api,
    } = await hostApp({
      adminToken: NEW_TOKEN,
      adminApi: false,
      metricsPath: 'pool-metrics',
      size: 0,
      maxContainers: 1,
    });
    try {
      await api().get('/admin/pool').set(AUTH).expect(404);
      await api()
        .post('/admin/pool/executions')
        .set(AUTH)
        .send({ cmd: ['true'] })
        .expect(404);
      await api().get('/pool-metrics').set(AUTH).expect(200);
      await api().get('/health/live').expect(200);
    } finally {
      await app.close();
      await expectNoContainersLeft(name);
    }
  });
});

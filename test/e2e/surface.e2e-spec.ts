/*
 * The module's surface as the official modules have it (issue "opt-in routes and env, token scopes, one error
 * shape"), each point against the real engine: no route and no environment unless asked, a warning for a route
 * the host serves too, scopes per route, one error shape, the result fields and the base64 rule.
 */
import { randomBytes } from 'node:crypto';
import { Controller, Get, INestApplication, Logger, Module, Param } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import request from 'supertest';
import {
  ContainerPoolHttpModule,
  ContainerPoolModule,
  ContainerPoolService,
  InvalidPoolConfigError,
} from '../../src';
import type { ContainerPoolModuleExtras } from '../../src/container-pool/container-pool.module-definition';
import type { ContainerPoolModuleOptions } from '../../src/container-pool/interfaces/container-pool-options.interface';
import { tokenFingerprint } from '../../src/container-pool/http/guards/admin-token.guard';
import { expectNoContainersLeft, SANDBOX_IMAGE, uniquePoolName } from '../support/integration';

const token = (scope: string) => `${scope}-${randomBytes(12).toString('hex')}`;
const ADMIN = token('admin');
const EXEC = token('exec');
const READ = token('read');
const bearer = (t: string) => ({ Authorization: `Bearer ${t}` });

/** Every warn (and log) line written while `fn` runs. */
async function logLines<T>(
  fn: () => Promise<T>,
): Promise<{ result: T; warn: string[]; log: string[] }> {
  const warn: string[] = [];
  const log: string[] = [];
  const spies = [
    jest
      .spyOn(Logger.prototype, 'warn')
      .mockImplementation((m: unknown) => void warn.push(String(m))),
    jest
      .spyOn(Logger.prototype, 'log')
      .mockImplementation((m: unknown) => void log.push(String(m))),
  ];
  try {
    return { result: await fn(), warn, log };
  } finally {
    spies.forEach((s) => s.mockRestore());
  }
}

/** A host app built as a host would: the module with these options, and maybe controllers of its own. */
async function hostApp(
  options: ContainerPoolModuleOptions & ContainerPoolModuleExtras,
  extra: { controllers?: any[]; imports?: any[]; bodyParser?: boolean } = {},
) {
  const name = options.name ?? uniquePoolName('surface');
  const moduleRef = await Test.createTestingModule({
    imports: [
      ContainerPoolModule.forRoot({
        image: SANDBOX_IMAGE,
        pullPolicy: 'never',
        size: 0,
        maxContainers: 2,
        ...options,
        name,
      }),
      ...(extra.imports ?? []),
    ],
    controllers: extra.controllers ?? [],
  }).compile();
  const app = moduleRef.createNestApplication({
    logger: ['error', 'warn', 'log'],
    bodyParser: extra.bodyParser ?? true,
  });
  await app.init();
  const pool = app.get(ContainerPoolService);
  return { app, name, pool, http: () => request(app.getHttpServer()) };
}

async function closeAll(...apps: { app: INestApplication; name: string }[]) {
  for (const a of apps) {
    await a.app.close();
    await expectNoContainersLeft(a.name);
  }
}

/** The one error shape: exactly these keys, of these types. */
function expectErrorShape(body: Record<string, unknown>, status: number, code?: string) {
  const allowed = ['statusCode', 'error', 'code', 'message', 'field', 'retryable', 'details'];
  expect(Object.keys(body).filter((k) => !allowed.includes(k))).toEqual([]);
  expect(body).toMatchObject({
    statusCode: status,
    error: expect.any(String),
    code: code ?? expect.any(String),
    message: expect.any(String),
    retryable: expect.any(Boolean),
  });
  if (body.field !== undefined) expect(typeof body.field).toBe('string');
  if (body.details !== undefined) expect(Array.isArray(body.details)).toBe(true);
}

describe('surface: a library host opts in to routes', () => {
  it('without http: the module adds no route and logs no token warning', async () => {
    const { result: host, warn } = await logLines(() => hostApp({}));
    try {
      for (const path of [
        '/admin/pool',
        '/admin/pool/containers',
        '/health/live',
        '/health/ready',
        '/metrics',
      ]) {
        await host.http().get(path).set(bearer(ADMIN)).expect(404);
      }
      await host
        .http()
        .post('/admin/pool/executions')
        .send({ cmd: ['true'] })
        .expect(404);
      expect(warn.join('\n')).not.toMatch(/token|admin API/i);
      // The library still works in process.
      const r = await host.pool.run({ code: 'print(6 * 7)' });
      expect(r.stdout).toBe('42\n');
    } finally {
      await closeAll(host);
    }
  });

  it("http: true beside a host's own GET /health/ready: a warning names the method, the path and the host's controller", async () => {
    @Controller('health')
    class HostHealthController {
      @Get('ready')
      ready() {
        return { host: true };
      }
    }
    const { result: host, warn } = await logLines(() =>
      hostApp({ http: true, adminToken: ADMIN }, { controllers: [HostHealthController] }),
    );
    try {
      const collisions = warn.filter((w) => /also served by the host/.test(w));
      expect(collisions).toHaveLength(1);
      expect(collisions[0]).toMatch(/GET \/health\/ready/);
      expect(collisions[0]).toMatch(/HostHealthController\.ready/);
      // Moved, no collision.
      const { result: moved, warn: quiet } = await logLines(() =>
        hostApp(
          { http: { healthPath: 'pool-health' }, adminToken: ADMIN },
          { controllers: [HostHealthController] },
        ),
      );
      expect(quiet.filter((w) => /also served by the host/.test(w))).toEqual([]);
      await moved.pool.initialize();
      await moved.http().get('/pool-health/ready').expect(200);
      expect((await moved.http().get('/health/ready').expect(200)).body).toEqual({ host: true });
      await closeAll(moved);
    } finally {
      await closeAll(host);
    }
  });

  it("a host's parameter route over a pool route: a warning says which answers, and that one does", async () => {
    @Controller('admin/pool')
    class HostByIdController {
      @Get(':id')
      byId(@Param('id') id: string) {
        return { host: id };
      }
    }
    const { result: host, warn } = await logLines(() =>
      hostApp({ http: true, adminToken: ADMIN }, { controllers: [HostByIdController] }),
    );
    try {
      expect(warn.filter((w) => /HostByIdController/.test(w))).toEqual(
        ['containers', 'profiles', 'sessions'].map((route) =>
          expect.stringMatching(
            new RegExp(
              `^route GET /admin/pool/${route} of the container pool "[^"]+" overlaps the host's ` +
                'HostByIdController\\.byId \\(GET /admin/pool/:id\\): a request such as ' +
                `GET /admin/pool/${route} matches both; only the one registered first \\(the host's\\) ` +
                "answers it\\. Move the pool's route with http\\.prefix ",
            ),
          ),
        ),
      );
      // As the warning says: the client gets the host's answer, in any case of the path.
      for (const path of ['/admin/pool/containers', '/ADMIN/Pool/containers']) {
        const res = await host.http().get(path).set(bearer(ADMIN)).expect(200);
        expect(res.body).toEqual({ host: 'containers' });
      }
      // The pool's other routes are untouched.
      await host.http().get('/admin/pool').set(bearer(ADMIN)).expect(200);
    } finally {
      await closeAll(host);
    }
  });

  it('ContainerPoolHttpModule serves the routes of a pool registered globally, under its prefix', async () => {
    const host = await hostApp(
      { isGlobal: true, adminToken: ADMIN },
      { imports: [ContainerPoolHttpModule.register({ prefix: 'sandbox', metricsPath: false })] },
    );
    try {
      const stats = await host.http().get('/sandbox').set(bearer(ADMIN)).expect(200);
      expect(stats.body.name).toBe(host.name);
      const run = await host
        .http()
        .post('/sandbox/executions')
        .set(bearer(ADMIN))
        .send({ code: 'print(1 + 1)' })
        .expect(200);
      expect(run.body.stdout).toBe('2\n');
      await host.http().get('/admin/pool').set(bearer(ADMIN)).expect(404);
      await host.http().get('/metrics').set(bearer(ADMIN)).expect(404);
      await host.http().get('/health/live').expect(200);
    } finally {
      await closeAll(host);
    }
  });
});

describe('surface: ContainerPoolHttpModule needs a global pool', () => {
  it('without one the start fails with an InvalidPoolConfigError that says what to do', async () => {
    const err = await hostApp({}, { imports: [ContainerPoolHttpModule.register()] }).then(
      async (h) => {
        await closeAll(h);
        return null;
      },
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(InvalidPoolConfigError);
    expect((err as Error).message).toMatch(
      /ContainerPoolHttpModule serves the routes of a pool registered globally, and this app has none: register the pool with ContainerPoolModule\.forRoot\(\{ isGlobal: true/,
    );
  });
});

describe('surface: settings from the environment only when asked', () => {
  const saved = { ...process.env };
  afterEach(() => {
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
  });

  it('readEnv off (the default): POOL_SIZE=abc in the environment changes nothing', async () => {
    process.env.POOL_SIZE = 'abc';
    process.env.POOL_MAX_CONTAINERS = '0';
    const host = await hostApp({ size: 0 });
    try {
      expect(host.pool.stats()).toMatchObject({ size: 0, maxContainers: 2 });
    } finally {
      await closeAll(host);
    }
  });

  it('readEnv on: every invalid setting (root user included) in one error, unknown variables named with the closest setting', async () => {
    process.env.POOL_SIZE = 'abc';
    process.env.POOL_USER = '0:0';
    process.env.POOL_MEMORY_BYTES = 'lots';
    process.env.POOL_SIZ = '3';
    process.env.POOL_NOT_A_THING = 'x';
    const { result: err, warn } = await logLines(() =>
      hostApp({ readEnv: true }).then(
        (h) => h,
        (e: unknown) => e,
      ),
    );
    expect(err).toBeInstanceOf(InvalidPoolConfigError);
    const problems = (err as InvalidPoolConfigError).problems.join('\n');
    expect(problems).toMatch(/POOL_SIZE must be an integer, got "abc"/);
    expect(problems).toMatch(/POOL_MEMORY_BYTES must be a byte count/);
    expect(problems).toMatch(/user \(POOL_USER\) must not be root/);
    const unknown = warn.filter((w) => /unknown POOL_\* environment/.test(w));
    expect(unknown).toHaveLength(1);
    expect(unknown[0]).toMatch(/POOL_SIZ \(did you mean POOL_SIZE\?\)/);
    expect(unknown[0]).toMatch(/POOL_NOT_A_THING/);
  });

  it('readEnv with a prefix reads its own variables; sizes with units work in code too', async () => {
    process.env.POOL_SIZE = 'abc';
    process.env.SANDBOX_MAX_CONTAINERS = '3';
    const host = await hostApp({
      readEnv: { prefix: 'SANDBOX_' },
      maxContainers: undefined,
      memoryBytes: '192m',
      tmpSizeBytes: '16MiB',
    });
    try {
      expect(host.pool.stats().maxContainers).toBe(3);
      expect(host.pool.options.memoryBytes).toBe(192 * 1024 * 1024);
      expect(host.pool.options.tmpSizeBytes).toBe(16 * 1024 * 1024);
    } finally {
      await closeAll(host);
    }
  });
});

describe('surface: token scopes decide which routes a token may call', () => {
  let host: Awaited<ReturnType<typeof hostApp>>;
  beforeAll(async () => {
    host = await hostApp({
      http: true,
      adminToken: ADMIN,
      execToken: [EXEC],
      readToken: READ,
      size: 1,
      maxContainers: 3,
    });
    await host.pool.initialize();
  });
  afterAll(async () => {
    await closeAll(host);
  });

  type Row = [string, string, object | null, number, number, number];
  // method, path, body, status for an admin, an exec and a read token.
  const rows: Row[] = [
    ['get', '/admin/pool', null, 200, 403, 200],
    ['get', '/admin/pool/containers', null, 200, 403, 200],
    ['get', '/metrics', null, 200, 403, 200],
    ['post', '/admin/pool/executions', { cmd: ['true'] }, 200, 200, 403],
    ['post', '/admin/pool/replenish', null, 200, 403, 403],
    ['put', '/admin/pool/size', { size: 1 }, 200, 403, 403],
    ['put', '/admin/pool', { size: 1 }, 202, 403, 403],
    ['delete', '/admin/pool/containers/no-such-container', null, 404, 403, 403],
    ['post', '/admin/pool/drain', null, 200, 403, 403],
    ['post', '/admin/pool/resume', null, 200, 403, 403],
  ];
  const call = (method: string, path: string, body: object | null, t?: string) => {
    const req = (host.http() as any)[method](path).set(t ? bearer(t) : {});
    return body ? req.send(body) : req;
  };

  it.each(rows)(
    '%s %s (body %j): admin %s, exec %s, read %s; a lower scope gets FORBIDDEN_SCOPE',
    async (method, path, body, admin, exec, read) => {
      for (const [t, want] of [
        [EXEC, exec],
        [READ, read],
        [ADMIN, admin],
      ] as const) {
        const res = await call(method, path, body, t);
        expect({ token: t.split('-')[0], status: res.status }).toEqual({
          token: t.split('-')[0],
          status: want,
        });
        if (want === 403) {
          expectErrorShape(res.body, 403, 'FORBIDDEN_SCOPE');
          expect(res.body.message).toMatch(/needs a token of the (admin|exec|read) scope/);
        }
      }
      const none = await call(method, path, body);
      expect(none.status).toBe(401);
      expectErrorShape(none.body, 401, 'UNAUTHORIZED');
    },
  );
});

describe('surface: one error shape on every error route', () => {
  let host: Awaited<ReturnType<typeof hostApp>>;
  let closed: Awaited<ReturnType<typeof hostApp>>;
  beforeAll(async () => {
    // As the README asks of a host: no app-wide body parser, so the module parses (and refuses) its bodies.
    host = await hostApp(
      {
        http: true,
        adminToken: ADMIN,
        readToken: READ,
        maxBodyBytes: 64 * 1024,
        size: 0,
        maxContainers: 1,
      },
      { bodyParser: false },
    );
    closed = await hostApp({ http: true });
  });
  afterAll(async () => {
    await closeAll(host, closed);
  });

  it('validation, limits, auth, scope, disabled, not found, size, media type, malformed JSON, unknown route, drained', async () => {
    const api = host.http;
    const exec = () => api().post('/admin/pool/executions').set(bearer(ADMIN));
    const cases: [string, () => Promise<request.Response>, number, string][] = [
      ['validation', () => exec().send({ cmd: 'x', extra: 1 }), 400, 'INVALID_REQUEST'],
      [
        'limits',
        () => exec().send({ cmd: ['true'], timeoutMs: 10_000_000 }),
        400,
        'INVALID_REQUEST',
      ],
      [
        'both cmd and code',
        () => exec().send({ cmd: ['true'], code: 'x' }),
        400,
        'INVALID_REQUEST',
      ],
      ['array body', () => exec().send([1]), 400, 'INVALID_REQUEST'],
      [
        'malformed JSON',
        () => exec().set('Content-Type', 'application/json').send('{"cmd": ['),
        400,
        'INVALID_REQUEST',
      ],
      [
        'bad id',
        () => api().delete('/admin/pool/containers/..').set(bearer(ADMIN)),
        400,
        'INVALID_REQUEST',
      ],
      ['missing token', () => api().get('/admin/pool'), 401, 'UNAUTHORIZED'],
      [
        'wrong token',
        () =>
          api()
            .get('/admin/pool')
            .set(bearer(`${ADMIN}x`)),
        401,
        'UNAUTHORIZED',
      ],
      ['scope', () => api().post('/admin/pool/drain').set(bearer(READ)), 403, 'FORBIDDEN_SCOPE'],
      ['disabled', () => closed.http().get('/admin/pool').set(bearer(ADMIN)), 403, 'API_DISABLED'],
      [
        'not found',
        () => api().delete('/admin/pool/containers/no-such-container').set(bearer(ADMIN)),
        404,
        'CONTAINER_NOT_FOUND',
      ],
      [
        'too large',
        () => exec().send({ cmd: ['true'], stdin: 'x'.repeat(70 * 1024) }),
        413,
        'PAYLOAD_TOO_LARGE',
      ],
      [
        'media type',
        () => exec().set('Content-Type', 'text/plain').send('hello'),
        415,
        'UNSUPPORTED_MEDIA_TYPE',
      ],
      ['unknown route', () => api().get('/admin/pool/nope').set(bearer(ADMIN)), 404, 'NOT_FOUND'],
      ['unknown route, no token', () => api().post('/admin/pool/x/y'), 404, 'NOT_FOUND'],
      [
        'method of no route',
        () => api().get('/admin/pool/executions').set(bearer(ADMIN)),
        405,
        'METHOD_NOT_ALLOWED',
      ],
    ];
    for (const [what, send, status, code] of cases) {
      const res = await send();
      expect({ what, status: res.status }).toEqual({ what, status });
      expectErrorShape(res.body, status, code);
    }
    // Outside the prefix the host answers as it does (Nest's own 404 here).
    const outside = await api().get('/admin/other').expect(404);
    expect(outside.body).toEqual({
      statusCode: 404,
      error: 'Not Found',
      message: 'Cannot GET /admin/other',
    });
    const invalid = await exec().send({ cmd: 'x', extra: 1 });
    expect(invalid.body.details.length).toBeGreaterThanOrEqual(2);
    expect(invalid.body.message).toBe(invalid.body.details[0].message);
    expect(invalid.body.field).toBe(invalid.body.details[0].field);
    // A pool error: drained, then refused.
    await api().post('/admin/pool/drain').set(bearer(ADMIN)).expect(200);
    const drained = await exec().send({ cmd: ['true'] });
    expect(drained.status).toBe(503);
    expectErrorShape(drained.body, 503, 'POOL_DRAINED');
    expect(drained.body.retryable).toBe(true);
    await api().post('/admin/pool/resume').set(bearer(ADMIN)).expect(200);
  });

  it('a missing image with pullPolicy never is not retryable (no Retry-After)', async () => {
    const missing = await hostApp({
      http: true,
      adminToken: ADMIN,
      image: 'container-pool-no-such-image:1',
    });
    try {
      await missing.pool.initialize().catch(() => undefined);
      const res = await missing
        .http()
        .post('/admin/pool/executions')
        .set(bearer(ADMIN))
        .send({ cmd: ['true'] });
      expect(res.status).toBe(503);
      expectErrorShape(res.body, 503, 'IMAGE_UNAVAILABLE');
      expect(res.body.retryable).toBe(false);
      expect(res.headers['retry-after']).toBeUndefined();
    } finally {
      await closeAll(missing);
    }
  });
});

describe('surface: result fields and the base64 rule', () => {
  let host: Awaited<ReturnType<typeof hostApp>>;
  beforeAll(async () => {
    host = await hostApp({ http: true, adminToken: ADMIN, size: 1, maxContainers: 3 });
    await host.pool.initialize();
  });
  afterAll(async () => {
    await closeAll(host);
  });
  const exec = (body: object) =>
    host.http().post('/admin/pool/executions').set(bearer(ADMIN)).send(body).expect(200);

  it('valid UTF-8 comes once, as text; profile, transport and per-stream sizes are there', async () => {
    const res = await exec({ code: 'import sys\nprint("héllo")\nprint("e", file=sys.stderr)' });
    expect(res.body).toMatchObject({
      exitCode: 0,
      stdout: 'héllo\n',
      stderr: 'e\n',
      profile: host.name,
      transport: 'runner', // auto: the runner on the Python image
      truncated: false,
      stdoutTruncated: false,
      stderrTruncated: false,
      stdoutTotalBytes: Buffer.byteLength('héllo\n'),
      stderrTotalBytes: 2,
    });
    expect(res.body).not.toHaveProperty('stdoutBase64');
    expect(res.body).not.toHaveProperty('stderrBase64');
  });

  it('bytes that are not UTF-8 also come as base64 (that stream only); outputEncoding base64 gives both', async () => {
    const raw = await exec({ cmd: ['sh', '-c', "printf '\\377\\000ok'; echo fine >&2"] });
    expect([...Buffer.from(raw.body.stdoutBase64, 'base64')]).toEqual([255, 0, 111, 107]);
    expect(raw.body).not.toHaveProperty('stderrBase64');
    const both = await exec({
      cmd: ['sh', '-c', 'echo out; echo err >&2'],
      outputEncoding: 'base64',
    });
    expect(Buffer.from(both.body.stdoutBase64, 'base64').toString()).toBe('out\n');
    expect(Buffer.from(both.body.stderrBase64, 'base64').toString()).toBe('err\n');
  });

  it('truncation is per stream, with the bytes written counted beyond the cap', async () => {
    const res = await exec({
      cmd: ['sh', '-c', 'head -c 5000 /dev/zero | tr "\\0" a; echo short >&2'],
      maxOutputBytes: 1000,
    });
    expect(res.body).toMatchObject({
      truncated: true,
      stdoutTruncated: true,
      stderrTruncated: false,
      stdoutTotalBytes: 5000,
      stderrTotalBytes: 6,
    });
    expect(res.body.stdout).toHaveLength(1000);
  });

  it('one log line per HTTP execution, naming the token; a traceback shows only the user code', async () => {
    const {
      result: res,
      log,
      warn,
    } = await logLines(() => exec({ code: 'x = 1\nraise ValueError("boom")' }));
    expect(res.body.exitCode).toBe(1);
    expect(res.body.stderr).toBe(
      'Traceback (most recent call last):\n  File "<string>", line 2, in <module>\nValueError: boom\n',
    );
    const lines = [...log, ...warn].filter((l) => l.includes(res.body.executionId));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(new RegExp(`token=${tokenFingerprint(ADMIN)} code=\\d+B`));
    // A syntax error: no frame at all, as python3 -c shows it.
    const bad = await exec({ code: 'print(1\n' });
    expect(bad.body.stderr).toMatch(/^ {2}File "<string>", line 1\n/);
    expect(bad.body.stderr).toMatch(/SyntaxError/);
    expect(bad.body.stderr).not.toMatch(/_b|in <module>/);
  });

  it("refused before the handler (token, validation): still one line each, the audit's", async () => {
    const api = () => host.http().post('/admin/pool/executions');
    const refused: [() => request.Test, number, RegExp][] = [
      [
        () => api().send({ cmd: ['true'] }),
        401,
        /^exec refused token=\? cmd="true" from=\S+: UNAUTHORIZED: Missing bearer token/,
      ],
      [
        () => api().set(bearer(ADMIN)).send({ cmd: 'true' }),
        400,
        new RegExp(`^exec refused token=${tokenFingerprint(ADMIN)} code=0B: INVALID_REQUEST: cmd `),
      ],
    ];
    for (const [send, status, line] of refused) {
      const { result: res, log, warn } = await logLines(async () => send());
      expect(res.status).toBe(status);
      expect([...log, ...warn]).toEqual([expect.stringMatching(line)]);
    }
  });
});

describe('surface: the OpenAPI text', () => {
  it('keeps the <token> placeholder and names the routes under the real prefix', async () => {
    const { setupContainerPoolDocs } = await import('../../src');
    @Module({
      imports: [
        ContainerPoolModule.forRoot({
          name: uniquePoolName('docs'),
          image: SANDBOX_IMAGE,
          pullPolicy: 'never',
          size: 0,
          adminToken: ADMIN,
          http: { prefix: 'ops/sandbox' },
        }),
      ],
    })
    class DocsHost {}
    const moduleRef = await Test.createTestingModule({ imports: [DocsHost] }).compile();
    const app = moduleRef.createNestApplication({ logger: false });
    expect(setupContainerPoolDocs(app, 'docs')).toBe(true);
    await app.init();
    try {
      const doc = (await request(app.getHttpServer()).get('/docs-json').expect(200)).body;
      expect(doc.info.description).toContain('`Authorization: Bearer <token>`');
      expect(doc.info.description).toContain('POST /ops/sandbox/executions');
      expect(doc.info.description).not.toMatch(/[ `(]\/executions/);
      expect(Object.keys(doc.paths)).toContain('/ops/sandbox/executions');
      expect(doc.components.schemas.ErrorBodyDto.required).toEqual(
        expect.arrayContaining(['statusCode', 'error', 'code', 'message', 'retryable']),
      );
    } finally {
      await app.close();
    }
  });

  it("with the host's global prefix: the document and its text name the routes as a client calls them", async () => {
    const { setupContainerPoolDocs } = await import('../../src');
    const name = uniquePoolName('docs');
    const moduleRef = await Test.createTestingModule({
      imports: [
        ContainerPoolModule.forRoot({
          name,
          image: SANDBOX_IMAGE,
          pullPolicy: 'never',
          size: 0,
          adminToken: ADMIN,
          http: true,
        }),
      ],
    }).compile();
    const app = moduleRef.createNestApplication({ logger: false });
    app.setGlobalPrefix('api');
    expect(setupContainerPoolDocs(app, 'docs')).toBe(true);
    await app.init();
    try {
      const api = () => request(app.getHttpServer());
      const doc = (await api().get('/docs-json').expect(200)).body;
      expect(doc.info.description).toContain('POST /api/admin/pool/executions');
      expect(doc.info.description).toContain('`/api/metrics`');
      expect(Object.keys(doc.paths)).toContain('/api/admin/pool/executions');
      // What the document says is where the routes are.
      await api().get('/api/admin/pool').set(bearer(ADMIN)).expect(200);
      await api().get('/admin/pool').set(bearer(ADMIN)).expect(404);
    } finally {
      await app.close();
      await expectNoContainersLeft(name);
    }
  });
});

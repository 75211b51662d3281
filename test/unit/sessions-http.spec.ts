import { request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import request from 'supertest';
import { CONTAINER_DRIVER } from '../../src/container-pool/container-pool.constants';
import { ContainerPoolModule } from '../../src/container-pool/container-pool.module';
import { ContainerPoolService } from '../../src/container-pool/container-pool.service';
import {
  InvalidRequestError,
  SandboxUnsupportedError,
  UnknownProfileError,
} from '../../src/container-pool/errors/container-pool.errors';
import {
  SessionBusyError,
  SessionClosedError,
  SessionLostError,
  SessionNotFoundError,
  TooManySessionsError,
} from '../../src/container-pool/errors/session.errors';
import { tokenFingerprint } from '../../src/container-pool/http/guards/admin-token.guard';
import { setupContainerPoolDocs } from '../../src/container-pool/http/openapi/document';
import { sessionFilePath } from '../../src/container-pool/http/sessions-api';
import type {
  CodeResult,
  OpenSessionOptions,
  RunCodeOptions,
  Session,
  SessionExecResult,
  SessionInfo,
  SessionRunRequest,
} from '../../src/container-pool/interfaces/session.interface';
import { FakeDriver } from '../support/fake-driver';
import { waitFor } from '../support/pool-testing';

const ADMIN = 'unit-sessions-admin-token-0123';
const EXEC_A = 'unit-sessions-exec-token-aaaa';
const EXEC_B = 'unit-sessions-exec-token-bbbb';
const READ = 'unit-sessions-read-token-0123';
const as = (token: string) => ({ Authorization: `Bearer ${token}` });
const P = '/admin/pool';

type FakeSession = Session & {
  runCode: jest.Mock<Promise<CodeResult>, [string, RunCodeOptions?]>;
  run: jest.Mock<Promise<SessionExecResult>, [SessionRunRequest]>;
  interrupt: jest.Mock<Promise<void>, []>;
  close: jest.Mock<Promise<void>, []>;
  files: {
    write: jest.Mock;
    read: jest.Mock;
    list: jest.Mock;
    remove: jest.Mock;
  };
};

function execResult(stdout = '', profile = 'default'): SessionExecResult {
  return {
    exitCode: 0,
    stdout,
    stderr: '',
    stdoutBytes: Buffer.from(stdout),
    stderrBytes: Buffer.alloc(0),
    timedOut: false,
    oomKilled: false,
    truncated: false,
    stdoutTruncated: false,
    stderrTruncated: false,
    stdoutTotalBytes: Buffer.byteLength(stdout),
    stderrTotalBytes: 0,
    profile,
    transport: 'runner',
    durationMs: 3,
    queuedMs: 0,
    containerId: 'c'.repeat(64),
    executionId: 'e1',
    interrupted: false,
    stateLost: false,
  };
}

const codeResult = (stdout = '', extra: Partial<CodeResult> = {}): CodeResult => ({
  ...execResult(stdout),
  executionCount: 1,
  outputs: [],
  outputsTruncated: false,
  ...extra,
});

/** The service's session methods over a map of fake sessions (the only part of the service mocked). */
function fakeSessions(profile: string) {
  const store = new Map<string, FakeSession>();
  let next = 0;
  const make = (opts: OpenSessionOptions): FakeSession => {
    const id = `s${++next}`;
    const createdAt = new Date('2026-01-01T00:00:00Z');
    let state: SessionInfo['state'] = 'open';
    const session = {
      id,
      profile: opts.profile ?? profile,
      owner: opts.owner ?? 'local',
      createdAt,
      expiresAt: new Date(createdAt.getTime() + (opts.maxLifetimeMs ?? 3_600_000)),
      runCode: jest.fn(() => Promise.resolve(codeResult('42\n'))),
      run: jest.fn(() => Promise.resolve(execResult('ran\n'))),
      files: {
        write: jest.fn(() => Promise.resolve()),
        read: jest.fn(() => Promise.resolve(Buffer.from([0, 1, 2, 255]))),
        list: jest.fn(),
        remove: jest.fn(),
      },
      interrupt: jest.fn(() => Promise.resolve()),
      restart: jest.fn(() => Promise.resolve()),
      close: jest.fn(() => {
        state = 'closed';
        return Promise.resolve();
      }),
      info: (): SessionInfo => ({
        id,
        profile: opts.profile ?? profile,
        owner: opts.owner ?? 'local',
        containerId: 'c'.repeat(64),
        createdAt,
        expiresAt: new Date(createdAt.getTime() + (opts.maxLifetimeMs ?? 3_600_000)),
        lastUsedAt: createdAt,
        ageMs: 0,
        idleMs: 0,
        idleTimeoutMs: opts.idleTimeoutMs ?? 600_000,
        calls: 0,
        busy: false,
        queued: 0,
        state,
        closedReason: state === 'open' ? null : 'closed',
      }),
    } as unknown as FakeSession;
    store.set(id, session);
    return session;
  };
  const api = {
    openSession: jest.fn((opts: OpenSessionOptions = {}) => Promise.resolve(make(opts) as Session)),
    getSession: jest.fn((id: string, opts: { owner?: string } = {}): Session => {
      const s = store.get(id);
      if (!s || (opts.owner !== undefined && s.owner !== opts.owner)) {
        throw new SessionNotFoundError(id);
      }
      if (s.info().state === 'closed') throw new SessionClosedError(id, 'closed');
      return s;
    }),
    sessions: jest.fn((opts: { owner?: string } = {}): SessionInfo[] =>
      [...store.values()]
        .map((s) => s.info())
        .filter((i) => i.state === 'open' && (opts.owner === undefined || i.owner === opts.owner)),
    ),
  };
  return { store, api };
}

async function host(globalPrefix?: string) {
  const moduleRef = await Test.createTestingModule({
    imports: [
      ContainerPoolModule.forRoot({
        image: 'fake:latest',
        size: 0,
        replenishIntervalMs: 60_000,
        adminToken: ADMIN,
        execToken: [EXEC_A, EXEC_B],
        readToken: READ,
        maxBodyBytes: 64 * 1024,
        maxExecTimeoutMs: 60_000,
        http: true,
      }),
    ],
  })
    .overrideProvider(CONTAINER_DRIVER)
    .useValue(new FakeDriver())
    .compile();
  const app = moduleRef.createNestApplication({ logger: false });
  if (globalPrefix) app.setGlobalPrefix(globalPrefix);
  setupContainerPoolDocs(app, 'docs');
  await app.init();
  const svc = app.get(ContainerPoolService);
  const fake = fakeSessions(svc.pool().name);
  // Only the session methods are mocked: guards, pipes, filters and the rest of the service are the real ones.
  Object.assign(svc, fake.api);
  return { app, svc, ...fake, http: () => request(app.getHttpServer()) };
}

/** The whole streamed answer as text (supertest does not buffer unknown media types by itself). */
function asText(
  res: Parameters<Parameters<request.Test['parse']>[0]>[0],
  cb: (e: Error | null, body: string) => void,
) {
  const stream = res as unknown as NodeJS.ReadableStream;
  let body = '';
  stream.setEncoding('utf8');
  stream.on('data', (c: string) => (body += c));
  stream.on('end', () => cb(null, body));
}

/** A request with this exact path (no client-side normalization of `..` or `%2E%2E`). */
function raw(
  app: INestApplication,
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: Buffer,
): Promise<{ status: number; body: any }> {
  const server = app.getHttpServer() as import('node:http').Server;
  if (!server.listening) server.listen(0);
  return new Promise((resolve, reject) => {
    const go = () => {
      const { port } = server.address() as AddressInfo;
      const req = httpRequest(
        { host: '127.0.0.1', port, path, method, headers, agent: false },
        (res) => {
          let text = '';
          res.on('data', (d: Buffer) => (text += d.toString()));
          res.on('end', () => {
            let parsed: unknown = text;
            try {
              parsed = JSON.parse(text);
            } catch {
              // not JSON
            }
            resolve({ status: res.statusCode ?? 0, body: parsed });
          });
        },
      );
      req.once('error', reject);
      req.end(body);
    };
    if (server.listening) go();
    else server.once('listening', go);
  });
}

describe('sessions over HTTP (mocked session methods)', () => {
  let h: Awaited<ReturnType<typeof host>>;

  beforeEach(async () => {
    h = await host();
  });
  afterEach(async () => {
    await h.app.close();
  });

  const open = async (token = EXEC_A, body: object = {}) =>
    (await h.http().post(`${P}/sessions`).set(as(token)).send(body).expect(201)).body as {
      id: string;
      owner: string;
    };

  describe('scopes', () => {
    it('no token 401, a read token 403, an exec or admin token may open', async () => {
      await h.http().post(`${P}/sessions`).send({}).expect(401);
      const read = await h.http().post(`${P}/sessions`).set(as(READ)).send({}).expect(403);
      expect(read.body.code).toBe('FORBIDDEN_SCOPE');
      await h.http().get(`${P}/sessions`).set(as(READ)).expect(403);
      await h.http().get(`${P}/sessions`).expect(401);
      await open(EXEC_A);
      await open(ADMIN);
      expect(h.api.openSession).toHaveBeenCalledTimes(2);
    });

    it('every session route refuses no token (401) and a read token (403)', async () => {
      const { id } = await open();
      const routes: [string, string][] = [
        ['get', `${P}/sessions/${id}`],
        ['post', `${P}/sessions/${id}/executions`],
        ['post', `${P}/sessions/${id}/interrupt`],
        ['delete', `${P}/sessions/${id}`],
        ['get', `${P}/sessions/${id}/files/a.txt`],
        ['put', `${P}/sessions/${id}/files/a.txt`],
      ];
      for (const [method, path] of routes) {
        const call = (h.http() as any)[method](path) as request.Test;
        await call.expect(401);
        const refused = await ((h.http() as any)[method](path) as request.Test)
          .set(as(READ))
          .expect(403);
        expect(refused.body.code).toBe('FORBIDDEN_SCOPE');
      }
      expect(h.store.get(id)!.close).not.toHaveBeenCalled();
    });
  });

  describe('open, list, describe, close', () => {
    it("opens with the body's options; the owner is the token's fingerprint, never the body's", async () => {
      const res = await h
        .http()
        .post(`${P}/sessions`)
        .set(as(EXEC_A))
        .send({ idleTimeoutMs: 1000, maxLifetimeMs: 60_000 })
        .expect(201);
      expect(h.api.openSession).toHaveBeenCalledWith({
        idleTimeoutMs: 1000,
        maxLifetimeMs: 60_000,
        owner: tokenFingerprint(EXEC_A),
      });
      expect(res.body).toMatchObject({
        id: 's1',
        owner: tokenFingerprint(EXEC_A),
        state: 'open',
        createdAt: '2026-01-01T00:00:00.000Z',
        expiresAt: '2026-01-01T00:01:00.000Z',
        idleTimeoutMs: 1000,
        closedReason: null,
      });
      const forged = await h
        .http()
        .post(`${P}/sessions`)
        .set(as(EXEC_A))
        .send({ owner: 'someone-else' })
        .expect(400);
      expect(forged.body.field).toBe('owner');
    });

    it("400 naming the field: bad types, unknown profile, the library's InvalidRequestError", async () => {
      for (const [body, field] of [
        [{ idleTimeoutMs: 'soon' }, 'idleTimeoutMs'],
        [{ maxLifetimeMs: 0 }, 'maxLifetimeMs'],
        [{ profile: 7 }, 'profile'],
      ] as const) {
        const res = await h.http().post(`${P}/sessions`).set(as(EXEC_A)).send(body).expect(400);
        expect(res.body).toMatchObject({ code: 'INVALID_REQUEST', field });
      }
      h.api.openSession.mockRejectedValueOnce(new UnknownProfileError('gpu', ['default']));
      const unknown = await h
        .http()
        .post(`${P}/sessions`)
        .set(as(EXEC_A))
        .send({ profile: 'gpu' })
        .expect(400);
      expect(unknown.body).toMatchObject({ code: 'UNKNOWN_PROFILE', field: 'profile' });
      h.api.openSession.mockRejectedValueOnce(
        new InvalidRequestError('maxLifetimeMs', 'must not be greater than 3600000'),
      );
      const long = await h
        .http()
        .post(`${P}/sessions`)
        .set(as(EXEC_A))
        .send({ maxLifetimeMs: 9_999_999 })
        .expect(400);
      expect(long.body).toMatchObject({ code: 'INVALID_REQUEST', field: 'maxLifetimeMs' });
    });

    it('429 TOO_MANY_SESSIONS with Retry-After 5; a profile without sessions 503', async () => {
      h.api.openSession.mockRejectedValueOnce(new TooManySessionsError('owner', 2));
      const res = await h.http().post(`${P}/sessions`).set(as(EXEC_A)).send({}).expect(429);
      expect(res.headers['retry-after']).toBe('5');
      expect(res.body).toMatchObject({ code: 'TOO_MANY_SESSIONS', retryable: true });
      h.api.openSession.mockRejectedValueOnce(
        new SandboxUnsupportedError('sessions need the runner transport'),
      );
      await h.http().post(`${P}/sessions`).set(as(EXEC_A)).send({}).expect(503);
    });

    it("lists the caller's own sessions; ?all=true only for an admin token", async () => {
      const a = await open(EXEC_A);
      const b = await open(EXEC_B);
      const mine = await h.http().get(`${P}/sessions`).set(as(EXEC_A)).expect(200);
      expect(mine.body.map((s: { id: string }) => s.id)).toEqual([a.id]);
      expect(h.api.sessions).toHaveBeenLastCalledWith({ owner: tokenFingerprint(EXEC_A) });
      const refused = await h.http().get(`${P}/sessions?all=true`).set(as(EXEC_A)).expect(403);
      expect(refused.body.code).toBe('FORBIDDEN_SCOPE');
      const all = await h.http().get(`${P}/sessions?all=true`).set(as(ADMIN)).expect(200);
      expect(all.body.map((s: { id: string }) => s.id).sort()).toEqual([a.id, b.id].sort());
      // Without ?all=true an admin's list is its own too.
      await h.http().get(`${P}/sessions`).set(as(ADMIN)).expect(200, []);
      const bad = await h.http().get(`${P}/sessions?all=yes`).set(as(ADMIN)).expect(400);
      expect(bad.body.field).toBe('all');
    });

    it("another token's session is 404 on every route (never 403); an admin token reaches it", async () => {
      const { id } = await open(EXEC_A);
      const s = h.store.get(id)!;
      const routes: [string, string, object?][] = [
        ['get', `${P}/sessions/${id}`],
        ['post', `${P}/sessions/${id}/executions`, { code: 'x' }],
        ['post', `${P}/sessions/${id}/interrupt`],
        ['delete', `${P}/sessions/${id}`],
        ['get', `${P}/sessions/${id}/files/a.txt`],
      ];
      for (const [method, path, body] of routes) {
        let call = ((h.http() as any)[method](path) as request.Test).set(as(EXEC_B));
        if (body) call = call.send(body);
        const res = await call.expect(404);
        expect(res.body).toMatchObject({ code: 'SESSION_NOT_FOUND', statusCode: 404 });
      }
      await h
        .http()
        .put(`${P}/sessions/${id}/files/a.txt`)
        .set({ ...as(EXEC_B), 'Content-Type': 'application/octet-stream' })
        .send(Buffer.from('x'))
        .expect(404);
      expect(s.runCode).not.toHaveBeenCalled();
      expect(s.interrupt).not.toHaveBeenCalled();
      expect(s.close).not.toHaveBeenCalled();
      expect(s.files.read).not.toHaveBeenCalled();
      expect(s.files.write).not.toHaveBeenCalled();
      expect(h.api.getSession).toHaveBeenCalledWith(id, { owner: tokenFingerprint(EXEC_B) });
      // The owner and an admin see it.
      await h.http().get(`${P}/sessions/${id}`).set(as(EXEC_A)).expect(200);
      const admin = await h.http().get(`${P}/sessions/${id}`).set(as(ADMIN)).expect(200);
      expect(admin.body.owner).toBe(tokenFingerprint(EXEC_A));
      expect(h.api.getSession).toHaveBeenLastCalledWith(id, { owner: undefined });
      await h.http().get(`${P}/sessions/nope`).set(as(EXEC_A)).expect(404);
    });

    it('DELETE closes (204); then the session is 410 SESSION_CLOSED', async () => {
      const { id } = await open();
      await h.http().delete(`${P}/sessions/${id}`).set(as(EXEC_A)).expect(204);
      expect(h.store.get(id)!.close).toHaveBeenCalledTimes(1);
      const gone = await h.http().get(`${P}/sessions/${id}`).set(as(EXEC_A)).expect(410);
      expect(gone.body).toMatchObject({ code: 'SESSION_CLOSED', statusCode: 410, error: 'Gone' });
      await h
        .http()
        .post(`${P}/sessions/${id}/executions`)
        .set(as(EXEC_A))
        .send({ code: '1' })
        .expect(410);
    });

    it('POST .../interrupt: 204 and session.interrupt()', async () => {
      const { id } = await open();
      await h.http().post(`${P}/sessions/${id}/interrupt`).set(as(EXEC_A)).expect(204);
      expect(h.store.get(id)!.interrupt).toHaveBeenCalledTimes(1);
      expect(h.store.get(id)!.close).not.toHaveBeenCalled();
    });
  });

  describe('executions', () => {
    const exec = (id: string, body: object, token = EXEC_A) =>
      h.http().post(`${P}/sessions/${id}/executions`).set(as(token)).send(body);

    it('code is runCode, with its options; the result carries error, executionCount, interrupted, stateLost', async () => {
      const { id } = await open();
      const s = h.store.get(id)!;
      s.runCode.mockResolvedValueOnce(
        codeResult('', {
          executionCount: 3,
          interrupted: true,
          stateLost: false,
          timedOut: true,
          exitCode: null,
          error: {
            name: 'KeyboardInterrupt',
            value: '',
            traceback: 'Traceback (most recent call last):\n  File "<cell-3>", line 1\n',
          },
        }),
      );
      const res = await exec(id, { code: 'while True: pass', timeoutMs: 500, stdin: 'in' }).expect(
        200,
      );
      expect(s.runCode).toHaveBeenCalledWith('while True: pass', {
        stdin: 'in',
        timeoutMs: 500,
        signal: expect.any(AbortSignal),
      });
      expect(res.body).toMatchObject({
        exitCode: null,
        timedOut: true,
        interrupted: true,
        stateLost: false,
        executionCount: 3,
        error: {
          name: 'KeyboardInterrupt',
          value: '',
          traceback: expect.stringContaining('<cell-3>'),
        },
        profile: 'default',
        transport: 'runner',
      });
      expect(res.body.stdoutBytes).toBeUndefined();
    });

    it('cmd is run with env; its result has interrupted and stateLost, no executionCount', async () => {
      const { id } = await open();
      const s = h.store.get(id)!;
      const res = await exec(id, {
        cmd: ['ls', '-la'],
        env: { A: '1' },
        maxOutputBytes: 100,
        outputEncoding: 'base64',
      }).expect(200);
      expect(s.run).toHaveBeenCalledWith({
        cmd: ['ls', '-la'],
        env: { A: '1' },
        maxOutputBytes: 100,
        signal: expect.any(AbortSignal),
      });
      expect(res.body).toMatchObject({
        stdout: 'ran\n',
        stdoutBase64: Buffer.from('ran\n').toString('base64'),
        interrupted: false,
        stateLost: false,
      });
      expect(res.body.executionCount).toBeUndefined();
      expect(res.body.error).toBeUndefined();
    });

    it('400 naming the field: both code and cmd, neither, bad types, limits, env with code', async () => {
      const { id } = await open();
      const cases: [object, string][] = [
        [{ code: 'x', cmd: ['ls'] }, 'cmd'],
        [{}, 'cmd'],
        [{ stdin: 'x' }, 'cmd'],
        [{ code: 42 }, 'code'],
        [{ cmd: 'ls' }, 'cmd'],
        [{ cmd: [] }, 'cmd'],
        [{ cmd: ['ls', 1] }, 'cmd'],
        [{ code: 'x', timeoutMs: 'soon' }, 'timeoutMs'],
        [{ code: 'x', timeoutMs: 0 }, 'timeoutMs'],
        [{ code: 'x', timeoutMs: 1.5 }, 'timeoutMs'],
        [{ code: 'x', timeoutMs: 60_001 }, 'timeoutMs'],
        [{ code: 'x', maxOutputBytes: -1 }, 'maxOutputBytes'],
        [{ code: 'x', maxOutputs: -1 }, 'maxOutputs'],
        [{ code: 'x', maxOutputs: 1.5 }, 'maxOutputs'],
        [{ code: 'x', maxOutputs: '3' }, 'maxOutputs'],
        [{ code: 'x', maxOutputs: null }, 'maxOutputs'],
        // Above the profile's maxOutputs (32 by default).
        [{ code: 'x', maxOutputs: 33 }, 'maxOutputs'],
        [{ cmd: ['ls'], maxOutputs: 1 }, 'maxOutputs'],
        [{ code: 'x', stdin: 5 }, 'stdin'],
        [{ code: 'x', env: { A: '1' } }, 'env'],
        [{ cmd: ['ls'], env: { 'A-B': '1' } }, 'env'],
        [{ code: 'x', workdir: '/tmp' }, 'workdir'],
      ];
      for (const [body, field] of cases) {
        const res = await exec(id, body).expect(400);
        expect({ body, field: res.body.field }).toEqual({ body, field });
        expect(res.body.code).toBe('INVALID_REQUEST');
      }
      const s = h.store.get(id)!;
      expect(s.runCode).not.toHaveBeenCalled();
      expect(s.run).not.toHaveBeenCalled();
    });

    it('429 SESSION_BUSY (Retry-After 1), 502 SESSION_LOST, 410 closed while queued', async () => {
      const { id } = await open();
      const s = h.store.get(id)!;
      s.runCode.mockRejectedValueOnce(new SessionBusyError(id, 16));
      const busy = await exec(id, { code: 'x' }).expect(429);
      expect(busy.headers['retry-after']).toBe('1');
      expect(busy.body).toMatchObject({ code: 'SESSION_BUSY', retryable: true });
      s.runCode.mockRejectedValueOnce(new SessionLostError(id, 'the container died'));
      const lost = await exec(id, { code: 'x' }).expect(502);
      expect(lost.body).toMatchObject({ code: 'SESSION_LOST', statusCode: 502 });
      s.run.mockRejectedValueOnce(new SessionClosedError(id, 'idle'));
      await exec(id, { cmd: ['x'] }).expect(410);
    });

    it('rich outputs: maxOutputs reaches runCode; images come back as base64, the rest as it is', async () => {
      const { id } = await open();
      const s = h.store.get(id)!;
      const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 255]);
      s.runCode.mockResolvedValueOnce(
        codeResult('', {
          outputs: [
            {
              type: 'display',
              data: {
                'text/plain': '<Figure size 640x480 with 1 Axes>',
                'image/png': png,
                'image/jpeg': Buffer.from('jpg'),
              },
            },
            {
              type: 'result',
              data: {
                'text/plain': '   a\n0  1',
                'text/html': '<table/>',
                'application/json': { a: [1, null] },
              },
            },
          ],
          outputsTruncated: true,
        }),
      );
      const res = await exec(id, { code: 'plot(); df', maxOutputs: 5 }).expect(200);
      expect(s.runCode).toHaveBeenCalledWith('plot(); df', {
        maxOutputs: 5,
        signal: expect.any(AbortSignal),
      });
      expect(res.body.outputs).toEqual([
        {
          type: 'display',
          data: {
            'text/plain': '<Figure size 640x480 with 1 Axes>',
            'image/png': png.toString('base64'),
            'image/jpeg': Buffer.from('jpg').toString('base64'),
          },
        },
        {
          type: 'result',
          data: {
            'text/plain': '   a\n0  1',
            'text/html': '<table/>',
            'application/json': { a: [1, null] },
          },
        },
      ]);
      expect(res.body.outputsTruncated).toBe(true);
      // A call without outputs says so; a command's result has none.
      const none = await exec(id, { code: 'x = 1' }).expect(200);
      expect(none.body).toMatchObject({ outputs: [], outputsTruncated: false });
      const cmd = await exec(id, { cmd: ['true'] }).expect(200);
      expect(cmd.body.outputs).toBeUndefined();
    });

    it('NDJSON: the final result line carries the outputs, images as base64', async () => {
      const { id } = await open();
      const s = h.store.get(id)!;
      s.runCode.mockResolvedValueOnce(
        codeResult('', {
          outputs: [
            { type: 'display', data: { 'text/plain': 'fig', 'image/png': Buffer.from([1, 2, 3]) } },
          ],
        }),
      );
      const res = await h
        .http()
        .post(`${P}/sessions/${id}/executions`)
        .set({ ...as(EXEC_A), Accept: 'application/x-ndjson' })
        .send({ code: 'plt.plot([1])' })
        .buffer(true)
        .parse(asText)
        .expect(200);
      const lines = (res.body as string)
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { type: string; result?: Record<string, unknown> });
      expect(lines.at(-1)).toEqual({
        type: 'result',
        result: expect.objectContaining({
          outputs: [{ type: 'display', data: { 'text/plain': 'fig', 'image/png': 'AQID' } }],
          outputsTruncated: false,
        }),
      });
    });

    it('NDJSON: output lines from onOutput, then one result line with the session fields', async () => {
      const { id } = await open();
      const s = h.store.get(id)!;
      s.runCode.mockImplementationOnce(async (_code, opts) => {
        await opts!.onOutput!({ stream: 'stdout', data: Buffer.from('1\n'), offset: 0 });
        await opts!.onOutput!({ stream: 'stderr', data: Buffer.from([0xff]), offset: 0 });
        await opts!.onOutput!({ stream: 'stdout', data: Buffer.from('2\n'), offset: 2 });
        return codeResult('1\n2\n', { executionCount: 2, stateLost: true });
      });
      const res = await h
        .http()
        .post(`${P}/sessions/${id}/executions`)
        .set({ ...as(EXEC_A), Accept: 'application/x-ndjson' })
        .send({ code: 'print(1); print(2)' })
        .buffer(true)
        .parse(asText)
        .expect(200);
      expect(res.headers['content-type']).toMatch(/^application\/x-ndjson/);
      const lines = (res.body as string)
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(lines).toEqual([
        { type: 'output', stream: 'stdout', offset: 0, text: '1\n' },
        { type: 'output', stream: 'stderr', offset: 0, base64: '/w==' },
        { type: 'output', stream: 'stdout', offset: 2, text: '2\n' },
        {
          type: 'result',
          result: expect.objectContaining({
            stdout: '1\n2\n',
            executionCount: 2,
            stateLost: true,
            interrupted: false,
          }),
        },
      ]);
      expect(s.interrupt).not.toHaveBeenCalled();
    });

    it('SSE: data events; an error after the first byte is one error line', async () => {
      const { id } = await open();
      const s = h.store.get(id)!;
      s.run.mockImplementationOnce(async (req) => {
        await req.onOutput!({ stream: 'stdout', data: Buffer.from('a'), offset: 0 });
        throw new SessionLostError(id, 'the container died');
      });
      const res = await h
        .http()
        .post(`${P}/sessions/${id}/executions`)
        .set({ ...as(EXEC_A), Accept: 'text/event-stream' })
        .send({ cmd: ['x'] })
        .buffer(true)
        .parse(asText)
        .expect(200);
      const events = (res.body as string).split('\n\n').filter(Boolean);
      expect(events[0]).toBe('data: {"type":"output","stream":"stdout","offset":0,"text":"a"}');
      expect(events).toHaveLength(2);
      expect(JSON.parse(events[1].slice(6))).toMatchObject({
        type: 'error',
        error: { code: 'SESSION_LOST', statusCode: 502 },
      });
    });

    it('a streamed error before the first byte is the usual error answer', async () => {
      const { id } = await open();
      h.store.get(id)!.runCode.mockRejectedValueOnce(new SessionBusyError(id, 16));
      await h
        .http()
        .post(`${P}/sessions/${id}/executions`)
        .set({ ...as(EXEC_A), Accept: 'application/x-ndjson' })
        .send({ code: 'x' })
        .expect(429);
    });

    for (const accept of ['application/x-ndjson', 'application/json']) {
      it(`a client that disconnects (${accept}) aborts its call (the session interrupts it); the session stays open`, async () => {
        const { id } = await open();
        const s = h.store.get(id)!;
        let signal: AbortSignal | undefined;
        let started!: () => void;
        const running = new Promise<void>((r) => (started = r));
        s.runCode.mockImplementationOnce(async (_code, opts) => {
          signal = opts?.signal;
          started();
          await opts?.onOutput?.({ stream: 'stdout', data: Buffer.from('x'), offset: 0 });
          return new Promise<CodeResult>((resolve) =>
            signal!.addEventListener('abort', () =>
              resolve(codeResult('x', { interrupted: true })),
            ),
          );
        });
        const server = h.app.getHttpServer() as import('node:http').Server;
        await new Promise<void>((r) => server.listen(0, r));
        const { port } = server.address() as AddressInfo;
        const req = httpRequest({
          host: '127.0.0.1',
          port,
          path: `${P}/sessions/${id}/executions`,
          method: 'POST',
          agent: false,
          headers: { ...as(EXEC_A), Accept: accept, 'Content-Type': 'application/json' },
        });
        req.on('error', () => undefined);
        req.end(JSON.stringify({ code: 'while True: pass' }));
        await running;
        expect(signal?.aborted).toBe(false);
        req.destroy();
        await waitFor(() => signal!.aborted, 5000);
        expect(s.close).not.toHaveBeenCalled();
        // Still open: the next call runs.
        await exec(id, { code: 'x' }).expect(200);
      });
    }

    it("a call that answers is never aborted; a queued call's disconnect aborts only that call", async () => {
      const { id } = await open();
      const s = h.store.get(id)!;
      const signals: AbortSignal[] = [];
      let finishFirst!: (r: CodeResult) => void;
      let queued!: () => void;
      const secondCalled = new Promise<void>((r) => (queued = r));
      s.runCode
        .mockImplementationOnce((_c, opts) => {
          signals.push(opts!.signal!);
          return new Promise<CodeResult>((resolve) => (finishFirst = resolve));
        })
        .mockImplementationOnce((_c, opts) => {
          signals.push(opts!.signal!);
          queued();
          return new Promise<CodeResult>(() => undefined);
        });
      const first = exec(id, { code: 'first' }).then((r) => r);
      await waitFor(() => s.runCode.mock.calls.length === 1, 5000);
      const server = h.app.getHttpServer() as import('node:http').Server;
      const { port } = server.address() as AddressInfo;
      const req = httpRequest({
        host: '127.0.0.1',
        port,
        path: `${P}/sessions/${id}/executions`,
        method: 'POST',
        agent: false,
        headers: { ...as(EXEC_A), 'Content-Type': 'application/json' },
      });
      req.on('error', () => undefined);
      req.end(JSON.stringify({ code: 'second' }));
      await secondCalled;
      req.destroy();
      await waitFor(() => signals[1].aborted, 5000);
      expect(signals[0].aborted).toBe(false);
      finishFirst(codeResult('1'));
      expect((await first).status).toBe(200);
      expect(signals[0].aborted).toBe(false);
      expect(s.interrupt).not.toHaveBeenCalled();
    });
  });

  describe('files', () => {
    it('PUT writes the raw bytes (204), GET answers them as octet-stream', async () => {
      const { id } = await open();
      const s = h.store.get(id)!;
      const bytes = Buffer.from([0, 1, 2, 250, 255]);
      await h
        .http()
        .put(`${P}/sessions/${id}/files/data/in.bin`)
        .set({ ...as(EXEC_A), 'Content-Type': 'application/octet-stream' })
        .send(bytes)
        .expect(204);
      expect(s.files.write).toHaveBeenCalledWith('data/in.bin', bytes);
      const res = await h
        .http()
        .get(`${P}/sessions/${id}/files/out/r%C3%A9sultat.bin`)
        .set(as(EXEC_A))
        .buffer(true)
        .parse((r, cb) => {
          const chunks: Buffer[] = [];
          r.on('data', (c: Buffer) => chunks.push(c));
          r.on('end', () => cb(null, Buffer.concat(chunks)));
        })
        .expect(200);
      expect(res.headers['content-type']).toMatch(/^application\/octet-stream/);
      expect(res.body).toEqual(Buffer.from([0, 1, 2, 255]));
      expect(s.files.read).toHaveBeenCalledWith('out/résultat.bin');
    });

    it('an empty PUT writes an empty file', async () => {
      const { id } = await open();
      await h
        .http()
        .put(`${P}/sessions/${id}/files/empty`)
        .set({ ...as(EXEC_A), 'Content-Type': 'application/octet-stream' })
        .expect(204);
      expect(h.store.get(id)!.files.write).toHaveBeenCalledWith('empty', Buffer.alloc(0));
    });

    it("PUT: 415 for JSON, 413 over maxBodyBytes; the library's InvalidRequestError is 400", async () => {
      const { id } = await open();
      const s = h.store.get(id)!;
      const json = await h
        .http()
        .put(`${P}/sessions/${id}/files/a`)
        .set(as(EXEC_A))
        .send({ a: 1 })
        .expect(415);
      expect(json.body.code).toBe('UNSUPPORTED_MEDIA_TYPE');
      const big = await h
        .http()
        .put(`${P}/sessions/${id}/files/a`)
        .set({ ...as(EXEC_A), 'Content-Type': 'application/octet-stream' })
        .send(Buffer.alloc(64 * 1024 + 1))
        .expect(413);
      expect(big.body.code).toBe('PAYLOAD_TOO_LARGE');
      expect(s.files.write).not.toHaveBeenCalled();
      s.files.read.mockRejectedValueOnce(new InvalidRequestError('path', 'is not a regular file'));
      const dir = await h.http().get(`${P}/sessions/${id}/files/dir`).set(as(EXEC_A)).expect(400);
      expect(dir.body.field).toBe('path');
    });

    it('400 naming path for `..`, `%2E%2E`, `%2F`, `.` and empty segments, on GET and PUT', async () => {
      const { id } = await open();
      const s = h.store.get(id)!;
      const bad = [
        'a/../b',
        '..',
        '%2E%2E/etc/passwd',
        'a%2Fb',
        'a%2F..%2F..%2Fx',
        'a//b',
        './a',
        'a/%00',
      ];
      for (const path of bad) {
        for (const method of ['GET', 'PUT']) {
          const res = await raw(
            h.app,
            method,
            `${P}/sessions/${id}/files/${path}`,
            {
              ...as(EXEC_A),
              ...(method === 'PUT' && { 'Content-Type': 'application/octet-stream' }),
            },
            method === 'PUT' ? Buffer.from('x') : undefined,
          );
          expect({ path, method, status: res.status, field: res.body?.field }).toEqual({
            path,
            method,
            status: 400,
            field: 'path',
          });
        }
      }
      expect(s.files.read).not.toHaveBeenCalled();
      expect(s.files.write).not.toHaveBeenCalled();
    });

    it('sessionFilePath joins plain segments and refuses the others', () => {
      expect(sessionFilePath(['a', 'b c', 'd.txt'])).toBe('a/b c/d.txt');
      expect(sessionFilePath(['..a', 'b..'])).toBe('..a/b..');
      for (const bad of [
        [],
        [''],
        ['a', ''],
        ['..'],
        ['.'],
        ['a/b'],
        ['a\0'],
        [1],
        'x'.repeat(5000),
      ]) {
        expect(() => sessionFilePath(bad)).toThrow();
      }
    });
  });

  it('unknown methods under .../sessions are 405 in the one error shape', async () => {
    const res = await h.http().patch(`${P}/sessions/s1`).set(as(EXEC_A)).expect(405);
    expect(res.headers.allow).toEqual(expect.stringContaining('DELETE'));
    expect(res.body.code).toBe('METHOD_NOT_ALLOWED');
  });

  it('the OpenAPI document has every session route, its bodies, results and errors', async () => {
    const doc = (await h.http().get('/docs-json').expect(200)).body;
    const paths = doc.paths as Record<string, Record<string, any>>;
    const id = `${P}/sessions/{id}`;
    expect(Object.keys(paths[`${P}/sessions`]).sort()).toEqual(['get', 'post']);
    expect(Object.keys(paths[id]).sort()).toEqual(['delete', 'get']);
    expect(Object.keys(paths[`${id}/executions`])).toEqual(['post']);
    expect(Object.keys(paths[`${id}/interrupt`])).toEqual(['post']);
    expect(Object.keys(paths[`${id}/files/{path}`]).sort()).toEqual(['get', 'put']);

    const openOp = paths[`${P}/sessions`].post;
    expect(openOp.requestBody.content['application/json'].schema).toEqual({
      $ref: '#/components/schemas/OpenSessionDto',
    });
    expect(openOp.responses['201'].content['application/json'].schema).toEqual({
      $ref: '#/components/schemas/SessionInfoDto',
    });
    expect(Object.keys(openOp.responses)).toEqual(
      expect.arrayContaining(['201', '400', '401', '403', '429', '503']),
    );
    const execOp = paths[`${id}/executions`].post;
    expect(Object.keys(execOp.responses['200'].content).sort()).toEqual(
      ['application/json', 'application/x-ndjson', 'text/event-stream'].sort(),
    );
    expect(execOp.responses['200'].content['application/json'].schema).toEqual({
      oneOf: [
        { $ref: '#/components/schemas/CodeResultDto' },
        { $ref: '#/components/schemas/SessionExecResultDto' },
      ],
    });
    expect(Object.keys(execOp.responses)).toEqual(
      expect.arrayContaining(['200', '400', '401', '403', '404', '410', '429', '502']),
    );
    const code = doc.components.schemas.CodeResultDto;
    const props = Object.keys(code.properties ?? {}).concat(
      ...((code.allOf ?? []) as { properties?: object }[]).map((p) =>
        Object.keys(p.properties ?? {}),
      ),
    );
    expect(props).toEqual(
      expect.arrayContaining([
        'error',
        'executionCount',
        'interrupted',
        'stateLost',
        'stdout',
        'outputs',
        'outputsTruncated',
      ]),
    );
    const schemas = doc.components.schemas as Record<string, any>;
    const outputsProp =
      code.properties?.outputs ??
      (code.allOf as { properties?: Record<string, unknown> }[]).find((p) => p.properties?.outputs)!
        .properties!.outputs;
    expect(outputsProp).toMatchObject({
      type: 'array',
      items: { $ref: '#/components/schemas/CodeOutputDto' },
    });
    expect(schemas.CodeOutputDto.properties).toMatchObject({
      type: { enum: ['result', 'display'] },
      data: { $ref: '#/components/schemas/OutputDataDto' },
    });
    const data = schemas.OutputDataDto;
    expect(Object.keys(data.properties).sort()).toEqual(
      [
        'text/plain',
        'text/html',
        'text/markdown',
        'text/latex',
        'image/svg+xml',
        'image/png',
        'image/jpeg',
        'application/json',
      ].sort(),
    );
    expect(data.required).toEqual(['text/plain']);
    expect(data.properties['image/png']).toMatchObject({ type: 'string', format: 'byte' });
    expect(data.properties['image/jpeg']).toMatchObject({ type: 'string', format: 'byte' });
    expect(schemas.SessionRunDto.properties.maxOutputs).toMatchObject({
      type: 'number',
      minimum: 0,
    });
    const put = paths[`${id}/files/{path}`].put;
    expect(Object.keys(put.requestBody.content)).toEqual(['application/octet-stream']);
    expect(Object.keys(put.responses)).toEqual(
      expect.arrayContaining(['204', '400', '401', '403', '404', '410', '413', '415']),
    );
    const get = paths[`${id}/files/{path}`].get;
    expect(Object.keys(get.responses['200'].content)).toEqual(['application/octet-stream']);
    for (const op of [openOp, execOp, put, get, paths[id].get, paths[id].delete]) {
      expect(op.security).toBeDefined();
      expect(op.tags).toEqual(['sessions']);
    }
  });
});

describe('sessions over HTTP under a global prefix', () => {
  it('the JSON and the bytes routes get their own body parsing at the prefixed paths', async () => {
    const h = await host('api');
    try {
      const base = `/api${P}/sessions`;
      const { id } = (await h.http().post(base).set(as(EXEC_A)).send({}).expect(201)).body as {
        id: string;
      };
      await h
        .http()
        .put(`${base}/${id}/files/a/b.txt`)
        .set({ ...as(EXEC_A), 'Content-Type': 'application/octet-stream' })
        .send(Buffer.from('hi'))
        .expect(204);
      expect(h.store.get(id)!.files.write).toHaveBeenCalledWith('a/b.txt', Buffer.from('hi'));
      await h.http().put(`${base}/${id}/files/a`).set(as(EXEC_A)).send({ a: 1 }).expect(415);
      await h
        .http()
        .post(`${base}/${id}/executions`)
        .set(as(EXEC_A))
        .send({ code: 'x' })
        .expect(200);
      const doc = (await h.http().get('/docs-json').expect(200)).body;
      expect(Object.keys(doc.paths)).toEqual(
        expect.arrayContaining([base, `${base}/{id}/files/{path}`]),
      );
    } finally {
      await h.app.close();
    }
  });
});

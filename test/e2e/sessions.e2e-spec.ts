/*
 * Sessions over HTTP on the real engine: a host app importing the module with HTTP on, two exec tokens and an
 * admin token; open, run code and commands (JSON and NDJSON), files, interrupt, restart, close, ownership.
 */
import { randomBytes } from 'node:crypto';
import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import request from 'supertest';
import { ContainerPoolModule } from '../../src/container-pool/container-pool.module';
import { ContainerPoolService } from '../../src/container-pool/container-pool.service';
import {
  engineContainers,
  eventually,
  expectNoContainersLeft,
  SANDBOX_IMAGE,
  uniquePoolName,
} from '../support/integration';

const ADMIN = `e2e-admin-${randomBytes(12).toString('hex')}`;
const ALICE = `e2e-alice-${randomBytes(12).toString('hex')}`;
const BOB = `e2e-bob-${randomBytes(12).toString('hex')}`;
const as = (t: string) => ({ Authorization: `Bearer ${t}` });
const P = '/admin/pool';

describe('sessions over HTTP on a real engine', () => {
  let app: INestApplication;
  let name: string;
  const api = () => request(app.getHttpServer());

  beforeAll(async () => {
    name = uniquePoolName('e2e-sessions');
    const moduleRef = await Test.createTestingModule({
      imports: [
        ContainerPoolModule.forRoot({
          image: SANDBOX_IMAGE,
          pullPolicy: 'never',
          http: true,
          name,
          size: 2,
          maxContainers: 6,
          transport: 'runner',
          adminToken: ADMIN,
          execToken: [ALICE, BOB],
          interruptGraceMs: 700,
        }),
      ],
    }).compile();
    app = moduleRef.createNestApplication({ logger: ['error'] });
    await app.init();
    await app.get(ContainerPoolService).initialize();
  });

  afterAll(async () => {
    await app?.close();
    if (name) await expectNoContainersLeft(name);
  });

  const open = async (token = ALICE) => {
    const res = await api().post(`${P}/sessions`).set(as(token)).send({}).expect(201);
    return res.body as { id: string; containerId: string; owner: string };
  };

  it('opens a session, keeps state between executions, runs commands in its cwd, and closes it', async () => {
    const s = await open();
    expect(s).toMatchObject({ state: 'open', calls: 0, busy: false });
    const a = await api()
      .post(`${P}/sessions/${s.id}/executions`)
      .set(as(ALICE))
      .send({ code: 'import os\nos.makedirs("w", exist_ok=True)\nos.chdir("w")\nx = 20' })
      .expect(200);
    expect(a.body).toMatchObject({
      exitCode: 0,
      executionCount: 1,
      stateLost: false,
      interrupted: false,
    });
    const b = await api()
      .post(`${P}/sessions/${s.id}/executions`)
      .set(as(ALICE))
      .send({ code: 'x += 1\nprint(x * 2)' })
      .expect(200);
    expect(b.body).toMatchObject({ stdout: '42\n', executionCount: 2 });
    const c = await api()
      .post(`${P}/sessions/${s.id}/executions`)
      .set(as(ALICE))
      .send({ cmd: ['pwd'] })
      .expect(200);
    expect(c.body).toMatchObject({ stdout: '/workspace/w\n', exitCode: 0 });
    const e = await api()
      .post(`${P}/sessions/${s.id}/executions`)
      .set(as(ALICE))
      .send({ code: '{}["missing"]' })
      .expect(200);
    expect(e.body.error).toMatchObject({ name: 'KeyError', value: "'missing'" });
    expect(e.body.error.traceback).toMatch(/<cell-3>/);
    const info = await api().get(`${P}/sessions/${s.id}`).set(as(ALICE)).expect(200);
    expect(info.body).toMatchObject({ id: s.id, calls: 4, state: 'open' });
    await api().delete(`${P}/sessions/${s.id}`).set(as(ALICE)).expect(204);
    const gone = await api()
      .post(`${P}/sessions/${s.id}/executions`)
      .set(as(ALICE))
      .send({ code: 'x' })
      .expect(410);
    expect(gone.body.code).toBe('SESSION_CLOSED');
    await eventually(
      async () => !(await engineContainers(name)).some((x) => x.Id === s.containerId),
      10_000,
      'the session container to go',
    );
  });

  it("another token's session is 404 on every route; an admin token reaches it", async () => {
    const s = await open(ALICE);
    const routes: [string, string, object | Buffer | null][] = [
      ['get', `${P}/sessions/${s.id}`, null],
      ['post', `${P}/sessions/${s.id}/executions`, { code: 'print(1)' }],
      ['post', `${P}/sessions/${s.id}/interrupt`, null],
      ['post', `${P}/sessions/${s.id}/restart`, null],
      ['get', `${P}/sessions/${s.id}/files/a.txt`, null],
      ['delete', `${P}/sessions/${s.id}`, null],
    ];
    for (const [method, path, body] of routes) {
      const req = (api() as unknown as Record<string, (p: string) => request.Test>)
        [method](path)
        .set(as(BOB));
      const res = await (body ? req.send(body) : req);
      expect({ path, status: res.status }).toEqual({ path, status: 404 });
    }
    await api()
      .put(`${P}/sessions/${s.id}/files/a.txt`)
      .set({ ...as(BOB), 'Content-Type': 'application/octet-stream' })
      .send(Buffer.from('x'))
      .expect(404);
    const mine = await api().get(`${P}/sessions`).set(as(BOB)).expect(200);
    expect(mine.body).toEqual([]);
    await api().get(`${P}/sessions?all=true`).set(as(BOB)).expect(403);
    const all = await api().get(`${P}/sessions?all=true`).set(as(ADMIN)).expect(200);
    expect((all.body as { id: string }[]).map((x) => x.id)).toContain(s.id);
    await api().get(`${P}/sessions/${s.id}`).set(as(ADMIN)).expect(200);
    await api().delete(`${P}/sessions/${s.id}`).set(as(ALICE)).expect(204);
  });

  it('files: PUT bytes, the code reads them, GET the bytes back; traversal is a 400', async () => {
    const s = await open();
    const bytes = Buffer.from([0, 1, 2, 200, 255]);
    await api()
      .put(`${P}/sessions/${s.id}/files/in/data.bin`)
      .set({ ...as(ALICE), 'Content-Type': 'application/octet-stream' })
      .send(bytes)
      .expect(204);
    await api()
      .post(`${P}/sessions/${s.id}/executions`)
      .set(as(ALICE))
      .send({
        code: 'open("out.bin", "wb").write(bytes(reversed(open("in/data.bin", "rb").read())))',
      })
      .expect(200);
    const back = await api()
      .get(`${P}/sessions/${s.id}/files/out.bin`)
      .set(as(ALICE))
      .buffer(true)
      .parse((r, cb) => {
        const chunks: Buffer[] = [];
        r.on('data', (c: Buffer) => chunks.push(c));
        r.on('end', () => cb(null, Buffer.concat(chunks)));
      })
      .expect(200);
    expect(back.body).toEqual(Buffer.from([...bytes].reverse()));
    for (const path of ['..%2Fetc%2Fpasswd', '../etc/passwd', 'a/%2E%2E/b']) {
      const res = await api().get(`${P}/sessions/${s.id}/files/${path}`).set(as(ALICE));
      expect({ path, status: res.status, field: res.body.field as unknown }).toEqual({
        path,
        status: res.status === 404 ? 404 : 400,
        field: res.status === 404 ? undefined : 'path',
      });
    }
    await api().delete(`${P}/sessions/${s.id}`).set(as(ALICE)).expect(204);
  });

  it('streams a call as NDJSON; interrupt and restart work over HTTP', async () => {
    const s = await open();
    const streamed = await api()
      .post(`${P}/sessions/${s.id}/executions`)
      .set({ ...as(ALICE), Accept: 'application/x-ndjson' })
      .send({ code: 'for i in range(3):\n    print("line", i)' })
      .expect(200);
    const lines = streamed.text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: string; result?: { stdout: string } });
    const result = lines[lines.length - 1];
    expect(result.type).toBe('result');
    expect(result.result?.stdout).toBe('line 0\nline 1\nline 2\n');
    await api()
      .post(`${P}/sessions/${s.id}/executions`)
      .set(as(ALICE))
      .send({ code: 'kept = 1' })
      .expect(200);
    const running = api()
      .post(`${P}/sessions/${s.id}/executions`)
      .set(as(ALICE))
      .send({ code: 'import time\ntime.sleep(60)' })
      .then((r) => r);
    await eventually(
      async () => (await api().get(`${P}/sessions/${s.id}`).set(as(ALICE))).body.busy === true,
      5000,
      'the call to run',
    );
    await api().post(`${P}/sessions/${s.id}/interrupt`).set(as(ALICE)).expect(204);
    const interrupted = await running;
    expect(interrupted.status).toBe(200);
    expect(interrupted.body).toMatchObject({
      interrupted: true,
      stateLost: false,
      error: { name: 'KeyboardInterrupt' },
    });
    await api().post(`${P}/sessions/${s.id}/restart`).set(as(ALICE)).expect(204);
    const after = await api()
      .post(`${P}/sessions/${s.id}/executions`)
      .set(as(ALICE))
      .send({ code: 'print("kept" in globals())' })
      .expect(200);
    expect(after.body).toMatchObject({ stdout: 'False\n', executionCount: 1 });
    await api().delete(`${P}/sessions/${s.id}`).set(as(ALICE)).expect(204);
  });

  it('rich outputs over HTTP: MIME types, images as base64 (JSON and the NDJSON result line), the caps, a bad maxOutputs', async () => {
    const s = await open();
    const code =
      'class Pic:\n    def _repr_png_(self):\n        return b"\\x89PNG\\r\\n\\x1a\\n-not-really"\n' +
      '    def _repr_html_(self):\n        return "<img>"\n' +
      'display(Pic())\n{"answer": 42}';
    const res = await api()
      .post(`${P}/sessions/${s.id}/executions`)
      .set(as(ALICE))
      .send({ code })
      .expect(200);
    expect(res.body).toMatchObject({ exitCode: 0, outputsTruncated: false });
    expect(res.body.outputs).toEqual([
      {
        type: 'display',
        data: {
          'text/plain': expect.stringMatching(/^<__main__\.Pic object at 0x[0-9a-f]+>$/),
          'text/html': '<img>',
          'image/png': Buffer.from('\x89PNG\r\n\x1a\n-not-really', 'latin1').toString('base64'),
        },
      },
      { type: 'result', data: { 'text/plain': "{'answer': 42}" } },
    ]);
    const streamed = await api()
      .post(`${P}/sessions/${s.id}/executions`)
      .set({ ...as(ALICE), Accept: 'application/x-ndjson' })
      .send({ code: 'display(Pic())\nprint("done")' })
      .expect(200);
    const last = JSON.parse(streamed.text.trim().split('\n').pop()!) as {
      type: string;
      result: { outputs: { data: Record<string, string> }[]; stdout: string };
    };
    expect(last.type).toBe('result');
    expect(last.result.stdout).toBe('done\n');
    expect(Buffer.from(last.result.outputs[0].data['image/png'], 'base64').subarray(0, 4)).toEqual(
      Buffer.from([0x89, 0x50, 0x4e, 0x47]),
    );
    const capped = await api()
      .post(`${P}/sessions/${s.id}/executions`)
      .set(as(ALICE))
      .send({ code: 'for i in range(10):\n    display(i)', maxOutputs: 2 })
      .expect(200);
    expect(capped.body).toMatchObject({ outputsTruncated: true });
    expect(capped.body.outputs).toHaveLength(2);
    const bad = await api()
      .post(`${P}/sessions/${s.id}/executions`)
      .set(as(ALICE))
      .send({ code: '1', maxOutputs: -1 })
      .expect(400);
    expect(bad.body.field).toBe('maxOutputs');
    const cmd = await api()
      .post(`${P}/sessions/${s.id}/executions`)
      .set(as(ALICE))
      .send({ cmd: ['true'] })
      .expect(200);
    expect(cmd.body.outputs).toBeUndefined();
    await api().delete(`${P}/sessions/${s.id}`).set(as(ALICE)).expect(204);
  });

  it('400 naming the field; an unknown session is 404', async () => {
    const s = await open();
    const both = await api()
      .post(`${P}/sessions/${s.id}/executions`)
      .set(as(ALICE))
      .send({ code: 'x', cmd: ['ls'] })
      .expect(400);
    expect(both.body.field).toBe('cmd');
    const bad = await api()
      .post(`${P}/sessions`)
      .set(as(ALICE))
      .send({ maxLifetimeMs: 10 ** 9 })
      .expect(400);
    expect(bad.body.field).toBe('maxLifetimeMs');
    await api().get(`${P}/sessions/no-such-session`).set(as(ALICE)).expect(404);
    await api().delete(`${P}/sessions/${s.id}`).set(as(ALICE)).expect(204);
  });
});

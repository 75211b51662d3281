import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import request from 'supertest';
import { CONTAINER_DRIVER } from '../../src/container-pool/container-pool.constants';
import { ContainerPoolModule } from '../../src/container-pool/container-pool.module';
import type { DriverExecRequest } from '../../src/container-pool/engine/container-driver.interface';
import { TarParser, tarOf } from '../../src/container-pool/execution/files/tar';
import { collectBudget } from '../../src/container-pool/http/executions.controller';
import { ContainerPoolService } from '../../src/container-pool/container-pool.service';
import { FakeDriver, type FakeExecResult } from '../support/fake-driver';

const TOKEN = 'unit-admin-token-0123456789';
const auth = { Authorization: `Bearer ${TOKEN}` };
const ok = (stdout: Buffer = Buffer.alloc(0)): FakeExecResult => ({
  exitCode: 0,
  stdout,
  stderr: Buffer.alloc(0),
  truncated: false,
  aborted: false,
});

/** A fake engine whose files helper writes into `written` and serves `disk` to scan and fetch. */
function fakeFiles(disk: Record<string, Buffer>) {
  const driver = new FakeDriver();
  const written: { args: string[]; members: { name: string; content: Buffer | null }[] }[] = [];
  driver.execBehaviour = (req: DriverExecRequest) => {
    const op = req.cmd[9];
    const args = req.cmd.slice(10);
    if (op === 'write') {
      const p = new TarParser(() => true, 1 << 30);
      p.write(req.stdin!);
      written.push({ args, members: p.members });
      return ok();
    }
    if (op === 'scan') {
      const tok = args[3];
      const lines = [`0 0 ${tok}/workspace${tok}`].concat(
        Object.entries(disk).map(([p, b]) => `81a4 ${b.length} ${tok}/workspace/${p}${tok}`),
      );
      return ok(Buffer.from(lines.join('\n') + '\n'));
    }
    if (op === 'fetch') {
      const names = args.slice(1).map((a) => a.replace(/^\.\//, ''));
      return ok(tarOf(names.map((name) => ({ name, content: disk[name] }))));
    }
    return ok(Buffer.from(`ran ${req.cmd.join(' ')}\n`));
  };
  return { driver, written };
}

async function host(driver: FakeDriver, options: object = {}) {
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
  const app = moduleRef.createNestApplication({ logger: false, bodyParser: false });
  await app.init();
  await app.get(ContainerPoolService).initialize();
  return { app, http: () => request(app.getHttpServer() as Parameters<typeof request>[0]) };
}

describe('files over HTTP (fake driver)', () => {
  let app: INestApplication | undefined;
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  it('takes files as text or base64, returns collected files as base64', async () => {
    const bytes = Buffer.from([0, 1, 254, 255]);
    const { driver, written } = fakeFiles({ 'out/a.png': bytes, 'out/b.txt': Buffer.from('x') });
    const h = await host(driver);
    app = h.app;
    const r = await h
      .http()
      .post('/admin/pool/executions')
      .set(auth)
      .send({
        cmd: ['prog'],
        files: [
          { path: 'in.csv', content: 'a,b' },
          { path: '/tmp/bin', contentBase64: bytes.toString('base64'), mode: 0o600 },
        ],
        collect: ['out/*.png'],
      })
      .expect(200);
    // Each file staged on its target's mount: the work dir's, then /tmp's.
    expect(written).toHaveLength(2);
    expect(written.map((w) => w.args)).toEqual([
      ['W', '/workspace/in.csv', '644'],
      ['T', '/tmp/bin', '600'],
    ]);
    expect(written.flatMap((w) => w.members.map((m) => m.content!.toString('base64')))).toEqual([
      Buffer.from('a,b').toString('base64'),
      bytes.toString('base64'),
    ]);
    expect(r.body.files).toEqual([
      { path: 'out/a.png', size: 4, contentBase64: bytes.toString('base64'), truncated: false },
    ]);
    expect(r.body.filesTruncated).toBe(false);
  });

  it('answers 400 for a file with both or neither content, a bad mode, a path outside, above a cap', async () => {
    const { driver } = fakeFiles({});
    const h = await host(driver, { maxFiles: 1 });
    app = h.app;
    const send = (body: object) =>
      h.http().post('/admin/pool/executions').set(auth).send(body).expect(400);
    let r = await send({ cmd: ['x'], files: [{ path: 'a', content: 'x', contentBase64: 'eA==' }] });
    expect(r.body).toMatchObject({ code: 'INVALID_REQUEST', field: 'files[0].content' });
    r = await send({ cmd: ['x'], files: [{ path: 'a' }] });
    expect(r.body).toMatchObject({ field: 'files[0].content' });
    r = await send({ cmd: ['x'], files: [{ path: 'a', content: '', mode: 4095 }] });
    expect(r.body.details[0].field).toMatch(/files/);
    r = await send({ cmd: ['x'], files: [{ path: '/etc/passwd', content: '' }] });
    expect(r.body).toMatchObject({ field: 'files[0].path' });
    expect(r.body.message).toMatch(/outside the work dir/);
    r = await send({
      cmd: ['x'],
      files: [
        { path: 'a', content: '' },
        { path: 'b', content: '' },
      ],
    });
    expect(r.body).toMatchObject({ field: 'files' });
    expect(r.body.message).toMatch(/above maxFiles \(1\)/);
    r = await send({ cmd: ['x'], files: [{ path: 'a', content: '', extra: 1 }] });
    expect(r.body.code).toBe('INVALID_REQUEST');
    r = await send({ cmd: ['x'], collect: ['/etc/*'] });
    expect(r.body).toMatchObject({ field: 'collect[0]' });
  });

  it('collects no more than the answer can carry as base64 within maxBodyBytes', async () => {
    const big = Buffer.alloc(300 * 1024, 1);
    const { driver } = fakeFiles({ a: big, b: big, c: big });
    const maxBodyBytes = 1024 * 1024;
    const h = await host(driver, { maxBodyBytes, maxOutputBytes: 1024 });
    app = h.app;
    const budget = collectBudget(maxBodyBytes, 1024);
    expect(budget).toBeLessThan(maxBodyBytes * 0.75);
    const r = await h
      .http()
      .post('/admin/pool/executions')
      .set(auth)
      .send({ cmd: ['x'], collect: ['*'] })
      .expect(200);
    expect(r.body.files.map((f: { path: string }) => f.path)).toEqual(['a', 'b']);
    expect(r.body.filesTruncated).toBe(true);
    expect(JSON.stringify(r.body).length).toBeLessThan(maxBodyBytes);
  });
});

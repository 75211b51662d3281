import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { CONTAINER_DRIVER } from '../../src/container-pool/container-pool.constants';
import { ContainerPoolModule } from '../../src/container-pool/container-pool.module';
import request from 'supertest';
import type { DriverExecRequest } from '../../src/container-pool/engine/container-driver.interface';
import { ContainerLostError } from '../../src/container-pool/errors/container-pool.errors';
import { streamTiming } from '../../src/container-pool/http/execution-stream';
import { FakeDriver, type FakeExecResult } from '../support/fake-driver';
import { tick } from '../support/pool-testing';

const TOKEN = 'unit-stream-token-0123456789';
const none = Buffer.alloc(0);
const ok = (): FakeExecResult => ({
  exitCode: 0,
  stdout: none,
  stderr: none,
  truncated: false,
  aborted: false,
});

async function write(req: DriverExecRequest, stream: 'stdout' | 'stderr', data: Buffer) {
  const target = stream === 'stdout' ? req.stdout : req.stderr;
  if (!target.write(data)) await new Promise((r) => target.once('drain', r));
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

const ndjson = (text: string) =>
  text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);

describe('streamed executions over HTTP (fake driver)', () => {
  let app: INestApplication;
  let driver: FakeDriver;

  beforeEach(async () => {
    driver = new FakeDriver();
    const moduleRef = await Test.createTestingModule({
      imports: [
        ContainerPoolModule.forRoot({
          image: 'fake:latest',
          size: 0,
          replenishIntervalMs: 60_000,
          adminToken: TOKEN,
          http: true,
        }),
      ],
    })
      .overrideProvider(CONTAINER_DRIVER)
      .useValue(driver)
      .compile();
    app = moduleRef.createNestApplication({ logger: false });
    await app.init();
  });

  afterEach(async () => {
    streamTiming.keepaliveMs = 15_000;
    await app.close();
  });

  const post = (body: object, accept: string) =>
    request(app.getHttpServer())
      .post('/admin/pool/executions')
      .set({ Authorization: `Bearer ${TOKEN}`, Accept: accept })
      .send(body)
      .buffer(true)
      .parse(asText);

  it('NDJSON: output lines (text, or base64 when not UTF-8), then one result line', async () => {
    driver.execBehaviour = async (req) => {
      await write(req, 'stdout', Buffer.from('hi\n'));
      await write(req, 'stderr', Buffer.from([0xff]));
      await write(req, 'stdout', Buffer.from('there\n'));
      return ok();
    };
    const res = await post({ cmd: ['x'] }, 'application/x-ndjson').expect(200);
    expect(res.headers['content-type']).toMatch(/^application\/x-ndjson/);
    expect(ndjson(res.body as string)).toEqual([
      { type: 'output', stream: 'stdout', offset: 0, text: 'hi\n' },
      { type: 'output', stream: 'stderr', offset: 0, base64: '/w==' },
      { type: 'output', stream: 'stdout', offset: 3, text: 'there\n' },
      {
        type: 'result',
        result: expect.objectContaining({
          exitCode: 0,
          stdout: 'hi\nthere\n',
          stderrBase64: '/w==',
        }),
      },
    ]);
  });

  it('SSE: the same lines as data events; outputEncoding base64 applies to the output lines', async () => {
    driver.execBehaviour = async (req) => {
      await write(req, 'stdout', Buffer.from('a'));
      return ok();
    };
    const res = await post({ cmd: ['x'], outputEncoding: 'base64' }, 'text/event-stream').expect(
      200,
    );
    expect(res.headers['content-type']).toMatch(/^text\/event-stream/);
    const events = (res.body as string).split('\n\n').filter(Boolean);
    expect(events[0]).toBe('data: {"type":"output","stream":"stdout","offset":0,"base64":"YQ=="}');
    expect(events).toHaveLength(2);
    expect(events[1]).toMatch(/^data: \{"type":"result","result":\{/);
  });

  it('an error after the first byte is one error line; before it, the usual error answer', async () => {
    driver.execBehaviour = async (req) => {
      await write(req, 'stdout', Buffer.from('x'));
      throw new ContainerLostError('c', 'gone (fake)');
    };
    const late = await post({ cmd: ['x'] }, 'application/x-ndjson').expect(200);
    const lines = ndjson(late.body as string);
    expect(lines.map((l) => l.type)).toEqual(['output', 'error']);
    expect(lines[1].error).toMatchObject({ code: 'CONTAINER_LOST', statusCode: 502 });

    driver.execBehaviour = () => {
      throw new ContainerLostError('c', 'gone (fake)');
    };
    const early = await request(app.getHttpServer())
      .post('/admin/pool/executions')
      .set({ Authorization: `Bearer ${TOKEN}`, Accept: 'application/x-ndjson' })
      .send({ cmd: ['x'] });
    expect(early.status).toBe(502);
    expect(early.body).toMatchObject({ code: 'CONTAINER_LOST' });
  });

  it('a keepalive line after every keepaliveMs of silence, and none after the result', async () => {
    streamTiming.keepaliveMs = 50;
    driver.execBehaviour = async (req) => {
      await write(req, 'stdout', Buffer.from('a'));
      await tick(180);
      await write(req, 'stdout', Buffer.from('b'));
      return ok();
    };
    const res = await post({ cmd: ['x'] }, 'application/x-ndjson').expect(200);
    const types = ndjson(res.body as string).map((l) => l.type);
    expect(types[0]).toBe('output');
    expect(types.filter((t) => t === 'keepalive').length).toBeGreaterThanOrEqual(2);
    expect(types.at(-1)).toBe('result');
    expect(types.filter((t) => t === 'result')).toHaveLength(1);
  });

  it('without a streamed Accept the answer is the JSON result', async () => {
    const res = await request(app.getHttpServer())
      .post('/admin/pool/executions')
      .set({ Authorization: `Bearer ${TOKEN}` })
      .send({ cmd: ['echo', 'hi'] })
      .expect(200);
    expect(res.body).toMatchObject({ exitCode: 0, stdout: 'ran echo hi\n' });
  });
});

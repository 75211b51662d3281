/*
 * Protocol 3, host side: the OUTPUT frame's strict parser, the cell EXIT's outputsDropped, and the connection's
 * routing of OUTPUT frames (a running cell's only, within the bounds the runner itself keeps).
 */
import { PassThrough, Writable } from 'node:stream';
import type { DriverContainer } from '../../src/container-pool/engine/container-driver.interface';
import { RunnerProtocolError } from '../../src/container-pool/errors/container-pool.errors';
import {
  RunnerConnection,
  type JobControl,
} from '../../src/container-pool/transport/runner/runner-connection';
import {
  encodeFrame,
  type JobHeader,
  type OutputMessage,
  parseExit,
  parseOutput,
  RunnerFrame,
  RUNNER_PROTOCOL_VERSION,
  RunnerViolation,
} from '../../src/container-pool/transport/runner/runner-protocol';

const json = (v: unknown) => Buffer.from(JSON.stringify(v));
const outputFrame = (jobId: number, v: unknown) =>
  encodeFrame(RunnerFrame.output, jobId, typeof v === 'string' ? Buffer.from(v) : json(v));
const parse = (v: unknown) => parseOutput({ type: RunnerFrame.output, jobId: 1, payload: json(v) });

describe('OUTPUT payload (protocol 3)', () => {
  it('is protocol 3, frame 0x87', () => {
    expect(RUNNER_PROTOCOL_VERSION).toBe(3);
    expect(RunnerFrame.output).toBe(0x87);
  });

  it('parses a result, a display with every MIME type, and a drop mark', () => {
    expect(parse({ t: 'out', type: 'result', data: { 'text/plain': '42' } })).toEqual({
      type: 'result',
      data: { 'text/plain': '42' },
    });
    const all = {
      'text/plain': '<Figure>',
      'text/html': '<b>x</b>',
      'text/markdown': '*x*',
      'text/latex': '$x$',
      'image/svg+xml': '<svg/>',
      'image/png': 'iVBORw0KGgo=',
      'image/jpeg': '/9j/4A==',
      'application/json': { a: [1, null, 'x'] },
    };
    expect(parse({ t: 'out', type: 'display', data: all })).toEqual({ type: 'display', data: all });
    // application/json is any JSON value, null and scalars included.
    for (const value of [null, 3, 'x', [1], false]) {
      expect(
        parse({ t: 'out', type: 'display', data: { 'text/plain': 'v', 'application/json': value } })
          .data?.['application/json'],
      ).toEqual(value);
    }
    expect(parse({ t: 'out', type: 'display', data: null })).toEqual({
      type: 'display',
      data: null,
    });
  });

  it.each([
    ['not JSON', '{', /not JSON/],
    ['a JSON array', [1], /not a JSON object/],
    ['no t', { type: 'result', data: null }, /wrong shape/],
    ['another t', { t: 'done', type: 'result', data: null }, /wrong shape/],
    ['an extra key', { t: 'out', type: 'result', data: null, more: 1 }, /wrong shape/],
    ['no data', { t: 'out', type: 'result', x: 1 }, /wrong shape/],
    ['another type', { t: 'out', type: 'stream', data: null }, /type "stream"/],
    ['data an array', { t: 'out', type: 'result', data: [] }, /neither null nor an object/],
    ['data a string', { t: 'out', type: 'result', data: 'x' }, /neither null nor an object/],
    [
      'an unknown MIME type',
      { t: 'out', type: 'result', data: { 'text/plain': 'x', 'text/x-evil': 'y' } },
      /MIME type "text\/x-evil"/,
    ],
    [
      'a non-string text entry',
      { t: 'out', type: 'result', data: { 'text/plain': 'x', 'text/html': 1 } },
      /text\/html is not a string/,
    ],
    [
      'a non-string image entry',
      { t: 'out', type: 'display', data: { 'text/plain': 'x', 'image/png': [1, 2] } },
      /image\/png is not a string/,
    ],
    ['no text/plain', { t: 'out', type: 'display', data: { 'text/html': '<b/>' } }, /text\/plain/],
    [
      'a non-string text/plain',
      { t: 'out', type: 'display', data: { 'text/plain': 1 } },
      /text\/plain/,
    ],
  ])('refuses %s', (_what, payload, message) => {
    const frame = {
      type: RunnerFrame.output,
      jobId: 1,
      payload: typeof payload === 'string' ? Buffer.from(payload) : json(payload),
    };
    expect(() => parseOutput(frame)).toThrow(RunnerViolation);
    expect(() => parseOutput(frame)).toThrow(message);
  });

  it("a cell's EXIT carries outputsDropped (0 when left out); anything but a count is a violation", () => {
    const exit = (v: object) => parseExit({ type: RunnerFrame.exit, jobId: 1, payload: json(v) });
    const cell = { status: 0, oomKills: 0, interpreter: 1, alive: true, report: { error: null } };
    expect(exit({ ...cell, outputsDropped: 7 }).cell?.outputsDropped).toBe(7);
    expect(exit(cell).cell?.outputsDropped).toBe(0);
    expect(exit({ ...cell, report: null, outputsDropped: 2 }).cell).toMatchObject({
      report: null,
      outputsDropped: 2,
    });
    for (const bad of [-1, 1.5, '3', true, {}]) {
      expect(() => exit({ ...cell, outputsDropped: bad })).toThrow(/outputsDropped/);
    }
  });
});

function fakeRunner() {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const stdin = new Writable({
    write(_chunk: Buffer, _e, cb) {
      cb();
    },
  });
  const container: DriverContainer = {
    id: 'c1',
    name: 'cpool-outputs-1',
    handle: null,
    exited: new Promise<string>(() => undefined),
    execUser: '65534:65534',
    channel: { stdin, stdout, stderr },
  };
  const killed: string[] = [];
  const connection = new RunnerConnection(container, {
    runnerVersion: '9.9.9',
    kill: (reason) => killed.push(reason),
    log: { warn: () => undefined, debug: () => undefined },
  });
  stdout.write(
    encodeFrame(
      RunnerFrame.hello,
      0,
      json({ protocol: RUNNER_PROTOCOL_VERSION, runner: '9.9.9', python: '3.11.2', oomKills: 0 }),
    ),
  );
  return { connection, stdout, killed };
}

const sink = () =>
  new Writable({
    write(_c, _e, cb) {
      cb();
    },
  });

const cellHeader = (outputs?: { max: number; maxBytes: number }): JobHeader => ({
  kind: 'cell',
  env: [],
  workdir: '/workspace',
  lineBuffered: false,
  name: '<cell-1>',
  ...(outputs && { outputs }),
});
const cmdHeader: JobHeader = {
  kind: 'cmd',
  argv: ['true'],
  env: [],
  workdir: '/',
  lineBuffered: false,
};
const cellExit = (over: object = {}) =>
  json({ status: 0, oomKills: 0, interpreter: 1, alive: true, report: { error: null }, ...over });

async function start(header: JobHeader, control: JobControl = {}) {
  const r = fakeRunner();
  await r.connection.hello;
  const running = r.connection.run(
    header,
    header.kind === 'cmd' ? undefined : Buffer.from('1'),
    null,
    { stdout: sink(), stderr: sink() },
    new AbortController().signal,
    control,
  );
  return { ...r, running };
}

describe('runner connection: OUTPUT frames', () => {
  it("hands a cell's outputs to the job in order, then its EXIT with outputsDropped", async () => {
    const got: OutputMessage[] = [];
    const r = await start(cellHeader({ max: 4, maxBytes: 1024 }), {
      onRichOutput: (o) => got.push(o),
    });
    r.stdout.write(outputFrame(1, { t: 'out', type: 'display', data: { 'text/plain': 'a' } }));
    r.stdout.write(outputFrame(1, { t: 'out', type: 'result', data: { 'text/plain': 'b' } }));
    r.stdout.write(outputFrame(1, { t: 'out', type: 'display', data: null }));
    r.stdout.write(encodeFrame(RunnerFrame.exit, 1, cellExit({ outputsDropped: 3 })));
    const outcome = await r.running;
    expect(got).toEqual([
      { type: 'display', data: { 'text/plain': 'a' } },
      { type: 'result', data: { 'text/plain': 'b' } },
      { type: 'display', data: null },
    ]);
    expect(outcome.cell?.outputsDropped).toBe(3);
    expect(r.killed).toHaveLength(0);
  });

  it.each([
    ['a cmd job', cmdHeader, 1, /OUTPUT frame for job 1, a cmd job \(not a cell\)/],
    ['a code job', { ...cmdHeader, kind: 'code' as const, argv: undefined }, 1, /a code job/],
    [
      'a job never started',
      cellHeader({ max: 4, maxBytes: 1024 }),
      5,
      /job 5, which the host never started/,
    ],
    ['a cell without outputs in its header', cellHeader(), 1, /past its bounds/],
    ['a cell of max 0', cellHeader({ max: 0, maxBytes: 1024 }), 1, /past its bounds/],
  ])(
    'an OUTPUT frame for %s is a violation: the container is killed',
    async (_w, header, id, message) => {
      const r = await start(header);
      r.stdout.write(outputFrame(id, { t: 'out', type: 'result', data: { 'text/plain': 'x' } }));
      await expect(r.running).rejects.toBeInstanceOf(RunnerProtocolError);
      await expect(r.running).rejects.toThrow(message);
      expect(r.killed).toHaveLength(1);
    },
  );

  it('an OUTPUT frame for a cell that has ended is a violation', async () => {
    const r = await start(cellHeader({ max: 4, maxBytes: 1024 }));
    r.stdout.write(encodeFrame(RunnerFrame.exit, 1, cellExit()));
    await r.running;
    const next = r.connection.run(
      cmdHeader,
      undefined,
      null,
      { stdout: sink(), stderr: sink() },
      new AbortController().signal,
    );
    r.stdout.write(outputFrame(1, { t: 'out', type: 'result', data: { 'text/plain': 'x' } }));
    await expect(next).rejects.toThrow(/OUTPUT frame for job 1, which has ended/);
    expect(r.killed).toHaveLength(1);
  });

  it('an OUTPUT frame of the wrong shape is a violation', async () => {
    const r = await start(cellHeader({ max: 4, maxBytes: 1024 }), {
      onRichOutput: () => undefined,
    });
    r.stdout.write(outputFrame(1, { t: 'out', type: 'result', data: { 'image/png': 'AA==' } }));
    await expect(r.running).rejects.toThrow(/OUTPUT frame without text\/plain/);
    expect(r.killed).toHaveLength(1);
  });

  it('more outputs than the cell allows (max), or past 2 x maxBytes + 65536 payload bytes, is a violation', async () => {
    const one = { t: 'out', type: 'display', data: { 'text/plain': 'x' } };
    const got: OutputMessage[] = [];
    const counted = await start(cellHeader({ max: 2, maxBytes: 1024 }), {
      onRichOutput: (o) => got.push(o),
    });
    counted.stdout.write(outputFrame(1, one));
    counted.stdout.write(outputFrame(1, one));
    counted.stdout.write(outputFrame(1, one));
    await expect(counted.running).rejects.toThrow(/past its bounds \(2 outputs/);
    expect(got).toHaveLength(2);

    // maxBytes 0: the runner forwards while fewer than 65536 payload bytes went; one more past that is refused.
    const big = { t: 'out', type: 'display', data: { 'text/plain': 'y'.repeat(70_000) } };
    const bytes = await start(cellHeader({ max: 10, maxBytes: 0 }), {
      onRichOutput: () => undefined,
    });
    bytes.stdout.write(outputFrame(1, big));
    bytes.stdout.write(outputFrame(1, one));
    await expect(bytes.running).rejects.toThrow(/past its bounds \(1 outputs, \d+ bytes/);
  });
});

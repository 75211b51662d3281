import { PassThrough, Writable } from 'node:stream';
import type { DriverContainer } from '../../src/container-pool/engine/container-driver.interface';
import {
  ContainerLostError,
  InvalidRequestError,
  RunnerProtocolError,
} from '../../src/container-pool/errors/container-pool.errors';
import {
  RunnerConnection,
  RunnerStartError,
} from '../../src/container-pool/transport/runner/runner-connection';
import {
  type DecodedFrame,
  encodeFrame,
  encodeJob,
  encodeStdin,
  FRAME_HEADER_BYTES,
  FrameDecoder,
  HostFrame,
  RunnerFrame,
  RUNNER_PROTOCOL_VERSION,
  RunnerViolation,
} from '../../src/container-pool/transport/runner/runner-protocol';
import { mergeEnv } from '../../src/container-pool/transport/runner/runner.transport';

const json = (v: unknown) => Buffer.from(JSON.stringify(v));
const hello = (over: object = {}) =>
  encodeFrame(
    RunnerFrame.hello,
    0,
    json({
      protocol: RUNNER_PROTOCOL_VERSION,
      runner: '9.9.9',
      python: '3.11.2',
      oomKills: 0,
      ...over,
    }),
  );

/** The frame types in host -> runner bytes, in order. */
function frameTypes(bytes: Buffer): number[] {
  const types: number[] = [];
  for (let at = 0; at + 9 <= bytes.length; at += 9 + bytes.readUInt32BE(at))
    types.push(bytes[at + 4]);
  return types;
}

describe('runner frames', () => {
  it('decodes frames split at every byte boundary, in order, payloads intact', () => {
    const frames = [
      hello(),
      encodeFrame(RunnerFrame.stdout, 1, Buffer.from([0, 1, 2, 255])),
      encodeFrame(RunnerFrame.exit, 1, json({ status: 0, oomKills: 0 })),
    ];
    const all = Buffer.concat(frames);
    for (let cut = 1; cut < all.length; cut++) {
      const got: DecodedFrame[] = [];
      const d = new FrameDecoder((f) => got.push({ ...f, payload: Buffer.from(f.payload) }));
      d.push(all.subarray(0, cut));
      d.push(all.subarray(cut));
      expect(got.map((f) => [f.type, f.jobId])).toEqual([
        [RunnerFrame.hello, 0],
        [RunnerFrame.stdout, 1],
        [RunnerFrame.exit, 1],
      ]);
      expect(got[1].payload).toEqual(Buffer.from([0, 1, 2, 255]));
      expect(d.idle).toBe(true);
    }
  });

  it('refuses an unknown type, an oversized payload and an empty output chunk, and stays failed', () => {
    const unknown = new FrameDecoder(() => undefined);
    expect(() => unknown.push(encodeFrame(0x42, 1, Buffer.from('x')))).toThrow(/unknown type 0x42/);
    expect(() => unknown.push(hello())).toThrow(RunnerViolation);

    const header = Buffer.alloc(FRAME_HEADER_BYTES);
    header.writeUInt32BE(65537, 0);
    header.writeUInt8(RunnerFrame.stdout, 4);
    header.writeUInt32BE(1, 5);
    // Refused at the header: the host never allocates what the container announces beyond the limit.
    expect(() => new FrameDecoder(() => undefined).push(header)).toThrow(
      /STDOUT frame of 65537 bytes \(at most 65536\)/,
    );
    header.writeUInt32BE(0xffffffff, 0);
    header.writeUInt8(RunnerFrame.exit, 4);
    expect(() => new FrameDecoder(() => undefined).push(header)).toThrow(
      /EXIT frame of 4294967295/,
    );
    expect(() =>
      new FrameDecoder(() => undefined).push(encodeFrame(RunnerFrame.stderr, 1)),
    ).toThrow(/empty STDERR/);
  });

  it('encodes a job as u32 header length, JSON, code; stdin in chunks, then EOF', () => {
    const frame = encodeJob(
      7,
      { kind: 'code', env: ['A=1'], workdir: '/w', lineBuffered: true },
      Buffer.from('print(1)'),
    );
    expect(frame.readUInt32BE(0)).toBe(frame.length - FRAME_HEADER_BYTES);
    expect(frame[4]).toBe(HostFrame.job);
    expect(frame.readUInt32BE(5)).toBe(7);
    const n = frame.readUInt32BE(FRAME_HEADER_BYTES);
    const header = JSON.parse(
      frame.subarray(FRAME_HEADER_BYTES + 4, FRAME_HEADER_BYTES + 4 + n).toString(),
    );
    expect(header).toEqual({ kind: 'code', env: ['A=1'], workdir: '/w', lineBuffered: true });
    expect(frame.subarray(FRAME_HEADER_BYTES + 4 + n).toString()).toBe('print(1)');
    const stdin = encodeStdin(7, Buffer.alloc(2.5 * 1024 * 1024, 1));
    expect(stdin.map((f) => f[4])).toEqual([
      HostFrame.stdin,
      HostFrame.stdin,
      HostFrame.stdin,
      HostFrame.stdinEof,
    ]);
    expect(encodeStdin(7, null).map((f) => f[4])).toEqual([HostFrame.stdinEof]);
  });

  it('encodes a job without stdin with its STDIN_EOF in the same buffer, and a multi-byte header by its bytes', () => {
    const header = { kind: 'cell' as const, env: ['A=é☃'], workdir: '/w', lineBuffered: false };
    const code = Buffer.from('x = "ü"');
    const both = encodeJob(9, header, code, true);
    const job = encodeJob(9, header, code);
    expect(both.subarray(0, job.length)).toEqual(job);
    expect(both.subarray(job.length)).toEqual(encodeFrame(HostFrame.stdinEof, 9));
    const n = job.readUInt32BE(FRAME_HEADER_BYTES);
    expect(
      JSON.parse(job.subarray(FRAME_HEADER_BYTES + 4, FRAME_HEADER_BYTES + 4 + n).toString()),
    ).toEqual(header);
    expect(job.subarray(FRAME_HEADER_BYTES + 4 + n)).toEqual(code);
  });

  it('merges the job env over the container env by key, as the engine merges an exec env', () => {
    expect(mergeEnv(['PATH=/bin', 'HOME=/w'], ['HOME=/x', 'A=1'])).toEqual([
      'PATH=/bin',
      'HOME=/x',
      'A=1',
    ]);
  });
});

/** A container whose channel the test plays the runner on. */
function fakeRunner() {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const sent: Buffer[] = [];
  const stdin = new Writable({
    write(chunk: Buffer, _e, cb) {
      sent.push(chunk);
      cb();
    },
  });
  let exit!: (reason: string) => void;
  const container: DriverContainer = {
    id: 'c1',
    name: 'cpool-test-1',
    handle: null,
    exited: new Promise<string>((r) => (exit = r)),
    execUser: '65534:65534',
    channel: { stdin, stdout, stderr },
  };
  const killed: string[] = [];
  const connection = new RunnerConnection(container, {
    runnerVersion: '9.9.9',
    kill: (reason) => killed.push(reason),
    log: { warn: () => undefined, debug: () => undefined },
  });
  return { container, connection, stdout, stderr, sent, killed, exit: (r: string) => exit(r) };
}

function sink() {
  const chunks: Buffer[] = [];
  const w = new Writable({
    write(chunk: Buffer, _e, cb) {
      chunks.push(chunk);
      cb();
    },
  });
  return { w, text: () => Buffer.concat(chunks).toString() };
}

const tick = () => new Promise((r) => setImmediate(r));

describe('runner connection (host side, untrusted runner)', () => {
  const job = { kind: 'cmd' as const, argv: ['true'], env: [], workdir: '/', lineBuffered: false };

  it('waits for a HELLO of the right protocol and version, then runs a job to its EXIT', async () => {
    const r = fakeRunner();
    r.stdout.write(hello());
    await expect(r.connection.hello).resolves.toMatchObject({ python: '3.11.2' });
    const out = sink();
    const err = sink();
    const running = r.connection.run(
      job,
      undefined,
      Buffer.from('in'),
      { stdout: out.w, stderr: err.w },
      new AbortController().signal,
    );
    await tick();
    // The job and its small stdin go in one write.
    expect(r.sent).toHaveLength(1);
    expect(frameTypes(Buffer.concat(r.sent))).toEqual([
      HostFrame.job,
      HostFrame.stdin,
      HostFrame.stdinEof,
    ]);
    r.stdout.write(encodeFrame(RunnerFrame.stdout, 1, Buffer.from('hi\n')));
    r.stdout.write(encodeFrame(RunnerFrame.stderr, 1, Buffer.from('e')));
    r.stdout.write(encodeFrame(RunnerFrame.exit, 1, json({ status: 137, oomKills: 1 })));
    await expect(running).resolves.toEqual({
      exitCode: 137,
      aborted: false,
      oomKills: 1,
      oomKillsBefore: 0,
    });
    expect(out.text()).toBe('hi\n');
    expect(err.text()).toBe('e');
  });

  it.each([
    [
      'a frame before HELLO',
      () => encodeFrame(RunnerFrame.stdout, 1, Buffer.from('x')),
      /STDOUT frame before HELLO/,
    ],
    [
      'a HELLO of another version',
      () => hello({ runner: '1.0.0' }),
      new RegExp(
        `runner "1.0.0" \\(expected protocol ${RUNNER_PROTOCOL_VERSION}, runner "9.9.9"\\)`,
      ),
    ],
    ['a HELLO of another protocol', () => hello({ protocol: 1 }), /HELLO of protocol 1,/],
    [
      'a HELLO that is not JSON',
      () => encodeFrame(RunnerFrame.hello, 0, Buffer.from('{')),
      /not JSON/,
    ],
  ])('fails the create on %s and kills the container', async (_what, frame, message) => {
    const r = fakeRunner();
    r.stdout.write(frame());
    await expect(r.connection.hello).rejects.toBeInstanceOf(RunnerStartError);
    await expect(r.connection.hello).rejects.toThrow(message);
    expect(r.killed).toHaveLength(1);
  });

  it('fails the create when the runner ends before its HELLO, with what it wrote on stderr', async () => {
    const r = fakeRunner();
    r.stderr.write('python3: too old\n');
    await tick();
    r.stdout.end();
    await expect(r.connection.hello).rejects.toMatchObject({
      exitedBeforeHello: true,
      message: expect.stringContaining('python3: too old'),
    });
  });

  it.each([
    [
      'a frame for a job the host never started',
      () => encodeFrame(RunnerFrame.stdout, 9, Buffer.from('x')),
      /job 9, which the host never started/,
    ],
    ['an unknown type', () => encodeFrame(0x99, 1, Buffer.from('x')), /unknown type 0x99/],
    [
      'an exit status above 255',
      () => encodeFrame(RunnerFrame.exit, 1, json({ status: 256 })),
      /status 256/,
    ],
    [
      'a negative exit status',
      () => encodeFrame(RunnerFrame.exit, 1, json({ status: -1 })),
      /status -1/,
    ],
    ['a second HELLO', () => hello(), /second HELLO/],
    [
      'an ERROR of the wrong shape',
      () => encodeFrame(RunnerFrame.error, 1, json({ what: 'x' })),
      /ERROR frame of the wrong shape/,
    ],
    [
      'a partial frame at the end',
      () => encodeFrame(RunnerFrame.stdout, 1, Buffer.from('abc')).subarray(0, 11),
      /ended inside a frame/,
    ],
  ])(
    'kills the container and fails the job with RunnerProtocolError on %s',
    async (what, frame, message) => {
      const r = fakeRunner();
      r.stdout.write(hello());
      await r.connection.hello;
      const running = r.connection.run(
        job,
        undefined,
        null,
        { stdout: sink().w, stderr: sink().w },
        new AbortController().signal,
      );
      r.stdout.write(frame());
      if (what === 'a partial frame at the end') r.stdout.end();
      await expect(running).rejects.toBeInstanceOf(RunnerProtocolError);
      await expect(running).rejects.toThrow(message);
      expect(r.killed).toHaveLength(1);
      // Nothing more is accepted from it.
      await expect(
        r.connection.run(
          job,
          undefined,
          null,
          { stdout: sink().w, stderr: sink().w },
          new AbortController().signal,
        ),
      ).rejects.toBeInstanceOf(RunnerProtocolError);
    },
  );

  it('treats output after the exit as a violation', async () => {
    const r = fakeRunner();
    r.stdout.write(hello());
    await r.connection.hello;
    const first = r.connection.run(
      job,
      undefined,
      null,
      { stdout: sink().w, stderr: sink().w },
      new AbortController().signal,
    );
    r.stdout.write(encodeFrame(RunnerFrame.exit, 1, json({ status: 0, oomKills: 0 })));
    await first;
    const second = r.connection.run(
      job,
      undefined,
      null,
      { stdout: sink().w, stderr: sink().w },
      new AbortController().signal,
    );
    r.stdout.write(encodeFrame(RunnerFrame.stdout, 1, Buffer.from('late')));
    await expect(second).rejects.toThrow(/STDOUT frame for job 1, which has ended/);
  });

  it('maps ERROR frames to typed errors: exec and chdir failures are request errors', async () => {
    const r = fakeRunner();
    r.stdout.write(hello());
    await r.connection.hello;
    const sinks = { stdout: sink().w, stderr: sink().w };
    const exec = r.connection.run(job, undefined, null, sinks, new AbortController().signal);
    r.stdout.write(
      encodeFrame(RunnerFrame.error, 1, json({ what: 'exec', errno: 2, message: 'No such file' })),
    );
    await expect(exec).rejects.toMatchObject({ field: 'cmd[0]' });
    await expect(exec).rejects.toBeInstanceOf(InvalidRequestError);
    const chdir = r.connection.run(job, undefined, null, sinks, new AbortController().signal);
    r.stdout.write(
      encodeFrame(RunnerFrame.error, 2, json({ what: 'chdir', errno: 2, message: 'No such file' })),
    );
    await expect(chdir).rejects.toMatchObject({ field: 'workdir' });
    const spawn = r.connection.run(job, undefined, null, sinks, new AbortController().signal);
    r.stdout.write(
      encodeFrame(RunnerFrame.error, 3, json({ what: 'spawn', errno: 11, message: 'EAGAIN' })),
    );
    await expect(spawn).rejects.toBeInstanceOf(ContainerLostError);
    expect(r.killed).toHaveLength(0);
  });

  it('fails running jobs with ContainerLostError when the container ends', async () => {
    const r = fakeRunner();
    r.stdout.write(hello());
    await r.connection.hello;
    const running = r.connection.run(
      job,
      undefined,
      null,
      { stdout: sink().w, stderr: sink().w },
      new AbortController().signal,
    );
    r.exit('the container stopped');
    await expect(running).rejects.toBeInstanceOf(ContainerLostError);
  });

  it('an aborted job resolves aborted, sends KILL, and its late frames are dropped, not violations', async () => {
    const r = fakeRunner();
    r.stdout.write(hello());
    await r.connection.hello;
    const abort = new AbortController();
    const running = r.connection.run(
      job,
      undefined,
      null,
      { stdout: sink().w, stderr: sink().w },
      abort.signal,
    );
    abort.abort();
    await expect(running).resolves.toMatchObject({ aborted: true, exitCode: null });
    await tick();
    expect(r.sent.at(-1)?.[4]).toBe(HostFrame.kill);
    r.stdout.write(encodeFrame(RunnerFrame.stdout, 1, Buffer.from('late')));
    r.stdout.write(encodeFrame(RunnerFrame.exit, 1, json({ status: 137 })));
    const next = r.connection.run(
      job,
      undefined,
      null,
      { stdout: sink().w, stderr: sink().w },
      new AbortController().signal,
    );
    r.stdout.write(encodeFrame(RunnerFrame.exit, 2, json({ status: 0 })));
    await expect(next).resolves.toMatchObject({ exitCode: 0 });
    expect(r.killed).toHaveLength(0);
  });

  it('pauses the channel while a sink is behind and resumes at its drain', async () => {
    const r = fakeRunner();
    r.stdout.write(hello());
    await r.connection.hello;
    let release!: () => void;
    const slow = new Writable({
      highWaterMark: 1,
      write(_chunk, _e, cb) {
        release = () => cb();
      },
    });
    const running = r.connection.run(
      job,
      undefined,
      null,
      { stdout: slow, stderr: sink().w },
      new AbortController().signal,
    );
    r.stdout.write(encodeFrame(RunnerFrame.stdout, 1, Buffer.from('a')));
    await tick();
    expect(r.stdout.isPaused()).toBe(true);
    release();
    await tick();
    expect(r.stdout.isPaused()).toBe(false);
    r.stdout.write(encodeFrame(RunnerFrame.exit, 1, json({ status: 0 })));
    await expect(running).resolves.toMatchObject({ exitCode: 0 });
  });
});

import { PassThrough, Writable } from 'node:stream';
import type {
  ContainerDriver,
  DriverContainer,
} from '../../src/container-pool/engine/container-driver.interface';
import { ContainerLostError } from '../../src/container-pool/errors/container-pool.errors';
import {
  RunnerConnection,
  RunnerStartError,
} from '../../src/container-pool/transport/runner/runner-connection';
import {
  encodeFrame,
  encodeJob,
  FRAME_HEADER_BYTES,
  RunnerFrame,
  RUNNER_PROTOCOL_VERSION,
} from '../../src/container-pool/transport/runner/runner-protocol';
import { RunnerTransport } from '../../src/container-pool/transport/runner/runner.transport';

const json = (v: unknown) => Buffer.from(JSON.stringify(v));
const sinkW = () =>
  new Writable({
    write(_c, _e, cb) {
      cb();
    },
  });

const tick = () => new Promise((r) => setImmediate(r));
const quiet = { warn: () => undefined, debug: () => undefined };

function fakeContainer() {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const stdin = new Writable({
    write(_chunk: Buffer, _e, cb) {
      cb();
    },
  });
  let exit!: (reason: string) => void;
  const container: DriverContainer = {
    id: 'c1',
    name: 'cpool-review-1',
    handle: null,
    exited: new Promise<string>((r) => (exit = r)),
    execUser: '65534:65534',
    channel: { stdin, stdout, stderr },
  };
  return { container, stdout, stderr, exit: (r: string) => exit(r) };
}

describe('runner transport review', () => {
  it('the wait for HELLO is bounded by the create signal, and giving up is not "the runner exited"', async () => {
    const driver = { removeContainer: () => Promise.resolve() } as unknown as ContainerDriver;
    const t = new RunnerTransport(driver, {
      pythonCommand: ['python3'],
      user: '65534:65534',
      baseEnv: [],
      log: quiet,
    });
    const f = fakeContainer();
    const ac = new AbortController();
    let settled: unknown = 'pending';
    t.mainProcess(new Date(Date.now() + 60_000))
      .ready(f.container, ac.signal)
      .then(
        () => (settled = 'resolved'),
        (err: unknown) => (settled = err),
      );
    await tick();
    ac.abort(new Error('create took longer than 1000 ms'));
    for (let i = 0; i < 5; i++) await tick();
    expect(settled).toBeInstanceOf(RunnerStartError);
    // Not the image's verdict: auto must probe again rather than cache "no runner".
    expect((settled as RunnerStartError).exitedBeforeHello).toBe(false);
    // The container's removal after the give-up does not change that.
    f.exit('the container stopped');
    f.stdout.end();
  });

  it('a broken channel before HELLO is not "the runner exited" (transient, not cached as no Python)', async () => {
    const f = fakeContainer();
    const c = new RunnerConnection(f.container, {
      runnerVersion: '9.9.9',
      kill: () => undefined,
      log: quiet,
    });
    f.stdout.emit('error', new Error('read ECONNRESET'));
    await expect(c.hello).rejects.toMatchObject({ exitedBeforeHello: false });
  });

  it("an OOM kill between two jobs (a background process of the first) is not the second job's: the baseline is the runner's count at its start", async () => {
    const f = fakeContainer();
    const c = new RunnerConnection(f.container, {
      runnerVersion: '9.9.9',
      kill: () => undefined,
      log: quiet,
    });
    f.stdout.write(
      encodeFrame(
        RunnerFrame.hello,
        0,
        json({ protocol: RUNNER_PROTOCOL_VERSION, runner: '9.9.9', python: '3.11.2', oomKills: 0 }),
      ),
    );
    await c.hello;
    const job = {
      kind: 'cmd' as const,
      argv: ['true'],
      env: [],
      workdir: '/',
      lineBuffered: false,
    };
    const sinks = { stdout: sinkW(), stderr: sinkW() };
    const first = c.run(job, undefined, null, sinks, new AbortController().signal);
    f.stdout.write(
      encodeFrame(RunnerFrame.exit, 1, json({ status: 0, oomKills: 0, oomKillsAtStart: 0 })),
    );
    await first;
    // The first job's background process is OOM-killed now (counter 1); then the second job kills itself.
    const second = c.run(job, undefined, null, sinks, new AbortController().signal);
    f.stdout.write(
      encodeFrame(RunnerFrame.exit, 2, json({ status: 137, oomKills: 1, oomKillsAtStart: 1 })),
    );
    const outcome = await second;
    expect(outcome).toMatchObject({ exitCode: 137, oomKills: 1, oomKillsBefore: 1 });
    const t = new RunnerTransport({} as ContainerDriver, {
      pythonCommand: ['python3'],
      user: '65534:65534',
      baseEnv: [],
      log: quiet,
    });
    const evidence = { oomEvents: 0, lostReason: null, waitForNews: () => Promise.resolve() };
    await expect(t.wasOomKilled(f.container, evidence as never, 0, outcome)).resolves.toBe(false);
  });

  it("an earlier job's late engine `oom` event does not make the next job OOM-killed: the job's cgroup counts decide", async () => {
    const t = new RunnerTransport({} as ContainerDriver, {
      pythonCommand: ['python3'],
      user: '65534:65534',
      baseEnv: [],
      log: quiet,
    });
    // The event of the previous job's kill arrived while this job ran (oomEvents 0 -> 1).
    const late = { oomEvents: 1, lostReason: null, waitForNews: () => Promise.resolve() };
    const clean = { exitCode: 137, aborted: false, oomKills: 1, oomKillsBefore: 1 };
    await expect(t.wasOomKilled({} as never, late as never, 0, clean)).resolves.toBe(false);
    const killed = { exitCode: 137, aborted: false, oomKills: 2, oomKillsBefore: 1 };
    await expect(t.wasOomKilled({} as never, late as never, 1, killed)).resolves.toBe(true);
    // Without counts (no cgroup file) the engine's event decides.
    const unknown = { exitCode: 137, aborted: false, oomKills: null, oomKillsBefore: null };
    await expect(t.wasOomKilled({} as never, late as never, 0, unknown)).resolves.toBe(true);
  });

  it('a job whose header or code the runner would refuse (it exits: the container and its other jobs are lost) is a request error, and nothing is sent', async () => {
    const f = fakeContainer();
    const sent: Buffer[] = [];
    const write = f.container.channel!.stdin.write.bind(f.container.channel!.stdin);
    (f.container.channel!.stdin as unknown as { write: (b: Buffer) => boolean }).write = (
      b: Buffer,
    ) => {
      sent.push(b);
      return write(b);
    };
    const c = new RunnerConnection(f.container, {
      runnerVersion: '9.9.9',
      kill: () => undefined,
      log: quiet,
    });
    f.stdout.write(
      encodeFrame(
        RunnerFrame.hello,
        0,
        json({ protocol: RUNNER_PROTOCOL_VERSION, runner: '9.9.9', python: '3.11.2', oomKills: 0 }),
      ),
    );
    await c.hello;
    const sinks = { stdout: sinkW(), stderr: sinkW() };
    const big = 'x'.repeat(600 * 1024);
    const env = {
      kind: 'cmd' as const,
      argv: ['true'],
      env: [`A=${big}`, `B=${big}`],
      workdir: '/',
      lineBuffered: false,
    };
    await expect(
      c.run(env, undefined, null, sinks, new AbortController().signal),
    ).rejects.toMatchObject({
      code: 'INVALID_REQUEST',
      field: 'env',
    });
    const argv = {
      kind: 'cmd' as const,
      argv: ['echo', big, big],
      env: [],
      workdir: '/',
      lineBuffered: false,
    };
    await expect(
      c.run(argv, undefined, null, sinks, new AbortController().signal),
    ).rejects.toMatchObject({
      field: 'cmd',
    });
    expect(sent).toHaveLength(0);
  });

  it('lone surrogates in env, argv and workdir reach the runner as U+FFFD (as the engine makes them for an exec), not as escapes it cannot encode', () => {
    const frame = encodeJob(1, {
      kind: 'cmd',
      argv: ['echo', 'a\ud800b', '\udc00', '\ud83d\ude00'],
      env: ['X=\ud800'],
      workdir: '/w\udfff',
      lineBuffered: false,
    });
    const body = frame.subarray(FRAME_HEADER_BYTES);
    const text = body.subarray(4, 4 + body.readUInt32BE(0)).toString('utf8');
    expect(text).not.toMatch(/\\ud[89a-f]/i);
    expect(JSON.parse(text)).toMatchObject({
      argv: ['echo', 'a\ufffdb', '\ufffd', '\ud83d\ude00'],
      env: ['X=\ufffd'],
      workdir: '/w\ufffd',
    });
  });

  it('a job on a channel already closed (the end not reported yet) fails as a lost container at once, not as a timeout later', async () => {
    const f = fakeContainer();
    const c = new RunnerConnection(f.container, {
      runnerVersion: '9.9.9',
      kill: () => undefined,
      log: quiet,
    });
    f.stdout.write(
      encodeFrame(
        RunnerFrame.hello,
        0,
        json({ protocol: RUNNER_PROTOCOL_VERSION, runner: '9.9.9', python: '3.11.2', oomKills: 0 }),
      ),
    );
    await c.hello;
    f.container.channel!.stdin.end();
    let settled: unknown = 'pending';
    c.run(
      { kind: 'cmd', argv: ['true'], env: [], workdir: '/', lineBuffered: false },
      undefined,
      null,
      { stdout: sinkW(), stderr: sinkW() },
      new AbortController().signal,
    ).then(
      () => (settled = 'resolved'),
      (err: unknown) => (settled = err),
    );
    for (let i = 0; i < 5; i++) await tick();
    expect(settled).toBeInstanceOf(ContainerLostError);
  });

  it("an EXIT the runner sent before the container ended, waiting in a paused channel, is the job's result", async () => {
    const f = fakeContainer();
    const c = new RunnerConnection(f.container, {
      runnerVersion: '9.9.9',
      kill: () => undefined,
      log: quiet,
    });
    f.stdout.write(
      encodeFrame(
        RunnerFrame.hello,
        0,
        json({ protocol: RUNNER_PROTOCOL_VERSION, runner: '9.9.9', python: '3.11.2', oomKills: 0 }),
      ),
    );
    await c.hello;
    // A consumer that is behind: its sink takes one chunk and then waits.
    let release!: () => void;
    const slow = new Writable({
      highWaterMark: 1,
      write(_c, _e, cb) {
        release = cb;
      },
    });
    const running = c.run(
      { kind: 'cmd', argv: ['true'], env: [], workdir: '/', lineBuffered: false },
      undefined,
      null,
      { stdout: slow, stderr: sinkW() },
      new AbortController().signal,
    );
    f.stdout.write(encodeFrame(RunnerFrame.stdout, 1, Buffer.from('a')));
    await tick();
    f.stdout.write(
      encodeFrame(RunnerFrame.exit, 1, json({ status: 3, oomKills: 0, oomKillsAtStart: 0 })),
    );
    f.stdout.end();
    f.exit('the container stopped');
    await expect(running).resolves.toMatchObject({ exitCode: 3 });
    release();
  });
});

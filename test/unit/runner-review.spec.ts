import { PassThrough, Writable } from 'node:stream';
import type {
  ContainerDriver,
  DriverContainer,
} from '../../src/container-pool/engine/container-driver.interface';
import {
  RunnerConnection,
  RunnerStartError,
} from '../../src/container-pool/transport/runner/runner-connection';
import { RunnerTransport } from '../../src/container-pool/transport/runner/runner.transport';

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
});

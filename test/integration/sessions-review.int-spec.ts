import type { INestApplication } from '@nestjs/common';
import type { ContainerPoolService } from '../../src/container-pool/container-pool.service';
import type { Session } from '../../src/container-pool/interfaces/session.interface';
import { expectNoContainersLeft, startPool } from '../support/integration';

/** Regression tests of the hostile review of issue #17 (sessions), on a real engine. */
describe('sessions review (real engine)', () => {
  let app: INestApplication;
  let pool: ContainerPoolService;
  let name: string;
  const open: Session[] = [];

  const openSession = async (opts = {}) => {
    const s = await pool.openSession(opts);
    open.push(s);
    return s;
  };

  beforeAll(async () => {
    ({ app, pool, name } = await startPool({
      size: 1,
      maxContainers: 3,
      transport: 'runner',
      pidsLimit: 64,
      memoryBytes: 256 * 1024 * 1024,
      interruptGraceMs: 700,
      killGraceMs: 1500,
      maxSessions: 3,
    }));
    await pool.initialize();
  });

  afterEach(async () => {
    await Promise.all(open.splice(0).map((s) => s.close()));
  });

  afterAll(async () => {
    await app?.close();
    if (name) await expectNoContainersLeft(name);
  });

  it('a consumer that stops taking output (a stalled stream) does not turn ladder step 1 into a lost session', async () => {
    const s = await openSession();
    await s.runCode('kept = "yes"');
    // onOutput never settles: the call's output pauses the runner channel (as a streaming HTTP client that
    // stops reading does). The code honours KeyboardInterrupt: step 1 must end it with the state kept.
    const r = await s.runCode('while True:\n    print("x" * 1000)', {
      timeoutMs: 1000,
      onOutput: () => new Promise<void>(() => undefined),
    });
    expect(r).toMatchObject({
      timedOut: true,
      interrupted: true,
      stateLost: false,
      error: { name: 'KeyboardInterrupt' },
    });
    const after = await s.runCode('print(kept)');
    expect(after).toMatchObject({ stdout: 'yes\n', stateLost: false });
  });

  it("the runner does not leak a spare's fds when its zygote dies (a cell that kills its interpreter and the zygote, repeated)", async () => {
    // The zygote's EOF dropped the spare it had made (new_spare() set spare = None): 5 fds of PID 1 per round,
    // until the runner could not start an interpreter (EMFILE) and the session was lost, after ~130 rounds.
    const s = await openSession();
    const code =
      'import os\nz = os.getppid()\nme = os.getpid()\nif os.fork() == 0:\n    os.kill(me, 9)\n' +
      '    os.kill(z, 9)\n    os._exit(0)\nimport time\ntime.sleep(5)';
    for (let i = 0; i < 250; i++) {
      const r = await s.runCode(code, { timeoutMs: 3000 });
      expect(r).toMatchObject({ stateLost: true, timedOut: false });
    }
    const after = await s.runCode('print("ok")');
    expect(after).toMatchObject({ stdout: 'ok\n' });
  }, 120_000);

  it("a command when the interpreter's cwd cannot be entered is a 400 naming cmd, never workdir (which run() refuses)", async () => {
    const s = await openSession();
    await s.runCode(
      'import os\nos.makedirs("/tmp/locked")\nos.chdir("/tmp/locked")\nos.chmod("/tmp/locked", 0)',
    );
    await expect(s.run({ cmd: ['ls'] })).rejects.toMatchObject({
      code: 'INVALID_REQUEST',
      field: 'cmd',
    });
    // The session goes on.
    const r = await s.runCode('os.chmod("/tmp/locked", 0o755)\nprint(os.getcwd())');
    expect(r).toMatchObject({ stdout: '/tmp/locked\n', stateLost: false });
  });
});

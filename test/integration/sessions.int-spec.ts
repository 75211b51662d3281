import type { ChildProcess } from 'node:child_process';
import type { INestApplication } from '@nestjs/common';
import type { ContainerPoolService } from '../../src/container-pool/container-pool.service';
import {
  SessionClosedError,
  SessionNotFoundError,
  TooManySessionsError,
} from '../../src/container-pool/errors/session.errors';
import type { Session } from '../../src/container-pool/interfaces/session.interface';
import {
  BUSYBOX_IMAGE,
  CHANNEL_FD,
  docker,
  engineContainers,
  eventually,
  expectNoContainersLeft,
  startPool,
  startPoolHost,
  uniquePoolName,
} from '../support/integration';

/** The processes of the container but PID 1, as `pid cmdline` lines (read from inside, by a cell). */
const LIST_PROCESSES = `
import os
rows = []
for p in sorted(int(x) for x in os.listdir('/proc') if x.isdigit()):
    try:
        cmd = open('/proc/%d/cmdline' % p, 'rb').read().replace(b'\\0', b' ').decode()[:80]
    except OSError:
        continue
    rows.append('%d %s' % (p, cmd))
print('\\n'.join(rows))
`;

/** Code-interpreter sessions on a real engine (runner transport, the Python image). */
describe('sessions on a real engine', () => {
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
      size: 2,
      maxContainers: 6,
      transport: 'runner',
      pidsLimit: 64,
      memoryBytes: 256 * 1024 * 1024,
      interruptGraceMs: 700,
      killGraceMs: 3000,
      maxSessions: 5,
      maxSessionsPerOwner: 4,
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

  it('keeps names, imports, os.environ and the cwd between calls; run() uses the cwd and environment', async () => {
    const s = await openSession();
    expect(s.profile).toBe(pool.profileNames()[0]);
    expect(s.expiresAt.getTime()).toBeGreaterThan(Date.now());
    const a = await s.runCode(
      'import json, os\nx = 41\nos.environ["STEP"] = "one"\nos.makedirs("sub", exist_ok=True)\nos.chdir("sub")\nprint("set")',
    );
    expect(a).toMatchObject({
      exitCode: 0,
      stdout: 'set\n',
      executionCount: 1,
      stateLost: false,
      interrupted: false,
      timedOut: false,
      transport: 'runner',
    });
    expect(a.error).toBeUndefined();
    const b = await s.runCode(
      'x += 1\nprint(x, json.dumps({"a": 1}), os.environ["STEP"], os.getcwd())',
    );
    expect(b).toMatchObject({ exitCode: 0, executionCount: 2, stateLost: false });
    expect(b.stdout).toBe('42 {"a": 1} one /workspace/sub\n');
    const c = await s.run({ cmd: ['sh', '-c', 'echo "$STEP $EXTRA $(pwd)"'], env: { EXTRA: 'e' } });
    expect(c).toMatchObject({ exitCode: 0, stdout: 'one e /workspace/sub\n', stateLost: false });
    // A command of the session does not reset the interpreter.
    const d = await s.runCode('print(x)');
    expect(d).toMatchObject({ stdout: '42\n', executionCount: 3 });
  });

  it('returns an exception as error with the user frames and line, and keeps the state', async () => {
    const s = await openSession();
    await s.runCode('def f(d):\n    return 10 / d\ny = 7');
    const r = await s.runCode('z = 1\nf(0)');
    expect(r.exitCode).toBe(1);
    expect(r.error).toMatchObject({ name: 'ZeroDivisionError', value: 'division by zero' });
    expect(r.error!.traceback).toMatch(/File "<cell-2>", line 2, in <module>/);
    expect(r.error!.traceback).toMatch(/File "<cell-1>", line 2, in f\n\s+return 10 \/ d/);
    expect(r.error!.traceback).not.toMatch(/runner|<string>/);
    expect(r.stderr).toBe('');
    const after = await s.runCode('print(y, z)');
    expect(after).toMatchObject({ stdout: '7 1\n', stateLost: false });
    const exit = await s.runCode('import sys\nsys.exit(4)');
    expect(exit).toMatchObject({ exitCode: 4, error: { name: 'SystemExit', value: '4' } });
    expect((await s.runCode('print(y)')).stdout).toBe('7\n');
    const syntax = await s.runCode('def (');
    expect(syntax.error?.name).toBe('SyntaxError');
    expect((await s.runCode('print(y)')).stateLost).toBe(false);
  });

  it('two sessions never see each other: names, files, processes', async () => {
    const [a, b] = await Promise.all([openSession(), openSession()]);
    expect(a.info().containerId).not.toBe(b.info().containerId);
    await a.runCode(
      'secret = "a"\nopen("/workspace/mine.txt", "w").write("a")\nimport subprocess\np = subprocess.Popen(["sleep", "300"])',
    );
    const r = await b.runCode(
      'import os\nprint("secret" in globals(), os.path.exists("/workspace/mine.txt"))\n' +
        LIST_PROCESSES,
    );
    expect(r.stdout.split('\n')[0]).toBe('False False');
    expect(r.stdout).not.toMatch(/sleep 300/);
  });

  it('files: written through session.files, read by the code, and back', async () => {
    const s = await openSession();
    await s.files.write('data/in.csv', 'a,b\n1,2\n');
    const r = await s.runCode(
      'rows = open("data/in.csv").read().splitlines()\nopen("out.txt", "w").write(str(len(rows)))',
    );
    expect(r.exitCode).toBe(0);
    expect((await s.files.read('out.txt')).toString()).toBe('2');
  });

  it('streams the output of a call as it comes, line by line', async () => {
    const s = await openSession();
    const seen: { at: number; text: string }[] = [];
    const started = Date.now();
    const r = await s.runCode(
      'import time\nfor i in range(3):\n    print("tick", i)\n    time.sleep(0.3)',
      {
        onOutput: (e) => void seen.push({ at: Date.now() - started, text: e.data.toString() }),
      },
    );
    expect(r.stdout).toBe('tick 0\ntick 1\ntick 2\n');
    expect(seen.map((e) => e.text).join('')).toBe(r.stdout);
    expect(seen.length).toBeGreaterThanOrEqual(3);
    expect(seen[seen.length - 1].at - seen[0].at).toBeGreaterThan(400);
  });

  it('a call ends when its code returns: output of a background thread later is dropped', async () => {
    const s = await openSession();
    const r = await s.runCode(
      'import threading, time\ndef late():\n    time.sleep(0.5)\n    print("late", flush=True)\nthreading.Thread(target=late, daemon=True).start()\nprint("now")',
    );
    expect(r.stdout).toBe('now\n');
    await new Promise((res) => setTimeout(res, 800));
    const next = await s.runCode('print("next")');
    expect(next.stdout).toBe('next\n');
  });

  it('ladder step 1: a loop that honours KeyboardInterrupt is interrupted and the state survives', async () => {
    const s = await openSession();
    await s.runCode('kept = "yes"');
    const r = await s.runCode('i = 0\nwhile True:\n    i += 1', { timeoutMs: 1000 });
    expect(r).toMatchObject({
      timedOut: true,
      interrupted: true,
      stateLost: false,
      exitCode: null,
      error: { name: 'KeyboardInterrupt' },
    });
    expect(r.durationMs).toBeLessThan(1000 + 700);
    const after = await s.runCode('print(kept, i > 0)');
    expect(after).toMatchObject({ stdout: 'yes True\n', stateLost: false });
    // A regex that backtracks, and time.sleep, are interrupted as well.
    const regex = await s.runCode('import re\nre.match(r"(a+)+$", "a" * 64 + "b")', {
      timeoutMs: 500,
    });
    expect(regex).toMatchObject({
      interrupted: true,
      stateLost: false,
      error: { name: 'KeyboardInterrupt' },
    });
    const sleeping = await s.runCode('import time\ntime.sleep(100)', { timeoutMs: 500 });
    expect(sleeping).toMatchObject({
      interrupted: true,
      stateLost: false,
      error: { name: 'KeyboardInterrupt' },
    });
    expect(pool.stats().sessions).toMatchObject({ interrupts: expect.any(Number) });
  });

  it.each([
    [
      'a loop that ignores KeyboardInterrupt',
      'import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass',
    ],
    [
      'a loop that catches it',
      'while True:\n    try:\n        while True:\n            pass\n    except KeyboardInterrupt:\n        pass',
    ],
    [
      'a long C call that never checks for signals',
      'import hashlib\nhashlib.pbkdf2_hmac("sha256", b"x", b"y", 10 ** 9)',
    ],
    [
      'setsid and a double fork that outlive their parent',
      'import os, subprocess, time\nsubprocess.Popen(["sleep", "1001"], start_new_session=True)\nif os.fork() == 0:\n    if os.fork() == 0:\n        os.setsid()\n        os.execvp("sleep", ["sleep", "1002"])\n    os._exit(0)\nimport signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\ntime.sleep(100)',
    ],
    [
      'a fork bomb',
      'import os, signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass',
    ],
  ])(
    'ladder step 2: %s: every process is killed, a fresh interpreter (stateLost)',
    async (_what, code) => {
      const s = await openSession();
      await s.runCode('kept = "yes"');
      const r = await s.runCode(code, { timeoutMs: 800 });
      expect(r).toMatchObject({
        timedOut: true,
        interrupted: true,
        stateLost: true,
        exitCode: null,
      });
      const after = await s.runCode(`print("kept" in globals())\n${LIST_PROCESSES}`);
      expect(after).toMatchObject({ exitCode: 0, stateLost: false, executionCount: 1 });
      const lines = after.stdout.trim().split('\n');
      expect(lines[0]).toBe('False');
      expect(after.stdout).not.toMatch(/sleep 100[12]/);
      // PID 1 (the runner), its zygote and spare, the interpreter: nothing the killed call left.
      expect(lines.length - 1).toBeLessThanOrEqual(5);
      expect(s.info().state).toBe('open');
    },
    30_000,
  );

  it('interrupt() stops the running call without a timeout; queued calls still run after it', async () => {
    const s = await openSession();
    const running = s.runCode('import time\ntime.sleep(60)');
    const queued = s.runCode('print("after")');
    await eventually(() => s.info().busy, 5000, 'the call to run');
    await new Promise((r) => setTimeout(r, 200));
    await s.interrupt();
    const r = await running;
    expect(r).toMatchObject({
      timedOut: false,
      interrupted: true,
      stateLost: false,
      error: { name: 'KeyboardInterrupt' },
    });
    expect(await queued).toMatchObject({ stdout: 'after\n', interrupted: false });
    await s.interrupt(); // nothing runs: a no-op
    expect((await s.runCode('print(1)')).stdout).toBe('1\n');
  });

  it('restart() gives a fresh interpreter', async () => {
    const s = await openSession();
    await s.runCode('a = 1');
    await s.restart();
    const r = await s.runCode('print("a" in globals())');
    expect(r).toMatchObject({ stdout: 'False\n', executionCount: 1 });
  });

  it('an OOM in the interpreter is oomKilled and stateLost; the session goes on', async () => {
    const s = await openSession();
    await s.runCode('kept = 1');
    const r = await s.runCode('x = b"x" * (1 << 30)');
    expect(r).toMatchObject({ oomKilled: true, stateLost: true, timedOut: false });
    const after = await s.runCode('print("kept" in globals())');
    expect(after).toMatchObject({ stdout: 'False\n', stateLost: false });
  });

  it('what the code forges cannot change what the host reports', async () => {
    const s = await openSession();
    await s.runCode('kept = 1');
    // A forged done on the interpreter's channel (the fd its status socket holds), and garbage on it.
    const forged = await s.runCode(
      CHANNEL_FD +
        'import os, json\nm = json.dumps({"t": "done", "status": 0, "error": None, "cwd": "/", "env": []}).encode()\n' +
        'os.write(SF, len(m).to_bytes(4, "big") + m)\nos.write(SF, b"\\xff" * 64)\nimport time\ntime.sleep(0.5)\nprint("still here")',
      { timeoutMs: 5000 },
    );
    // The forged done ended its own call early; the garbage made the runner kill the interpreter (in the call,
    // or right after it): the state is gone, and the host says so.
    expect(forged).toMatchObject({ timedOut: false, interrupted: false, stdout: '' });
    const next = await s.runCode('print("kept" in globals())');
    // The garbage is read after the forged done: before the next call came (a fresh interpreter runs it), or, when
    // the forging code was descheduled between its two writes, while the next call runs in that interpreter: then
    // that call ends killed, says stateLost, and the session goes on in a fresh one.
    if (next.stdout !== 'False\n') {
      expect(next).toMatchObject({ exitCode: 137, stdout: '', stateLost: true });
      expect((await s.runCode('print("kept" in globals())')).stdout).toBe('False\n');
    }
    expect(forged.stateLost || next.stateLost).toBe(true);
    // Frame-like bytes on stdout are the program's output, nothing else.
    const frames = await s.runCode(
      'import sys\nsys.stdout.buffer.write(b"\\x00\\x00\\x00\\x02\\x84\\x00\\x00\\x00\\x01{}")',
    );
    expect(frames.stdoutBytes.subarray(0, 5)).toEqual(Buffer.from([0, 0, 0, 2, 0x84]));
    expect(frames).toMatchObject({ exitCode: 0, timedOut: false, oomKilled: false });
    // PID 1 cannot be signalled, stopped or traced from inside.
    const pid1 = await s.runCode(
      'import os, signal\nfor sig in (signal.SIGKILL, signal.SIGSTOP, signal.SIGTERM):\n    os.kill(1, sig)\n' +
        'import ctypes\nprint(ctypes.CDLL(None).ptrace(0x4206, 1, 0, 0))\nprint(os.access("/proc/1/fd/0", os.R_OK))',
    );
    expect(pid1.stdout).toBe('-1\nFalse\n');
    const after = await s.runCode('print("ok")');
    expect(after).toMatchObject({ exitCode: 0, stdout: 'ok\n', timedOut: false });
    expect(s.info().state).toBe('open');
    expect(s.info().containerId).toBe(forged.containerId);
  });

  it('limits: maxSessionsPerOwner and maxSessions, and an unknown id', async () => {
    const mine = await Promise.all([1, 2, 3, 4].map(() => openSession({ owner: 'alice' })));
    await expect(pool.openSession({ owner: 'alice' })).rejects.toMatchObject({ scope: 'owner' });
    await openSession({ owner: 'bob' });
    await expect(pool.openSession({ owner: 'carol' })).rejects.toBeInstanceOf(TooManySessionsError);
    expect(
      pool
        .sessions({ owner: 'alice' })
        .map((i) => i.id)
        .sort(),
    ).toEqual(mine.map((s) => s.id).sort());
    expect(() => pool.getSession(mine[0].id, { owner: 'bob' })).toThrow(SessionNotFoundError);
    expect(pool.getSession(mine[0].id, { owner: 'alice' })).toBe(mine[0]);
    await mine[0].close();
    expect(() => pool.getSession(mine[0].id, { owner: 'alice' })).toThrow(SessionClosedError);
    expect(() => pool.getSession('nope')).toThrow(SessionNotFoundError);
    await expect(pool.openSession({ maxLifetimeMs: 10 ** 9 })).rejects.toMatchObject({
      field: 'maxLifetimeMs',
    });
  });

  it('closes at its idle timeout and at its max lifetime, and removes its container', async () => {
    const idle = await pool.openSession({ idleTimeoutMs: 1500 });
    const short = await pool.openSession({ maxLifetimeMs: 2500, idleTimeoutMs: 60_000 });
    const idleId = idle.info().containerId;
    const shortId = short.info().containerId;
    await idle.runCode('x = 1');
    const long = short.runCode('import time\ntime.sleep(30)');
    await eventually(() => idle.info().state === 'closed', 5000, 'the idle close');
    expect(idle.info().closedReason).toBe('idle');
    await expect(long).rejects.toBeInstanceOf(SessionClosedError);
    expect(short.info().closedReason).toBe('lifetime');
    await expect(idle.runCode('x')).rejects.toBeInstanceOf(SessionClosedError);
    await eventually(
      async () => !(await engineContainers(name)).some((c) => c.Id === idleId || c.Id === shortId),
      10_000,
      'the session containers to go',
    );
  });

  it('a session container is never handed out again; the pool refills', async () => {
    const s = await openSession();
    const id = s.info().containerId;
    await s.close();
    const r = await pool.run({ code: 'print(1)' });
    expect(r.containerId).not.toBe(id);
    expect(pool.containers().some((c) => c.id === id)).toBe(false);
  });
});

describe('sessions: profiles and owners', () => {
  const hosts: ChildProcess[] = [];

  afterAll(() => {
    for (const h of hosts) if (h.exitCode === null) h.kill('SIGKILL');
  });

  it('a profile without the runner transport cannot open one', async () => {
    const { app, pool, name } = await startPool({
      image: BUSYBOX_IMAGE,
      transport: 'exec',
      size: 0,
    });
    try {
      await expect(pool.openSession()).rejects.toMatchObject({
        code: 'INVALID_REQUEST',
        field: 'profile',
      });
    } finally {
      await app.close();
      await expectNoContainersLeft(name);
    }
  });

  it("the owner's crash removes the session's container like any other (with what its code left)", async () => {
    const name = uniquePoolName('session-crash');
    const { child, stdout } = await startPoolHost(
      { POOL_NAME: name, POOL_SIZE: '1', POOL_TRANSPORT: 'runner' },
      hosts,
      'session-host.ts',
    );
    const containerId = /SESSION (\S+)/.exec(stdout)![1];
    expect((await engineContainers(name)).some((c) => c.Id === containerId)).toBe(true);
    child.kill('SIGKILL');
    await eventually(
      async () => !(await engineContainers(name)).some((c) => c.State === 'running'),
      15_000,
      'the running containers to go',
    );
    // Exited, then removed by the engine (AutoRemove).
    await eventually(
      () =>
        docker
          .getContainer(containerId)
          .inspect()
          .then(
            () => false,
            (err: { statusCode?: number }) => err.statusCode === 404,
          ),
      10_000,
      'the session container to be removed',
    );
    // A refill create the kill interrupted may leave a container created and never started (no process: the
    // documented leftover a live instance sweeps within 60 s); this test removes it itself.
    for (const c of await engineContainers(name)) {
      expect(c.State).toBe('created');
      await docker.getContainer(c.Id).remove({ force: true });
    }
  });
});

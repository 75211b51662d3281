import type { INestApplication } from '@nestjs/common';
import type { ContainerPoolService } from '../../../src/container-pool/container-pool.service';
import type { Container } from '../../../src/container-pool/interfaces/container.interface';
import type { ExecResult } from '../../../src/container-pool/interfaces/exec-result.interface';
import { ContainerLostError } from '../../../src/container-pool/errors/container-pool.errors';
import { onEngine } from '../../support/faults';
import { expectPoolHealthy, HOSTILE_LIMITS, report } from '../../support/hostile';
import { eventually, expectNoContainersLeft, startPool } from '../../support/integration';

/**
 * Hostile workloads against the runner itself (transport 'runner', the Python image): the runner is PID 1 of the
 * same uid as the job, so what the kernel does not refuse by uid it must refuse by the runner's design (non-
 * dumpable, PID 1 of the namespace, every import done before any job, strict framing on the host side).
 *
 * Every case checks, besides what the attack got: the attacking run's verdict fields (exitCode, timedOut,
 * oomKilled, truncated) are the host's, and a run afterwards in another container gives exactly the expected
 * result. Cases that attack the runner of a container then use that same container again: a leased one
 * (acquire, execute twice), or `reuse`, a pool of one container that is not single-use, for code jobs (which run
 * in the runner's pre-forked spare: that is the path a broken runner would break first).
 */
describe('hostile workloads: against the runner (transport runner)', () => {
  let app: INestApplication;
  let pool: ContainerPoolService;
  let name: string;
  let reuse: { app: INestApplication; pool: ContainerPoolService; name: string } | undefined;

  beforeAll(async () => {
    ({ app, pool, name } = await startPool({
      ...HOSTILE_LIMITS,
      size: 2,
      maxContainers: 4,
      transport: 'runner',
    }));
    reuse = await startPool({
      ...HOSTILE_LIMITS,
      size: 1,
      maxContainers: 1,
      singleUse: false,
      transport: 'runner',
    });
    await Promise.all([pool.initialize(), reuse.pool.initialize()]);
    expect(pool.stats().transport).toBe('runner');
    expect(reuse.pool.stats().transport).toBe('runner');
  });

  afterEach(async () => {
    await expectPoolHealthy(pool, name, 'runner');
  });

  afterAll(async () => {
    await reuse?.app.close();
    await app?.close();
    if (reuse) await expectNoContainersLeft(reuse.name);
    await expectNoContainersLeft(name);
  });

  /** The verdict fields of a run, as the host decided them. */
  const verdict = (r: ExecResult) => ({
    exitCode: r.exitCode,
    timedOut: r.timedOut,
    oomKilled: r.oomKilled,
    truncated: r.truncated,
    transport: r.transport,
  });
  const clean = (exitCode: number) => ({
    exitCode,
    timedOut: false,
    oomKilled: false,
    truncated: false,
    transport: 'runner',
  });

  /** A run after the attack, in another container than `attacked`: exactly the expected result. */
  async function expectNextRunExact(attacked: string): Promise<void> {
    const r = await pool.run({ code: 'import sys\nprint(6 * 7)\nsys.stderr.write("e\\n")' });
    expect(r.containerId).not.toBe(attacked);
    expect({ ...verdict(r), stdout: r.stdout, stderr: r.stderr }).toEqual({
      ...clean(0),
      stdout: '42\n',
      stderr: 'e\n',
    });
  }

  /** Code jobs in the one container of `reuse`, checked to be that container. */
  async function inReused(code: string, timeoutMs?: number): Promise<ExecResult> {
    return reuse!.pool.run({ code, timeoutMs });
  }

  /** The runner of a leased container still runs jobs: a cmd job and a python3 -c. */
  async function expectRunnerServes(c: Container): Promise<void> {
    const cmd = await c.execute(['sh', '-c', 'echo cmd ok; echo err >&2; exit 4']);
    expect({ ...verdict(cmd), stdout: cmd.stdout, stderr: cmd.stderr }).toEqual({
      ...clean(4),
      stdout: 'cmd ok\n',
      stderr: 'err\n',
    });
    const py = await c.execute(['python3', '-c', 'print(sum(range(10)))']);
    expect({ ...verdict(py), stdout: py.stdout }).toEqual({ ...clean(0), stdout: '45\n' });
  }

  it("/proc/1/fd/0 and /proc/1/fd/1 (the host's control channel) cannot be read or written: EACCES", async () => {
    const r = await pool.run({
      code: [
        'import errno, json, os',
        'out = {}',
        'for fd in ("0", "1"):',
        '    for mode, flag in (("r", os.O_RDONLY), ("w", os.O_WRONLY), ("rw", os.O_RDWR)):',
        '        try:',
        '            os.close(os.open("/proc/1/fd/" + fd, flag | os.O_NONBLOCK))',
        '            out[fd + mode] = "ok"',
        '        except OSError as e:',
        '            out[fd + mode] = errno.errorcode[e.errno]',
        'try:',
        '    os.listdir("/proc/1/fd")',
        '    out["list"] = "ok"',
        'except OSError as e:',
        '    out["list"] = errno.errorcode[e.errno]',
        'print(json.dumps(out))',
      ].join('\n'),
    });
    expect(verdict(r)).toEqual(clean(0));
    expect(report(r)).toEqual({
      '0r': 'EACCES',
      '0w': 'EACCES',
      '0rw': 'EACCES',
      '1r': 'EACCES',
      '1w': 'EACCES',
      '1rw': 'EACCES',
      list: 'EACCES',
    });
    // The shell's way: the same refusal.
    const sh = await pool.run({
      cmd: ['sh', '-c', 'cat /proc/1/fd/0; echo "r=$?"; echo x > /proc/1/fd/1; echo "w=$?"'],
    });
    expect(sh.stdout).toBe('r=1\nw=2\n');
    expect(sh.stderr).toMatch(/\/proc\/1\/fd\/0: Permission denied/);
    expect(sh.stderr).toMatch(/\/proc\/1\/fd\/1: Permission denied/);
    expect(verdict(sh)).toEqual(clean(0));
    await expectNextRunExact(r.containerId);
  });

  it('SIGSTOP, SIGKILL and PTRACE_SEIZE of PID 1: no effect / EPERM; the same container runs the next job', async () => {
    const c = await pool.acquire();
    try {
      const r = await c.execute([
        'python3',
        '-c',
        [
          'import ctypes, errno, json, os, signal, time',
          'libc = ctypes.CDLL(None, use_errno=True)',
          'libc.ptrace.restype = ctypes.c_long',
          'libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]',
          'def state(p):',
          '    return open("/proc/%d/stat" % p).read().rsplit(")", 1)[1].split()[0]',
          'def tracer(p):',
          '    return [l.split()[1] for l in open("/proc/%d/status" % p) if l.startswith("TracerPid:")][0]',
          'def tryit(fn):',
          '    try:',
          '        fn()',
          '        return "ok"',
          '    except OSError as e:',
          '        return errno.errorcode[e.errno]',
          'def seize(p):',
          '    ctypes.set_errno(0)',
          '    return "ok" if libc.ptrace(0x4206, p, None, None) == 0 else errno.errorcode[ctypes.get_errno()]',
          'out = {"stop": tryit(lambda: os.kill(1, signal.SIGSTOP))}',
          'time.sleep(0.2)',
          'out["afterStop"] = state(1)',
          'out["kill"] = tryit(lambda: os.kill(1, signal.SIGKILL))',
          'time.sleep(0.2)',
          'out["afterKill"] = state(1)',
          'out["seize"] = seize(1)',
          'out["tracer"] = tracer(1)',
          // A child of its own: the same seize works (the attempt is real).
          'pid = os.fork()',
          'if pid == 0:',
          '    time.sleep(30)',
          '    os._exit(0)',
          'out["control"] = seize(pid)',
          'os.kill(pid, signal.SIGKILL)',
          'os.waitpid(pid, 0)',
          'print(json.dumps(out))',
        ].join('\n'),
      ]);
      expect(verdict(r)).toEqual(clean(0));
      // kill() of PID 1 by the same uid is allowed, and the kernel drops SIGSTOP/SIGKILL to the namespace's
      // init from inside it: 'ok' and no effect. ptrace: refused, the runner is non-dumpable.
      expect(report(r)).toEqual({
        stop: 'ok',
        afterStop: expect.stringMatching(/^[RS]$/),
        kill: 'ok',
        afterKill: expect.stringMatching(/^[RS]$/),
        seize: 'EPERM',
        tracer: '0',
        control: 'ok',
      });
      // The shell's kill -STOP 1 / kill -KILL 1, then the same container again.
      const sh = await c.execute([
        'sh',
        '-c',
        'kill -STOP 1; echo "stop=$?"; kill -KILL 1; echo "kill=$?"; sleep 0.2; cut -d" " -f3 /proc/1/stat',
      ]);
      expect({ ...verdict(sh), stdout: sh.stdout }).toEqual({
        ...clean(0),
        stdout: expect.stringMatching(/^stop=0\nkill=0\n[RS]\n$/),
      });
      await expectRunnerServes(c);
    } finally {
      pool.release(c);
    }
    await expectNextRunExact(c.id);
  });

  it("every signal to PID 1, and SIGSTOP of the runner's helpers (zygote, spare): code jobs in the same container still work", async () => {
    const attack = await reuse!.pool.run({
      cmd: [
        'sh',
        '-c',
        [
          // The helpers are of the same uid: stopped for real (the runner kills and replaces them, WUNTRACED).
          'for p in $(pgrep -x python3); do [ "$p" != 1 ] && kill -STOP "$p"; done',
          // Signals a Python PID 1 has no handler for are dropped by the kernel; SIGCHLD only wakes a reap pass.
          'for s in $(seq 1 31); do kill -s "$s" 1 2>/dev/null; done',
          'sleep 0.3',
          'cut -d" " -f3 /proc/1/stat',
        ].join('\n'),
      ],
    });
    expect({ ...verdict(attack), stdout: attack.stdout }).toEqual({
      ...clean(0),
      stdout: expect.stringMatching(/^[RS]\n$/),
    });
    for (let i = 0; i < 3; i++) {
      const r = await inReused(`import sys\nprint("job", ${i})\nsys.exit(${i})`);
      expect(r.containerId).toBe(attack.containerId);
      expect({ ...verdict(r), stdout: r.stdout }).toEqual({ ...clean(i), stdout: `job ${i}\n` });
    }
    await expectNextRunExact(attack.containerId);
  });

  it('modules planted in the work dir and /tmp under the names the runner imports: later jobs unaffected', async () => {
    const bomb = 'import os\nos._exit(99)\n';
    const plant = await inReused(
      [
        'import json, os',
        `bomb = ${JSON.stringify(bomb)}`,
        'dirs = [os.getcwd(), "/tmp", os.path.expanduser("~")]',
        'for d in dirs:',
        '    for m in ("json", "selectors", "struct", "signal", "errno", "fcntl", "io", "select", "socket", "time", "array", "warnings", "atexit", "builtins", "codecs", "encodings"):',
        '        with open(os.path.join(d, m + ".py"), "w") as f:',
        '            f.write(bomb)',
        'print(json.dumps(sorted(set(dirs))))',
      ].join('\n'),
    );
    expect(verdict(plant)).toEqual(clean(0));
    expect(report<string[]>(plant)).toEqual(expect.arrayContaining(['/tmp']));
    // Code jobs run in the runner's spare (forked before the plant, and new spares after it): every module the
    // runner needs is imported before any job, and the runner runs isolated (-I: no cwd, no PYTHONPATH).
    for (let i = 0; i < 3; i++) {
      const r = await inReused(
        [
          'import json, selectors, struct, sys',
          'print(json.dumps([struct.pack(">I", 1).hex(), selectors.DefaultSelector.__name__]))',
          'sys.stderr.write("fine\\n")',
          'raise SystemExit(5)',
        ].join('\n'),
      );
      expect(r.containerId).toBe(plant.containerId);
      expect({ ...verdict(r), stdout: r.stdout, stderr: r.stderr }).toEqual({
        ...clean(5),
        stdout: '["00000001", "EpollSelector"]\n',
        stderr: 'fine\n',
      });
    }
    const cmd = await reuse!.pool.run({
      cmd: ['sh', '-c', 'test -f /tmp/json.py && test -f ./selectors.py && echo planted'],
    });
    expect(cmd.containerId).toBe(plant.containerId);
    expect({ ...verdict(cmd), stdout: cmd.stdout }).toEqual({ ...clean(0), stdout: 'planted\n' });
    // The planted modules go with their container: the next case of `reuse` gets a new one.
    const planted = await reuse!.pool.acquire();
    expect(planted.id).toBe(plant.containerId);
    await planted.destroy();
    await expectNextRunExact(plant.containerId);
  });

  it('kill -9 -1 from a job: the runner survives, the next jobs in the same container work', async () => {
    const c = await pool.acquire();
    try {
      const r = await c.execute(['sh', '-c', 'kill -9 -1; echo "after=$?"']);
      // kill(-1) spares the caller and PID 1; the runner's helpers (zygote, spare) die and are replaced.
      expect({ ...verdict(r), stdout: r.stdout }).toEqual({ ...clean(0), stdout: 'after=0\n' });
      await expectRunnerServes(c);
      // Again, from Python, while a job of its own runs beside it.
      const beside = c.execute(['sh', '-c', 'sleep 1; echo survived']);
      const py = await c.execute([
        'python3',
        '-c',
        'import os, signal\nos.kill(-1, signal.SIGKILL)\nprint("done")',
      ]);
      expect({ ...verdict(py), stdout: py.stdout }).toEqual({ ...clean(0), stdout: 'done\n' });
      // The job beside it was of the same uid: killed (signal 9 as docker exec reports it), not lost.
      const b = await beside;
      expect({ ...verdict(b), stdout: b.stdout }).toEqual({ ...clean(137), stdout: '' });
      await expectRunnerServes(c);
    } finally {
      pool.release(c);
    }
    // Code jobs (the spare path) in a reused container after kill -9 -1 from a code job.
    const k = await inReused('import os, signal\nos.kill(-1, signal.SIGKILL)\nprint("k")');
    expect({ ...verdict(k), stdout: k.stdout }).toEqual({ ...clean(0), stdout: 'k\n' });
    for (let i = 0; i < 2; i++) {
      const r = await inReused('print("after kill", flush=True)');
      expect(r.containerId).toBe(k.containerId);
      expect({ ...verdict(r), stdout: r.stdout }).toEqual({ ...clean(0), stdout: 'after kill\n' });
    }
    await expectNextRunExact(c.id);
  });

  it("a process left by an earlier run cannot write a later run's exit status through /proc/<pid>/fd", async () => {
    // Run 1 leaves an attacker: for every new process it tries each descriptor above 2 under /proc/<pid>/fd
    // (same uid, the job is dumpable), writes a forged "exit 0" status where it can, then marks the pid done.
    const attacker = [
      'import os, time',
      'open("/tmp/attacker.pid", "w").write(str(os.getpid()))',
      'seen = set()',
      'for _ in range(2000):',
      '    for p in os.listdir("/proc"):',
      '        if not p.isdigit() or int(p) == os.getpid() or p in seen:',
      '            continue',
      '        try:',
      '            fds = os.listdir("/proc/%s/fd" % p)',
      '        except OSError:',
      '            continue',
      '        seen.add(p)',
      '        hit = []',
      '        for n in fds:',
      '            if int(n) < 3:',
      '                continue',
      '            try:',
      '                fd = os.open("/proc/%s/fd/%s" % (p, n), os.O_WRONLY | os.O_NONBLOCK)',
      '            except OSError:',
      '                continue',
      '            try:',
      '                os.write(fd, b"exit\\x000")',
      '                hit.append(n)',
      '            except OSError:',
      '                pass',
      '            os.close(fd)',
      '        with open("/tmp/tried-%s" % p, "w") as f:',
      '            f.write(" ".join(hit))',
      '    time.sleep(0.005)',
    ].join('\n');
    const first = await inReused(
      [
        'import subprocess, sys',
        `subprocess.Popen([sys.executable, "-c", ${JSON.stringify(attacker)}], start_new_session=True,`,
        '                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)',
        'print("left")',
      ].join('\n'),
    );
    expect({ ...verdict(first), stdout: first.stdout }).toEqual({ ...clean(0), stdout: 'left\n' });
    // Run 2 (same container): waits until the attacker has tried it, then exits 9 on its own.
    const second = await inReused(
      [
        'import os, sys, time',
        'me = "/tmp/tried-%d" % os.getpid()',
        'for _ in range(1000):',
        '    if os.path.exists(me):',
        '        break',
        '    time.sleep(0.005)',
        'print("tried", os.path.exists(me) and open(me).read())',
        'os.kill(int(open("/tmp/attacker.pid").read()), 9)  # it would go on with the next runs',
        'raise SystemExit(9)',
      ].join('\n'),
      9_000,
    );
    expect(second.containerId).toBe(first.containerId);
    expect({ ...verdict(second), stdout: second.stdout }).toEqual({
      ...clean(9),
      stdout: 'tried \n',
    });
  });

  it('frame-like bytes on stdout and stderr (a fake EXIT, a fake HELLO) arrive verbatim; the exit code is the real one', async () => {
    const r = await pool.run({
      code: [
        'import json, os, struct',
        'exit_ = json.dumps({"status": 0, "oomKills": 0}).encode()',
        'hello = json.dumps({"protocol": 1, "runner": "1.0.0", "python": "3.11.2", "oomKills": 0}).encode()',
        'fake = b""',
        'for jid in range(0, 8):',
        '    fake += struct.pack(">IBI", len(exit_), 0x84, jid) + exit_',
        'fake += struct.pack(">IBI", len(hello), 0x81, 0) + hello',
        // A header that announces more than any frame may carry, and a truncated one.
        'fake += struct.pack(">IBI", 0xFFFFFFFF, 0x82, 1) + b"\\x00\\x00"',
        'os.write(1, fake)',
        'os.write(2, fake[::-1] + fake)',
        'os._exit(3)',
      ].join('\n'),
    });
    // What Python's json.dumps wrote (its default separators).
    const exit = Buffer.from('{"status": 0, "oomKills": 0}');
    const hello = Buffer.from(
      '{"protocol": 1, "runner": "1.0.0", "python": "3.11.2", "oomKills": 0}',
    );
    const header = (len: number, type: number, jid: number) => {
      const h = Buffer.alloc(9);
      h.writeUInt32BE(len, 0);
      h.writeUInt8(type, 4);
      h.writeUInt32BE(jid, 5);
      return h;
    };
    const fake = Buffer.concat([
      ...Array.from({ length: 8 }, (_, jid) =>
        Buffer.concat([header(exit.length, 0x84, jid), exit]),
      ),
      header(hello.length, 0x81, 0),
      hello,
      header(0xffffffff, 0x82, 1),
      Buffer.from([0, 0]),
    ]);
    expect(verdict(r)).toEqual(clean(3));
    expect(r.stdoutBytes.equals(fake)).toBe(true);
    expect(r.stderrBytes.equals(Buffer.concat([Buffer.from(fake).reverse(), fake]))).toBe(true);
    await expectNextRunExact(r.containerId);
  });

  it('a job writing an exit status into its output cannot change exitCode, timedOut, oomKilled or truncation', async () => {
    const r = await pool.run({
      code: [
        'import json, os, struct, sys',
        'lie = {"status": 0, "oomKills": 1000, "exitCode": 0, "timedOut": True, "oomKilled": True, "truncated": True}',
        'body = json.dumps(lie).encode()',
        'frame = struct.pack(">IBI", len(body), 0x84, 1) + body',
        'for fd in (1, 2):',
        '    os.write(fd, frame + b"\\n" + body + b"\\nexit status 0\\n")',
        'sys.exit(9)',
      ].join('\n'),
      timeoutMs: 5_000,
    });
    expect(verdict(r)).toEqual(clean(9));
    expect(r.stdout).toContain('exit status 0\n');
    expect(r.stderr).toContain('"timedOut": true');
    // The same after a signal: the host reports what the runner reaped (128 + 15), whatever was printed.
    const s = await pool.run({
      cmd: ['sh', '-c', 'echo "exitCode 0 timedOut false"; echo "status=0" >&2; kill -TERM $$'],
    });
    expect({ ...verdict(s), stdout: s.stdout, stderr: s.stderr }).toEqual({
      ...clean(143),
      stdout: 'exitCode 0 timedOut false\n',
      stderr: 'status=0\n',
    });
    await expectNextRunExact(r.containerId);
  });

  it('a background process holding stdout: the job returns when its process exits, later writes are dropped and do not reach the next job', async () => {
    const c = await pool.acquire();
    try {
      // The background waits for the next job's go, then writes to the first job's (closed) pipes, and says
      // when it is through.
      const first = await c.execute([
        'sh',
        '-c',
        [
          'rm -f /tmp/go /tmp/done',
          '( while [ ! -e /tmp/go ]; do sleep 0.05; done; (echo late-stdout); (echo late-stderr >&2); touch /tmp/done ) &',
          'echo now',
        ].join('\n'),
      ]);
      expect({ ...verdict(first), stdout: first.stdout, stderr: first.stderr }).toEqual({
        ...clean(0),
        stdout: 'now\n',
        stderr: '',
      });
      const second = await c.execute(
        [
          'sh',
          '-c',
          'touch /tmp/go; while [ ! -e /tmp/done ]; do sleep 0.05; done; echo second; echo second-err >&2',
        ],
        { timeoutMs: 8_000 },
      );
      expect({ ...verdict(second), stdout: second.stdout, stderr: second.stderr }).toEqual({
        ...clean(0),
        stdout: 'second\n',
        stderr: 'second-err\n',
      });
      await expectRunnerServes(c);
    } finally {
      pool.release(c);
    }
    await expectNextRunExact(c.id);
  });

  it('prlimit and setpriority of PID 1 (the kernel allows them by uid): a starved runner loses its container with a typed error, never a wrong result', async () => {
    const c = await pool.acquire();
    try {
      // Unlike /proc/1/* and ptrace (non-dumpable), prlimit and setpriority are checked by uid alone: a job of
      // the runner's uid may lower the runner's limits and raise its niceness (exec: the lifeline is root, EPERM).
      const r = await c.execute([
        'python3',
        '-c',
        [
          'import json, os, resource',
          'os.setpriority(os.PRIO_PROCESS, 1, 19)',
          'old = resource.prlimit(1, resource.RLIMIT_NOFILE, (8, 8))',
          'print(json.dumps({"nice": os.getpriority(os.PRIO_PROCESS, 1), "old": list(old), "now": list(resource.prlimit(1, resource.RLIMIT_NOFILE))}))',
        ].join('\n'),
      ]);
      expect(verdict(r)).toEqual(clean(0));
      expect(report(r)).toEqual({ nice: 19, old: [64, 64], now: [8, 8] });
      // The runner cannot open a job's pipes any more: the host is told, and the container is lost to the caller,
      // with the runner's reason, as for any container that cannot run programs (never an empty success).
      const next = await c.execute(['echo', 'never']).then(
        () => null,
        (e: unknown) => e,
      );
      expect(next).toBeInstanceOf(ContainerLostError);
      expect((next as Error).message).toContain(c.name);
      expect((next as Error).message).toMatch(/Too many open files/);
      await eventually(
        async () => !(await onEngine(c.id)),
        10_000,
        'the starved container removed',
      );
    } finally {
      pool.release(c);
    }
    await expectNextRunExact(c.id);
  });

  it('OOM: a job past the memory limit gets oomKilled and 137; the runner survives, the same container serves', async () => {
    const c = await pool.acquire();
    try {
      const r = await c.execute(
        [
          'python3',
          '-c',
          'chunks = []\nwhile True:\n    chunks.append(bytearray(8 * 1024 * 1024))',
        ],
        { timeoutMs: 8_000 },
      );
      expect(verdict(r)).toEqual({ ...clean(137), oomKilled: true });
      await expectRunnerServes(c);
    } finally {
      pool.release(c);
    }
    // A code job (in the spare) past the limit, in a reused container, then code jobs there again.
    const o = await inReused(
      'chunks = []\nwhile True:\n    chunks.append(bytearray(8 * 1024 * 1024))',
      8_000,
    );
    expect(verdict(o)).toEqual({ ...clean(137), oomKilled: true });
    const again = await inReused('print("after oom")');
    expect(again.containerId).toBe(o.containerId);
    expect({ ...verdict(again), stdout: again.stdout }).toEqual({
      ...clean(0),
      stdout: 'after oom\n',
    });
    await expectNextRunExact(c.id);
  });
});

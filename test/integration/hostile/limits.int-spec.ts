import {
  cgroupValue,
  hostConfigOf,
  py,
  report,
  sh,
  TRANSPORTS,
  useHostilePool,
} from '../../support/hostile';

const MiB = 1024 * 1024;

/** Hostile workloads against the resource limits: processes, memory, disk, CPU, file descriptors. */
describe.each(TRANSPORTS)('hostile workloads: resource limits (transport %s)', (transport) => {
  const ctx = useHostilePool(transport);

  describe('1. fork bomb', () => {
    const timeoutMs = 3_000;

    it('Python: the pids limit holds, the run is killed at its timeout, a concurrent run is unaffected', async () => {
      const c = await ctx.pool.acquire();
      const hostView = await hostConfigOf(c.id);
      expect(hostView.PidsLimit).toBe(64);
      let peakPids = 0;
      const sampler = setInterval(() => {
        const v = Number(cgroupValue('pids', c.id, 'pids.current') ?? 0);
        peakPids = Math.max(peakPids, v);
      }, 20);
      try {
        const bomb = c.execute(
          [
            'python3',
            '-c',
            [
              'import os, sys',
              'told = False',
              'while True:',
              '    try:',
              '        os.fork()',
              '    except OSError as e:',
              '        if not told:',
              '            told = True',
              '            sys.stdout.write("fork failed: %s\\n" % e.strerror)',
              '            sys.stdout.flush()',
            ].join('\n'),
          ],
          { timeoutMs },
        );
        // Another execution at the same time, in another container, is unaffected.
        await new Promise((r) => setTimeout(r, 500));
        const other = await ctx.pool.run({ code: 'print(sum(range(1000)))' });
        expect(other).toMatchObject({ exitCode: 0, stdout: '499500\n', timedOut: false });
        const r = await bomb;
        expect(r.timedOut || r.exitCode !== 0).toBe(true);
        expect(r.durationMs).toBeLessThanOrEqual(timeoutMs + 1_000);
        expect(r.stdout).toContain('fork failed: Resource temporarily unavailable');
      } finally {
        clearInterval(sampler);
        ctx.pool.release(c);
      }
      expect(peakPids).toBeGreaterThan(32);
      expect(peakPids).toBeLessThanOrEqual(64);
    });

    it('shell: the classic bomb hits the limit and ends by the timeout', async () => {
      const started = Date.now();
      const r = await sh(ctx.pool, 'bomb() { bomb | bomb & }; bomb; sleep 30', { timeoutMs });
      expect(r.timedOut || r.exitCode !== 0).toBe(true);
      expect(r.durationMs).toBeLessThanOrEqual(timeoutMs + 1_000);
      expect(Date.now() - started).toBeLessThan(timeoutMs + 5_000);
    });
  });

  describe('2. memory bomb', () => {
    it('Python: one process past the limit is OOM-killed and reported as oomKilled', async () => {
      const r = await py(
        ctx.pool,
        'chunks = []\nwhile True:\n    chunks.append(bytearray(8 * 1024 * 1024))',
        {
          timeoutMs: 8_000,
        },
      );
      expect(r).toMatchObject({ exitCode: 137, oomKilled: true, timedOut: false });
    });

    it('Python: children each under the limit but together over it: the limit binds the container', async () => {
      // Four children of 48 MiB each: any one fits in 128 MiB, all four do not.
      const r = await py(
        ctx.pool,
        [
          'import os, json, time',
          'pids = []',
          'for i in range(4):',
          '    pid = os.fork()',
          '    if pid == 0:',
          '        b = bytearray(48 * 1024 * 1024)',
          '        for j in range(0, len(b), 4096): b[j] = 1',
          '        time.sleep(3)',
          '        os._exit(0)',
          '    pids.append(pid)',
          'codes = []',
          'for pid in pids:',
          '    _, status = os.waitpid(pid, 0)',
          '    codes.append(os.waitstatus_to_exitcode(status))',
          'print(json.dumps({"codes": codes}))',
        ].join('\n'),
        { timeoutMs: 8_000 },
      );
      const { codes } = report<{ codes: number[] }>(r);
      expect(codes).toContain(-9);
      expect(r.oomKilled).toBe(true);
      expect(r.timedOut).toBe(false);
    });

    it('shell: tail of /dev/zero (an endless line) is OOM-killed', async () => {
      const r = await sh(ctx.pool, 'exec tail /dev/zero', { timeoutMs: 8_000 });
      expect(r).toMatchObject({ exitCode: 137, oomKilled: true, timedOut: false });
    });
  });

  describe('3. disk fill', () => {
    it('Python: ENOSPC at the /tmp tmpfs size; the root filesystem is read-only', async () => {
      const r = await py(
        ctx.pool,
        [
          'import errno, json, os',
          'out = {}',
          'written = 0',
          'try:',
          '    with open("/tmp/fill", "wb", buffering=0) as f:',
          '        chunk = b"x" * (1024 * 1024)',
          '        while True:',
          '            written += f.write(chunk)',
          'except OSError as e:',
          '    out["tmp"] = errno.errorcode[e.errno]',
          'out["tmpBytes"] = os.path.getsize("/tmp/fill")',
          'for path in ["/fill", "/usr/fill", "/etc/passwd"]:',
          '    try:',
          '        open(path, "ab").close()',
          '        out[path] = "ok"',
          '    except OSError as e:',
          '        out[path] = errno.errorcode[e.errno]',
          'print(json.dumps(out))',
        ].join('\n'),
      );
      const out = report<Record<string, string | number>>(r);
      expect(out.tmp).toBe('ENOSPC');
      expect(out.tmpBytes).toBeLessThanOrEqual(16 * MiB);
      expect(out.tmpBytes).toBeGreaterThan(15 * MiB);
      expect(out['/fill']).toBe('EROFS');
      expect(out['/usr/fill']).toBe('EROFS');
      // A root-owned file: the permission check answers first, and the mount would refuse anyway.
      expect(['EROFS', 'EACCES']).toContain(out['/etc/passwd']);
    });

    it('shell: dd into /tmp stops at the tmpfs size; touching / fails', async () => {
      const r = await sh(
        ctx.pool,
        'dd if=/dev/zero of=/tmp/fill bs=1M count=64 2>&1; ls -l /tmp/fill; touch /x 2>&1; echo done',
      );
      expect(r.stdout).toMatch(/No space left on device/);
      expect(r.stdout).toMatch(/Read-only file system/);
      const size = Number(/\s(\d+)\s+\w{3}\s+\d+/.exec(r.stdout)?.[1]);
      expect(size).toBeLessThanOrEqual(16 * MiB);
    });
  });

  describe('6. CPU spin', () => {
    it('Python: killed at the timeout with timedOut set', async () => {
      const r = await py(ctx.pool, 'while True:\n    pass', { timeoutMs: 1_500 });
      expect(r).toMatchObject({ timedOut: true, exitCode: null, oomKilled: false });
      // Node's timers run on the loop's millisecond clock, durationMs on performance.now(): the timer may fire a
      // fraction of a millisecond before 1 500 ms of the latter have passed (1 499.95 seen on the runner).
      expect(r.durationMs).toBeGreaterThanOrEqual(1_499);
      expect(r.durationMs).toBeLessThanOrEqual(2_500);
    });

    it('shell: killed at the timeout with timedOut set', async () => {
      const r = await sh(ctx.pool, 'while :; do :; done', { timeoutMs: 1_500 });
      expect(r).toMatchObject({ timedOut: true, exitCode: null });
      expect(r.durationMs).toBeLessThanOrEqual(2_500);
    });
  });

  describe('15. file-descriptor bomb', () => {
    it('Python: EMFILE at the nofile limit', async () => {
      const r = await py(
        ctx.pool,
        [
          'import errno, json, os, resource',
          'fds = []',
          'err = None',
          'try:',
          '    while True:',
          '        fds.append(os.open("/dev/null", os.O_RDONLY))',
          'except OSError as e:',
          '    err = errno.errorcode[e.errno]',
          'print(json.dumps({"err": err, "opened": len(fds), "limit": resource.getrlimit(resource.RLIMIT_NOFILE)}))',
        ].join('\n'),
      );
      const out = report<{ err: string; opened: number; limit: number[] }>(r);
      expect(out.err).toBe('EMFILE');
      expect(out.limit).toEqual([64, 64]);
      expect(out.opened).toBeLessThan(64);
      expect(out.opened).toBeGreaterThan(50);
    });

    it('shell: the limit is 64 and cannot be raised', async () => {
      const r = await sh(ctx.pool, 'ulimit -n; ulimit -n 4096 2>&1 || echo refused; ulimit -n');
      const lines = r.stdout.trim().split('\n');
      expect(lines[0]).toBe('64');
      expect(r.stdout).toMatch(/refused|Operation not permitted|Invalid argument/);
      expect(lines[lines.length - 1]).toBe('64');
    });
  });
});

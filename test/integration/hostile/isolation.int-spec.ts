import type { INestApplication } from '@nestjs/common';
import type { ContainerPoolService } from '../../../src/container-pool/container-pool.service';
import {
  expectPoolHealthy,
  HOSTILE_LIMITS,
  py,
  report,
  sh,
  TRANSPORTS,
} from '../../support/hostile';
import {
  BUSYBOX_IMAGE,
  docker,
  expectNoContainersLeft,
  startPool,
} from '../../support/integration';

/** Hostile workloads against the isolation: network, privileges, kernel surface, host visibility, env. */
/**
 * The processes of a runner container as /proc shows them: the runner itself (PID 1) and its helpers (the zygote
 * and the spare it forks), and a code job, which runs in a forked spare: every one of them has the runner's command
 * line, all as the sandbox user.
 */
const RUNNER_CMDLINE = /^python3 -I -c # container-pool runner/;

describe.each(TRANSPORTS)('hostile workloads: isolation (transport %s)', (transport) => {
  let app: INestApplication;
  let pool: ContainerPoolService;
  let name: string;
  let gateway: string;

  beforeAll(async () => {
    // Set before the pool starts: nothing of the service's own environment may reach the sandbox.
    process.env.CONTAINER_POOL_HOSTILE_SECRET = 'service-secret-value';
    ({ app, pool, name } = await startPool({
      ...HOSTILE_LIMITS,
      size: 2,
      maxContainers: 4,
      transport,
    }));
    await pool.initialize();
    try {
      const bridge = await docker.getNetwork('bridge').inspect();
      gateway = bridge.IPAM?.Config?.[0]?.Gateway ?? '172.17.0.1';
    } catch {
      gateway = '172.17.0.1';
    }
  });

  afterEach(async () => {
    await expectPoolHealthy(pool, name, transport);
  });

  afterAll(async () => {
    delete process.env.CONTAINER_POOL_HOSTILE_SECRET;
    await app?.close();
    await expectNoContainersLeft(name);
  });

  describe('10. network', () => {
    it('Python: outside HTTP, DNS, the bridge gateway and the metadata address all fail fast', async () => {
      const r = await py(
        pool,
        [
          'import json, os, socket, time',
          `targets = [("outside", "1.1.1.1", 80), ("gateway", ${JSON.stringify(gateway)}, 80),`,
          '           ("metadata", "169.254.169.254", 80), ("dns-server", "8.8.8.8", 53)]',
          'out = {"interfaces": sorted(os.listdir("/sys/class/net"))}',
          'for label, host, port in targets:',
          '    t = time.monotonic()',
          '    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)',
          '    s.settimeout(5)',
          '    try:',
          '        s.connect((host, port))',
          '        out[label] = ["connected", 0]',
          '    except OSError as e:',
          '        out[label] = [str(e), round((time.monotonic() - t) * 1000)]',
          '    finally:',
          '        s.close()',
          't = time.monotonic()',
          'try:',
          '    socket.getaddrinfo("example.com", 80)',
          '    out["dns"] = ["resolved", 0]',
          'except OSError as e:',
          '    out["dns"] = [str(e), round((time.monotonic() - t) * 1000)]',
          't = time.monotonic()',
          'try:',
          '    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)',
          '    u.sendto(b"x", ("8.8.8.8", 53))',
          '    out["udp"] = ["sent", 0]',
          'except OSError as e:',
          '    out["udp"] = [str(e), round((time.monotonic() - t) * 1000)]',
          'print(json.dumps(out))',
        ].join('\n'),
      );
      const out = report<Record<string, [string, number]> & { interfaces: string[] }>(r);
      expect(out.interfaces).toEqual(['lo']);
      for (const key of ['outside', 'gateway', 'metadata', 'dns-server', 'dns', 'udp']) {
        const [what, ms] = out[key];
        expect({ key, failed: !['connected', 'resolved', 'sent'].includes(what) }).toEqual({
          key,
          failed: true,
        });
        expect({ key, fast: ms < 1_000 }).toEqual({ key, fast: true });
      }
      expect(out.outside[0]).toMatch(/Network is unreachable/);
    });

    it('shell: bash /dev/tcp to the outside and the gateway fails at once', async () => {
      const r = await pool.run({
        cmd: [
          'bash',
          '-c',
          `for h in 1.1.1.1 ${gateway} 169.254.169.254; do (exec 3<>/dev/tcp/$h/80) 2>&1 && echo "$h open"; done; echo end`,
        ],
        timeoutMs: 3_000,
      });
      expect(r.timedOut).toBe(false);
      expect(r.stdout).not.toMatch(/open/);
      for (const host of ['1.1.1.1', gateway, '169.254.169.254']) {
        expect(r.stdout).toContain(`/dev/tcp/${host}/80: Network is unreachable`);
      }
    });
  });

  describe('11. posture', () => {
    it('no capabilities, no new privileges, seccomp filtering, not root; a setuid binary does not elevate', async () => {
      const r = await py(
        pool,
        [
          'import json, os, pty, stat, time',
          'status = dict(l.split(":\\t", 1) for l in open("/proc/self/status").read().splitlines() if ":\\t" in l)',
          'out = {k: status[k].strip() for k in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs", "Seccomp"]}',
          'out["uid"], out["gid"], out["groups"] = os.getuid(), os.getgid(), os.getgroups()',
          'st = os.stat("/usr/bin/su")',
          'out["suSetuidRoot"] = bool(st.st_mode & stat.S_ISUID) and st.st_uid == 0',
          // su blocks on its password prompt (a pty gives it one): read its effective uid meanwhile.
          'pid, fd = pty.fork()',
          'if pid == 0:',
          '    os.execv("/usr/bin/su", ["su", "root", "-c", "id"])',
          'uids = None',
          'for _ in range(100):',
          '    time.sleep(0.02)',
          '    s = open("/proc/%d/status" % pid).read()',
          '    if "Name:\\tsu" in s:',
          '        uids = [l for l in s.splitlines() if l.startswith("Uid:")][0].split()[1:]',
          '        break',
          'os.kill(pid, 9)',
          'out["suUids"] = uids',
          'print(json.dumps(out))',
        ].join('\n'),
      );
      const out = report<Record<string, unknown>>(r);
      expect(out).toMatchObject({
        CapInh: '0000000000000000',
        CapPrm: '0000000000000000',
        CapEff: '0000000000000000',
        CapBnd: '0000000000000000',
        CapAmb: '0000000000000000',
        NoNewPrivs: '1',
        Seccomp: '2',
        uid: 65534,
        gid: 65534,
        suSetuidRoot: true,
      });
      expect(out.groups).not.toContain(0);
      // real, effective, saved, filesystem uid: all still 65534 (without no-new-privileges the second is 0).
      expect(out.suUids).toEqual(['65534', '65534', '65534', '65534']);
    });

    it('shell: id and /proc/self/status agree', async () => {
      const r = await sh(
        pool,
        'id -u; id -g; grep -E "^(CapEff|NoNewPrivs|Seccomp):" /proc/self/status',
      );
      expect(r.stdout).toBe(
        '65534\n65534\nCapEff:\t0000000000000000\nNoNewPrivs:\t1\nSeccomp:\t2\n',
      );
    });
  });

  describe('12. kernel surface', () => {
    it('Python: unshare, mount, keyctl, add_key, request_key, bpf, setns fail with EPERM or ENOSYS', async () => {
      // x86_64 syscall numbers.
      const r = await py(
        pool,
        [
          'import ctypes, errno, json, os',
          'libc = ctypes.CDLL(None, use_errno=True)',
          'def call(fn, *args):',
          '    ctypes.set_errno(0)',
          '    rc = fn(*args)',
          '    return "ok" if rc >= 0 else errno.errorcode.get(ctypes.get_errno(), str(ctypes.get_errno()))',
          'CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWNET = 0x20000, 0x10000000, 0x40000000',
          'out = {',
          '  "unshare_user": call(libc.unshare, CLONE_NEWUSER),',
          '  "unshare_ns": call(libc.unshare, CLONE_NEWNS),',
          '  "unshare_net": call(libc.unshare, CLONE_NEWNET),',
          '  "mount": call(libc.mount, b"none", b"/tmp", b"tmpfs", 0, None),',
          '  "umount2": call(libc.umount2, b"/tmp", 2),',
          '  "keyctl": call(libc.syscall, 250, 0, 0, 0, 0, 0),',
          '  "add_key": call(libc.syscall, 248, b"user", b"k", b"v", 1, -2),',
          '  "request_key": call(libc.syscall, 249, b"user", b"k", None, 0),',
          '  "bpf": call(libc.syscall, 321, 0, None, 0),',
          // With a bad fd the call would fail with EBADF if the filter let it through.
          '  "setns": call(libc.syscall, 308, -1, 0),',
          '}',
          'print(json.dumps(out))',
        ].join('\n'),
      );
      const out = report<Record<string, string>>(r);
      for (const [call, result] of Object.entries(out)) {
        expect({ call, result: ['EPERM', 'ENOSYS'].includes(result) ? 'denied' : result }).toEqual({
          call,
          result: 'denied',
        });
      }
    });

    it('shell: unshare -r and mount fail', async () => {
      const r = await sh(
        pool,
        'unshare -r id 2>&1; echo "rc=$?"; mount -t tmpfs none /tmp 2>&1; echo "rc=$?"',
      );
      expect(r.stdout).toMatch(/unshare failed: Operation not permitted\nrc=1/);
      expect(r.stdout).toMatch(/mount: .*\nrc=(1|32)/);
      expect(r.stdout).not.toMatch(/uid=0/);
    });
  });

  describe('13. host visibility', () => {
    it('Python: no docker socket, /proc/sys read-only, no block devices, only its own processes', async () => {
      const r = await py(
        pool,
        [
          'import errno, json, os, stat',
          'out = {}',
          'out["sockets"] = [p for p in ["/var/run/docker.sock", "/run/docker.sock", "/run/containerd/containerd.sock"] if os.path.exists(p)]',
          'found = []',
          'for root, dirs, files in os.walk("/", onerror=lambda e: None):',
          '    if root.startswith(("/proc", "/sys")):',
          '        dirs[:] = []',
          '        continue',
          '    for f in files:',
          '        p = os.path.join(root, f)',
          '        try:',
          '            m = os.lstat(p).st_mode',
          '        except OSError:',
          '            continue',
          '        if stat.S_ISSOCK(m): found.append(p)',
          '        if stat.S_ISBLK(m): found.append("blk:" + p)',
          'out["found"] = found',
          'try:',
          '    open("/proc/sys/kernel/hostname", "w").write("x")',
          '    out["procSysWrite"] = "ok"',
          'except OSError as e:',
          '    out["procSysWrite"] = errno.errorcode[e.errno]',
          'opts = [l.split()[5] for l in open("/proc/self/mountinfo") if l.split()[4] == "/proc/sys"]',
          'out["procSysMount"] = opts',
          'procs = []',
          'for pid in sorted(int(p) for p in os.listdir("/proc") if p.isdigit()):',
          '    try:',
          '        cmd = open("/proc/%d/cmdline" % pid, "rb").read().replace(b"\\0", b" ").decode().strip()',
          '    except OSError:',
          '        continue',
          // The first 200 characters: a runner's command line holds its whole source (the output cap is 64 KiB).
          '    procs.append([pid, cmd[:200]])',
          'out["procs"] = procs',
          'print(json.dumps(out))',
        ].join('\n'),
      );
      const out = report<{
        sockets: string[];
        found: string[];
        procSysWrite: string;
        procSysMount: string[];
        procs: [number, string][];
      }>(r);
      expect(out.sockets).toEqual([]);
      expect(out.found).toEqual([]);
      expect(['EROFS', 'EACCES']).toContain(out.procSysWrite);
      expect(out.procSysMount).toEqual([expect.stringMatching(/^ro(,|$)/)]);
      if (transport === 'exec') {
        // exec: PID 1 is the container's init; then its lifeline (sh, sleep, cat) and this execution. Nothing of
        // the host.
        expect(out.procs[0]).toEqual([1, expect.stringMatching(/docker-init/)]);
        expect(out.procs.length).toBeLessThanOrEqual(6);
        for (const [, cmd] of out.procs) {
          expect(cmd).toMatch(/^(\/sbin\/docker-init|sh|sleep|cat|python3)( |$)/);
        }
      } else {
        // runner: PID 1 is the runner, then its zygote and spare, and this execution (a code job runs in a forked
        // spare, so it has the runner's command line too). Nothing of the host, no init, no lifeline shell.
        expect(out.procs[0]).toEqual([1, expect.stringMatching(RUNNER_CMDLINE)]);
        expect(out.procs.length).toBeLessThanOrEqual(5);
        for (const [, cmd] of out.procs) expect(cmd).toMatch(RUNNER_CMDLINE);
      }
    });

    it('shell: ps shows only the container, /dev has no block device', async () => {
      const r = await sh(
        pool,
        'ps -eo pid,user,comm --no-headers; ls -l /dev | grep "^b" | wc -l; ls /var/run/docker.sock 2>&1',
      );
      const lines = r.stdout.trim().split('\n');
      const ps = lines.slice(0, -2);
      expect(ps.length).toBeLessThanOrEqual(7);
      if (transport === 'exec') {
        // exec: the lifeline (docker-init, sh, sleep, cat) runs as root without any capability, out of the
        // sandbox user's reach; everything the execution started runs as nobody.
        for (const line of ps)
          expect(line).toMatch(/^\s*\d+\s+(root\s+(docker-init|sh|sleep|cat)|nobody\s+(sh|ps))$/);
      } else {
        // runner: nothing runs as root; PID 1 is the runner (python3, non-dumpable), with its python3 helpers.
        expect(ps[0]).toMatch(/^\s*1\s+nobody\s+python3$/);
        for (const line of ps) expect(line).toMatch(/^\s*\d+\s+nobody\s+(python3|sh|ps)$/);
      }
      expect(lines[lines.length - 2]).toBe('0');
      expect(lines[lines.length - 1]).toMatch(/No such file or directory/);
    });
  });

  describe('14. environment', () => {
    it('shell: the program sees only the variables the caller passed (plus PATH and HOME)', async () => {
      const r = await pool.run({ cmd: ['env'], env: { CALLER_VAR: 'given', OTHER: 'x=y' } });
      const vars = r.stdout
        .trim()
        .split('\n')
        .map((l) => l.slice(0, l.indexOf('=')))
        .sort();
      expect(vars).toEqual(['CALLER_VAR', 'HOME', 'OTHER', 'PATH']);
      expect(r.stdout).toContain('OTHER=x=y\n');
      expect(r.stdout).not.toContain('service-secret-value');
    });

    it('Python: os.environ holds the caller variables and nothing of the service or the image', async () => {
      const r = await py(pool, 'import json, os\nprint(json.dumps(dict(os.environ)))', {
        env: { CALLER_VAR: 'given' },
      });
      const env = report<Record<string, string>>(r);
      // Python itself may coerce the C locale (PEP 538) by setting LC_CTYPE in its own environment.
      delete env.LC_CTYPE;
      expect(Object.keys(env).sort()).toEqual(['CALLER_VAR', 'HOME', 'PATH']);
      expect(env.CALLER_VAR).toBe('given');
      expect(JSON.stringify(env)).not.toContain('service-secret-value');
    });
  });
});

/** Busybox has no Python: the exec transport only (auto's choice there too, named explicitly). */
describe('hostile workloads: isolation, busybox image (transport exec)', () => {
  describe('11. posture: busybox image (sh and busybox applets, no Python)', () => {
    let bb: { app: INestApplication; pool: ContainerPoolService; name: string } | undefined;

    beforeAll(async () => {
      bb = await startPool({
        ...HOSTILE_LIMITS,
        image: BUSYBOX_IMAGE,
        size: 1,
        maxContainers: 2,
        transport: 'exec',
      });
      await bb.pool.initialize();
      expect(bb.pool.stats().transport).toBe('exec');
    });

    afterAll(async () => {
      await bb?.app.close();
      if (bb) await expectNoContainersLeft(bb.name);
    });

    it('shell: uid/gid 65534, every capability set empty, no new privileges, seccomp filtering', async () => {
      const r = await bb!.pool.run({
        cmd: [
          'sh',
          '-c',
          'id -u; id -g; id -G; grep -E "^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp):" /proc/self/status',
        ],
      });
      expect(r.exitCode).toBe(0);
      expect(r.stdout).toBe(
        [
          '65534',
          '65534',
          '65534',
          ...['CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb'].map(
            (k) => `${k}:\t${'0'.repeat(16)}`,
          ),
          'NoNewPrivs:\t1',
          'Seccomp:\t2',
          '',
        ].join('\n'),
      );
    });
  });
});

#!/usr/bin/env python3
"""Runs runner.py as PID 1 of real hardened containers (as the pool starts them) and checks it frame by frame.

    python3 test/runner/runner_harness.py [-k substring] [--image IMAGE] [--quick]

One line per case, a summary, exit status 1 when a case failed. Every container carries the label
io.container-pool.test=runner-harness (and one naming this run) and runs with --rm; the docker clients are killed
and the containers removed in `finally`, also when a case fails; a container of this run left after that is a
failure (another run's, on the same engine, is none of its business).
"""
import json
import os
import queue
import struct
import subprocess
import sys
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
RUNNER = os.path.join(HERE, '..', '..', 'src', 'container-pool', 'transport', 'runner', 'assets', 'runner.py')
IMAGE = 'container-pool-sandbox:bookworm'
LABEL = 'io.container-pool.test=runner-harness'
# this run's own containers: the leak check at the end looks for (and removes) these only, never those of another
# harness run on the same engine
RUN_LABEL = 'io.container-pool.test.run=%d-%d' % (os.getpid(), time.time_ns())
HDR = struct.Struct('>IBI')
JOB, STDIN, STDIN_EOF, KILL, INTERRUPT, RESET = 1, 2, 3, 4, 5, 6
HELLO, STDOUT, STDERR, EXIT, ERROR, RESET_DONE, OUTPUT = 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87
PROTOCOL = 3
VERSION = '1.3.0'
DATASCIENCE_IMAGE = 'container-pool-datascience:bookworm'
MIMES = {'text/plain', 'text/html', 'text/markdown', 'text/latex', 'image/svg+xml', 'image/png', 'image/jpeg',
         'application/json'}
PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
ENV = [PATH, 'HOME=/tmp']
MIB = 1 << 20
SRC = open(RUNNER).read()
_seq = [0]


def _nonjson(c):
    raise ValueError(c)


class Job(object):
    def __init__(self, jid, kind='code'):
        self.jid = jid
        self.kind = kind
        self.out = bytearray()
        self.err = bytearray()
        self.exit = None  # parsed EXIT payload
        self.error = None  # parsed ERROR payload
        self.t_start = None
        self.t_end = None
        self.t_first_out = None
        self.outputs = []  # OUTPUT payloads (parsed), in order
        self.done = threading.Event()

    @property
    def status(self):
        return self.exit['status'] if self.exit else None

    @property
    def interp(self):
        return self.exit['interpreter'] if self.exit else None

    @property
    def alive(self):
        return self.exit['alive'] if self.exit else None

    @property
    def error_(self):  # the cell's reported error (None: none, or no report)
        return (self.exit.get('report') or {}).get('error') if self.exit else None

    def text(self):
        return self.out.decode('utf-8', 'replace')

    def etext(self):
        return self.err.decode('utf-8', 'replace')

    def __repr__(self):
        return 'Job(%d exit=%r error=%r out=%r err=%r)' % (
            self.jid, self.exit, self.error, bytes(self.out[:300]), bytes(self.err[:600]))


class Runner(object):
    """One container running runner.py; a reader thread parses and checks the frames it sends."""

    def __init__(self, deadline=120, memory='128m', pids=64, image=None, options=None, tmpfs=()):
        _seq[0] += 1
        self.name = 'runner-harness-%d-%d' % (os.getpid(), _seq[0])
        self.deadline = time.time() + deadline
        cmd = ['docker', 'run', '-i', '--rm', '--name', self.name, '--init=false', '--network', 'none',
               '--user', '65534:65534', '--cap-drop', 'ALL', '--security-opt', 'no-new-privileges', '--read-only',
               '--tmpfs', '/work:rw,exec,size=16m,mode=1777', '--tmpfs', '/tmp:rw,exec,size=16m,mode=1777',
               '--memory', memory, '--pids-limit', str(pids), '--label', LABEL, '--label', RUN_LABEL, '-w', '/']
        for t in tmpfs:  # more writable directories (e.g. one on sys.path)
            cmd += ['--mount', 'type=tmpfs,dst=%s,tmpfs-mode=1777,tmpfs-size=4m' % t]
        cmd += [image or IMAGE, 'python3', '-I', '-c', SRC, '%.3f' % self.deadline, str(PROTOCOL)]
        if options is not None:
            cmd.append(json.dumps(options))
        self.resets = queue.Queue()
        self.jobs = {}
        self.next_id = 1
        self.violations = []
        self.hello = None
        self.hello_at = None
        self.frames = 0
        self.reading = threading.Event()
        self.reading.set()
        self.eof = threading.Event()
        self.stderr = bytearray()
        self.lock = threading.Lock()
        self.t0 = time.perf_counter()
        self.p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  bufsize=0)
        self.rt = threading.Thread(target=self._read, daemon=True)
        self.rt.start()
        self.et = threading.Thread(target=self._read_err, daemon=True)
        self.et.start()

    # ---- frames in
    def _violation(self, msg):
        self.violations.append(msg)

    def _read_err(self):
        while True:
            d = os.read(self.p.stderr.fileno(), 65536)
            if not d:
                return
            self.stderr += d

    def _read(self):
        buf = bytearray()
        fd = self.p.stdout.fileno()
        while True:
            self.reading.wait()
            d = os.read(fd, 1 << 20)
            now = time.perf_counter()
            if not d:
                if buf:
                    self._violation('%d bytes of a partial frame at EOF' % len(buf))
                self.eof.set()
                for j in list(self.jobs.values()):
                    j.done.set()
                return
            buf += d
            p = 0
            while len(buf) - p >= 9:
                n, t, jid = HDR.unpack_from(buf, p)
                if n > (65536 if t in (STDOUT, STDERR) else MIB):
                    self._violation('frame type %#x with %d bytes' % (t, n))
                if len(buf) - p - 9 < n:
                    break
                payload = bytes(buf[p + 9:p + 9 + n])
                p += 9 + n
                self._frame(t, jid, payload, now)
            del buf[:p]

    def _frame(self, t, jid, payload, now):
        self.frames += 1
        if t == HELLO:
            if self.hello is not None or jid != 0:
                self._violation('second HELLO or HELLO with a job id')
            self.hello = json.loads(payload)
            self.hello_at = now
            return
        if self.hello is None:
            self._violation('frame %#x before HELLO' % t)
        if t == RESET_DONE:
            e = json.loads(payload)
            if jid != 0 or set(e) != {'left'} or not isinstance(e['left'], int):
                self._violation('bad RESET_DONE %r' % e)
            self.resets.put((now, e, [j.jid for j in self.jobs.values() if not j.done.is_set()]))
            return
        j = self.jobs.get(jid)
        if j is None or j.done.is_set():
            self._violation('frame %#x for job %d that is unknown or over' % (t, jid))
            return
        if t == STDOUT:
            if not payload:
                self._violation('empty STDOUT')
            if j.t_first_out is None:
                j.t_first_out = now
            j.out += payload
        elif t == STDERR:
            if not payload:
                self._violation('empty STDERR')
            j.err += payload
        elif t == OUTPUT:
            try:  # as strict as the host's JSON.parse: no NaN, Infinity
                o = json.loads(payload, parse_constant=_nonjson)
            except ValueError:
                self._violation('OUTPUT that is not JSON %r' % payload[:200])
                o = None
            d = o.get('data') if isinstance(o, dict) else None
            if (j.kind != 'cell' or not isinstance(o, dict) or set(o) != {'t', 'type', 'data'} or o['t'] != 'out'
                    or o['type'] not in ('result', 'display')
                    or not (d is None or (isinstance(d, dict) and 'text/plain' in d and set(d) <= MIMES))):
                self._violation('bad OUTPUT %r' % payload[:200])
            j.outputs.append(o)
        elif t == EXIT:
            e = json.loads(payload)
            keys = {'status', 'oomKills', 'oomKillsAtStart'}
            if j.kind == 'cell':
                keys |= {'interpreter', 'alive', 'report', 'outputsDropped'}
                r = e.get('report')
                if (not isinstance(e.get('interpreter'), int) or not isinstance(e.get('alive'), bool)
                        or not (r is None or (isinstance(r, dict) and set(r) == {'error'}))):
                    self._violation('bad cell EXIT %r' % e)
            if set(e) != keys or not isinstance(e['status'], int) or not 0 <= e['status'] <= 255:
                self._violation('bad EXIT %r' % e)
            j.exit = e
            j.t_end = now
            j.done.set()
        elif t == ERROR:
            e = json.loads(payload)
            if set(e) != {'what', 'errno', 'message'} or e['what'] not in ('exec', 'chdir', 'spawn'):
                self._violation('bad ERROR %r' % e)
            j.error = e
            j.t_end = now
            j.done.set()
        else:
            self._violation('unknown frame type %#x' % t)

    # ---- frames out
    def write(self, t, jid, payload=b''):
        self.p.stdin.write(HDR.pack(len(payload), t, jid) + payload)

    def wait_hello(self, timeout=30):
        end = time.time() + timeout
        while self.hello is None and time.time() < end and not self.eof.is_set():
            time.sleep(0.001)
        assert self.hello is not None, 'no HELLO; stderr: %r' % bytes(self.stderr)
        return self.hello

    def start(self, code=None, argv=None, env=None, workdir='/work', line=False, stdin=None, eof=True, cell=False,
              session=False, outputs=None):
        jid = self.next_id
        self.next_id += 1
        kind = 'cell' if cell else 'cmd' if argv is not None else 'code'
        j = Job(jid, kind)
        self.jobs[jid] = j
        h = {'kind': kind, 'env': ENV if env is None else env,
             'workdir': workdir, 'lineBuffered': line}
        if argv is not None:
            h['argv'] = argv
        if session:
            h['session'] = True
        if cell:
            if outputs is not None:
                h['outputs'] = {'max': outputs[0], 'maxBytes': outputs[1]}
            h['name'] = '<cell-%d>' % jid  # last, and compact JSON: as the host writes it (the runner's fast path)
        hb = json.dumps(h, separators=(',', ':') if cell else None).encode()
        body = code.encode() if isinstance(code, str) else (code or b'')
        j.t_start = time.perf_counter()
        self.write(JOB, jid, struct.pack('>I', len(hb)) + hb + body)
        if stdin:
            for i in range(0, len(stdin), MIB):
                self.write(STDIN, jid, stdin[i:i + MIB])
        if eof:
            self.write(STDIN_EOF, jid)
        return j

    def run(self, timeout=20, **kw):
        j = self.start(**kw)
        assert j.done.wait(timeout), 'job timed out: %r' % j
        return j

    def code(self, code, **kw):
        return self.run(code=code, **kw)

    def sh(self, script, **kw):
        return self.run(argv=['sh', '-c', script], **kw)

    def cell(self, code, **kw):
        return self.run(code=code, cell=True, **kw)

    def reset(self, timeout=5):
        self.write(RESET, 0)
        return self.resets.get(timeout=timeout)

    def alive(self):
        j = self.code('print(6 * 7)', timeout=10)
        assert j.status == 0 and j.out == b'42\n', j
        return True

    def close(self):
        try:
            self.p.stdin.close()
        except OSError:
            pass
        try:
            self.p.wait(5)
        except subprocess.TimeoutExpired:
            pass

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            try:
                self.p.wait(5)
            except subprocess.TimeoutExpired:
                pass
        subprocess.run(['docker', 'rm', '-f', self.name], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


RUNNERS = []


def new_runner(**kw):
    r = Runner(**kw)
    RUNNERS.append(r)
    r.wait_hello()
    return r


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q / 100.0 * (len(xs) - 1))))]


# ------------------------------------------------------------------------------------------------ cases
CASES = []


def case(fn):
    CASES.append(fn)
    return fn


def shared():
    if not hasattr(shared, 'r') or shared.r.eof.is_set():
        shared.r = new_runner()
    return shared.r


@case
def hello():
    times = []
    for _ in range(3):
        r = new_runner()
        times.append((r.hello_at - r.t0) * 1000)
        h = r.hello
        assert set(h) == {'protocol', 'runner', 'python', 'oomKills'}, h
        assert h['protocol'] == PROTOCOL and h['runner'] == VERSION and h['python'].startswith('3.'), h
        assert h['oomKills'] == 0, h
    # the runner's own start (python3 -I -c runner.py -> HELLO), measured inside the container: a nested runner
    j = r.code('import os, subprocess, sys, time\nsrc = sys.stdin.read()\nts = []\nfor i in range(7):\n'
               '    t = time.perf_counter()\n'
               '    p = subprocess.Popen([sys.executable, "-I", "-c", src, str(time.time() + 30), "3"], cwd="/",'
               ' stdin=subprocess.PIPE, stdout=subprocess.PIPE)\n'
               '    h = os.read(p.stdout.fileno(), 9)\n    ts.append((time.perf_counter() - t) * 1000)\n'
               '    p.stdin.close()\n    p.wait()\nprint(" ".join("%.1f" % x for x in sorted(ts)))',
               stdin=SRC.encode(), timeout=30)
    assert j.status == 0, j
    inner = [float(x) for x in j.out.split()]
    r.close()
    r.kill()
    return ('hello %r; docker run -> HELLO %.0f / %.0f / %.0f ms; runner start -> HELLO in the container p50 %.1f ms'
            ' (min %.1f)' % (h, times[0], times[1], times[2], inner[len(inner) // 2], inner[0]))


@case
def code_stdout_stderr():
    r = shared()
    j = r.code('import sys\nprint("out")\nprint("err", file=sys.stderr)\n')
    assert j.status == 0 and j.out == b'out\n' and j.err == b'err\n', j
    j = r.code('')
    assert j.status == 0 and j.out == b'' and j.err == b'', j
    return 'ok'


@case
def code_exit_codes():
    r = shared()
    j = r.code('import sys\nsys.exit(3)')
    assert j.status == 3 and j.err == b'', j
    j = r.code('raise SystemExit("bye")')
    assert j.status == 1 and j.err == b'bye\n', j
    j = r.code('import sys\nsys.exit(None)')
    assert j.status == 0, j
    j = r.code('import sys\nsys.exit(256 + 5)')
    assert j.status == 5, j
    j = r.code('x = 1\n\ndef f():\n    return 1 / 0\nf()\n')
    e = j.etext()
    assert j.status == 1, j
    assert e.startswith('Traceback (most recent call last):\n  File "<string>", line 5, in <module>\n'), e
    assert 'File "<string>", line 4, in f' in e and e.endswith('ZeroDivisionError: division by zero\n'), e
    assert e.count('File ') == 2 and 'run_code' not in e, e
    j = r.code('raise KeyboardInterrupt')
    assert j.status == 130 and 'KeyboardInterrupt' in j.etext() and j.etext().count('File ') == 1, j
    j = r.code('x = (\n')
    e = j.etext()
    assert j.status == 1 and 'File "<string>", line 1' in e and 'SyntaxError' in e and 'Traceback' not in e, j
    j = r.code('import sys\ndef h(t, v, tb):\n    print("hook", t.__name__)\nsys.excepthook = h\nraise ValueError')
    assert j.status == 1 and j.out == b'hook ValueError\n', j
    j = r.code('import atexit\natexit.register(lambda: print("bye"))\nprint("hi")')
    assert j.status == 0 and j.out == b'hi\nbye\n', j
    j = r.code('import threading, time\n'
               'threading.Thread(target=lambda: (time.sleep(0.2), print("thread"))).start()\n')
    assert j.status == 0 and j.out == b'thread\n', j
    j = r.code('import os, sys\nif os.fork() == 0:\n    print("child")\n    sys.exit(5)\n'
               'print("parent", os.waitstatus_to_exitcode(os.wait()[1]))')
    assert j.status == 0 and sorted(j.text().splitlines()) == ['child', 'parent 5'], j
    j = r.code('from multiprocessing import Pool\nwith Pool(2) as p:\n    print(p.map(abs, [-1, -2, -3]))')
    assert j.status == 0 and j.out == b'[1, 2, 3]\n', j
    j = r.code('x = "' + 'a' * (5 * MIB) + '"\nprint(len(x))', timeout=30)
    assert j.status == 0 and j.out == b'%d\n' % (5 * MIB), j
    j = r.code('import os\nos._exit(9)')
    assert j.status == 9, j
    j = r.code('f = open("/work/unclosed", "w")\nf.write("data")\n')
    j2 = r.code('print(open("/work/unclosed").read())')
    assert j.status == 0 and j2.out == b'data\n', (j, j2)
    return ('ok (0, 3, SystemExit msg, 1 + traceback, 130, SyntaxError, excepthook, atexit, threads, fork + exit,'
            ' multiprocessing, 5 MiB of code, os._exit, unclosed files)')


@case
def code_interpreter_state():
    r = shared()
    j = r.code('import sys, os, json\n'
               'print(json.dumps([sys.argv, __name__, sys.path[0], os.getcwd(), sorted(globals()),'
               ' sys.modules["__main__"] is sys.modules[__name__], sys.stdout.line_buffering,'
               ' sys.stdout.encoding, sys.stdin.name, os.getpid() == os.getpgid(0)]))',
               workdir='/tmp')
    v = json.loads(j.out)
    assert j.status == 0, j
    assert v[0] == ['-c'] and v[1] == '__main__' and v[2] == '' and v[3] == '/tmp', v
    assert v[4] == ['__annotations__', '__builtins__', '__doc__', '__loader__', '__name__', '__package__',
                    '__spec__', 'json', 'os', 'sys'], v
    assert v[5] is True and v[6] is False and v[7] == 'utf-8' and v[8] == '<stdin>' and v[9] is True, v
    j = r.code('import sys\nprint(sorted(m for m in ("random", "tempfile", "uuid", "threading") if m in sys.modules))')
    assert j.out == b'[]\n', j  # the runner's modules are all there: none of these
    j = r.code('import sys\nprint(sys.stdout.line_buffering)', line=True)
    assert j.out == b'True\n', j
    j = r.code('import time\nprint("a")\ntime.sleep(0.5)\nprint("b")', line=True)
    assert j.out == b'a\nb\n' and j.t_first_out - j.t_start < 0.35, j
    j = r.code('import os\nprint(open("/proc/self/oom_score_adj").read().strip(), open("/proc/self/status")'
               '.read().split("SigBlk:")[1].split()[0], os.get_blocking(1), sorted(os.listdir("/proc/self/fd")))')
    assert j.out.split()[:3] == [b'1000', b'0000000000000000', b'True'], j
    assert j.out.split(b' ', 3)[3] == b"['0', '1', '1023', '2', '3']\n", j  # 3: the listdir; 1023: the status pipe
    return 'ok'


@case
def env_and_cwd():
    r = shared()
    env = ENV + ['FOO=bar baz', 'EMPTY=', 'EQ=a=b']
    j = r.code('import os, json\nprint(json.dumps(dict(os.environ)))', env=env)
    assert j.status == 0 and json.loads(j.out) == {'PATH': PATH[5:], 'HOME': '/tmp', 'FOO': 'bar baz', 'EMPTY': '',
                                                   'EQ': 'a=b'}, j
    j = r.run(argv=['env'], env=env)
    assert j.status == 0 and sorted(j.text().splitlines()) == sorted(env), j
    j = r.run(argv=['pwd'], workdir='/tmp')
    assert j.out == b'/tmp\n', j
    j = r.code('import os\nprint(os.getcwd())')
    assert j.out == b'/work\n', j
    return 'ok'


@case
def cmd_jobs():
    r = shared()
    j = r.sh('echo hi; echo err >&2; exit 7')
    assert j.status == 7 and j.out == b'hi\n' and j.err == b'err\n', j
    j = r.sh('kill -9 $$')
    assert j.status == 137, j
    j = r.sh('kill -TERM $$')
    assert j.status == 143, j
    j = r.sh('trap "" PIPE INT; cat /proc/self/status | grep -E "^Sig(Ign|Blk)"')
    assert j.status == 0, j
    # 1000 from the first instruction (inherited at the clone); the runner's own back to 0
    j = r.run(argv=['sh', '-c', 'cat /proc/self/oom_score_adj; sleep 0.05; cat /proc/1/oom_score_adj; '
                                'grep -E "^Sig(Ign|Blk)" /proc/self/status'])
    # SigIgn: only glibc's two internal signals (32, 33), as every posix_spawn child of glibc has them
    assert j.out == b'1000\n0\nSigBlk:\t0000000000000000\nSigIgn:\t0000000180000000\n', j
    j = r.run(argv=['ls', '/proc/self/fd'])
    assert j.out == b'0\n1\n2\n3\n', j  # 3: ls's own opendir
    j = r.run(argv=['no-such-program-xyz'])
    assert j.exit is None and j.error == {'what': 'exec', 'errno': 2,
                                          'message': 'no-such-program-xyz: No such file or directory'}, j
    j = r.run(argv=['/etc/passwd'])
    assert j.error and j.error['what'] == 'exec' and j.error['errno'] == 13, j
    j = r.run(argv=['true'], workdir='/nonexistent')
    assert j.error and j.error['what'] == 'chdir' and j.error['errno'] == 2, j
    j = r.code('x = 1', workdir='/nonexistent')
    assert j.error == {'what': 'chdir', 'errno': 2, 'message': '/nonexistent: No such file or directory'}, j
    j = r.start(argv=['sleep', '30'])
    time.sleep(0.1)
    r.write(KILL, j.jid)
    assert j.done.wait(5) and j.status == 137, j
    for delay in (0, 0.001, 0.1):  # a code job killed at once (maybe before its child has the job) or later
        j = r.start(code='import time\ntime.sleep(30)')
        time.sleep(delay)
        r.write(KILL, j.jid)
        assert j.done.wait(5) and j.status == 137, j
    r.alive()
    return 'ok'


@case
def stdin_delivery():
    r = shared()
    data = bytes(range(256)) * 16 + os.urandom(5 * MIB)
    t = time.perf_counter()
    j = r.run(argv=['cat'], stdin=data, timeout=60)
    dt = time.perf_counter() - t
    assert j.status == 0 and j.out == data, (j.status, len(j.out))
    j = r.code('import sys\nd = sys.stdin.buffer.read()\nprint(len(d), d == bytes(range(256)))', stdin=bytes(range(256)))
    assert j.out == b'256 True\n', j
    j = r.code('import sys\nprint(repr(sys.stdin.read()))', stdin='h\u00e9\n'.encode())
    assert j.out == b"'h\xc3\xa9\\n'\n", j
    j = r.run(argv=['sh', '-c', 'head -c 3; exec 0<&-; sleep 0.2; echo done'], stdin=b'x' * (3 * MIB))
    assert j.status == 0 and j.out == b'xxxdone\n', j  # EPIPE: the rest is dropped
    return '5 MiB + every byte value through cat: %.1f MB/s round trip' % (len(data) / dt / 1e6)


@case
def throughput():
    r = shared()
    data = os.urandom(10 * MIB)
    t = time.perf_counter()
    j = r.run(argv=['wc', '-c'], stdin=data, timeout=60)
    din = time.perf_counter() - t
    assert j.out.strip() == str(len(data)).encode(), j
    t = time.perf_counter()
    j = r.run(argv=['head', '-c', str(10 * MIB), '/dev/zero'], timeout=60)
    dout = time.perf_counter() - t
    assert j.status == 0 and len(j.out) == 10 * MIB and j.out.count(0) == 10 * MIB, j.status
    t = time.perf_counter()
    j = r.run(argv=['cat'], stdin=data, timeout=60)
    drt = time.perf_counter() - t
    assert j.out == data
    # for scale: the docker CLI's attach stream alone (a plain container whose PID 1 is `head`)
    p = subprocess.Popen(['docker', 'run', '-i', '--rm', '--label', LABEL, '--label', RUN_LABEL, '--network', 'none',
                          IMAGE, 'sh', '-c',
                          'sleep 0.3; exec head -c %d /dev/zero' % (10 * MIB)], stdout=subprocess.PIPE, bufsize=0)
    got, t0 = 0, None
    try:
        while True:
            d = os.read(p.stdout.fileno(), MIB)
            if not d:
                break
            t0 = t0 or time.perf_counter()
            got += len(d)
        draw = time.perf_counter() - t0
    finally:
        p.kill()
        p.wait()
    return ('10 MiB in %.0f MB/s (%.0f ms), out %.0f MB/s (%.0f ms), cat round trip %.0f ms; raw docker attach '
            'out (no runner) %.0f MB/s' % (len(data) / din / 1e6, din * 1000, len(data) / dout / 1e6, dout * 1000,
                                           drt * 1000, got / draw / 1e6))


@case
def backpressure():
    r = shared()
    # a job that never reads its stdin while 5 MiB of stdin are queued for it: the runner keeps serving
    a = r.start(argv=['sleep', '30'], stdin=os.urandom(5 * MIB), eof=False)
    t = time.perf_counter()
    b = r.code('print("b")', timeout=10)
    t_b = time.perf_counter() - t
    assert b.status == 0 and b.out == b'b\n', b
    r.write(KILL, a.jid)
    assert a.done.wait(5) and a.status == 137, a
    # a job writing 50 MB while the harness does not read for 2 s
    r.reading.clear()
    big = r.start(code='import sys\nb = b"y" * 65536\nfor _ in range(800): sys.stdout.buffer.write(b)')
    time.sleep(0.3)
    c = r.start(code='print("c")')
    time.sleep(1.7)
    r.reading.set()
    assert c.done.wait(10), c
    before = len(big.out)
    assert big.done.wait(60), big
    assert c.status == 0 and c.out == b'c\n' and big.status == 0 and len(big.out) == 800 * 65536, (c, big.status)
    assert c.t_end < big.t_end and before < 8 * MIB, (before, c.t_end, big.t_end)
    return ('ok (second job %.1f ms while 5 MiB stdin queued; during 50 MB unread output the second job ended with'
            ' %.1f MiB of the big one received)' % (t_b * 1000, before / MIB))


@case
def concurrent_jobs():
    r = shared()
    t = time.perf_counter()
    js = [r.start(argv=['sh', '-c', 'sleep 0.5; echo %d' % i]) for i in range(10)]
    js += [r.start(code='import time\ntime.sleep(0.5)\nprint(%d)' % i) for i in range(10)]
    for j in js:
        assert j.done.wait(20), j
    dt = time.perf_counter() - t
    for i, j in enumerate(js):
        assert j.status == 0 and j.out == b'%d\n' % (i % 10), j
    assert dt < 2.5, dt
    return '20 jobs of 0.5 s each in %.2f s' % dt


@case
def background_holds_stdout():
    r = shared()
    t = time.perf_counter()
    j = r.sh('echo before; sleep 30 & echo after')
    dt = time.perf_counter() - t
    assert j.status == 0 and j.out == b'before\nafter\n' and dt < 1, (j, dt)
    j2 = r.code('import subprocess\nsubprocess.Popen(["sh", "-c", "sleep 0.3; echo late"])\nprint("now")')
    assert j2.out == b'now\n', j2
    time.sleep(0.5)
    assert j2.out == b'now\n', j2
    r.alive()
    return 'returned in %.0f ms' % (dt * 1000)


@case
def hostile_proc_fds():
    r = shared()
    j = r.code('import os\nres = []\n'
               'for p, m in (("/proc/1/fd/0", os.O_RDONLY), ("/proc/1/fd/1", os.O_WRONLY), ("/proc/1/fd/0", os.O_WRONLY),'
               ' ("/proc/1/fd/1", os.O_RDONLY), ("/proc/1/mem", os.O_RDONLY)):\n'
               '    try:\n        os.open(p, m)\n        res.append("OPEN " + p)\n'
               '    except OSError as e:\n        res.append(e.errno)\n'
               'try:\n    os.listdir("/proc/1/fd")\n    res.append("LIST")\nexcept OSError as e:\n    res.append(e.errno)\n'
               'print(res)')
    assert j.status == 0 and j.out == b'[13, 13, 13, 13, 13, 13]\n', j
    r.alive()
    return 'ok: %s' % j.text().strip()


@case
def hostile_signals():
    r = shared()
    j = r.sh('kill -STOP 1; kill -KILL 1; kill -TERM 1; kill -INT 1; kill -CHLD 1; echo done')
    assert j.status == 0 and j.out == b'done\n', j
    r.alive()
    j = r.sh('kill -9 -1; echo survived')
    assert j.status == 0 and j.out == b'survived\n', j
    r.alive()
    r.alive()
    # stop the spare, kill the spare: the runner forks another one each time
    j = r.sh('for p in $(ls /proc | grep -E "^[0-9]+$"); do [ "$p" != 1 ] && [ "$p" != $$ ] && '
             'kill -STOP $p 2>/dev/null; done; echo stopped')
    assert j.out == b'stopped\n', j
    time.sleep(0.1)
    r.alive()
    for _ in range(3):
        r.sh('kill -9 -1')
        r.alive()
    # the spare killed right before the next job comes: that job (and its stdin) goes to a new child
    for i in range(15):
        r.sh('kill -9 -1')
        j = r.code('import sys\nprint(len(sys.stdin.buffer.read()))', stdin=b'z' * (100000 + i))
        assert j.status == 0 and j.out == b'%d\n' % (100000 + i), j
    return 'ok'


@case
def hostile_ptrace():
    r = shared()
    j = r.code('import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n'
               'print(libc.ptrace(0x4206, 1, 0, 0), ctypes.get_errno())')
    assert j.out == b'-1 1\n', j
    r.alive()
    return 'PTRACE_SEIZE of PID 1: %s' % j.text().strip()


@case
def hostile_planted_modules():
    r = shared()
    j = r.sh('for d in /work /tmp; do for m in json selectors struct os signal ctypes time io warnings errno '
             'traceback linecache socket array select atexit encodings; do echo "import os; os._exit(99)" > $d/$m.py;'
             ' done; done; echo planted')
    assert j.out == b'planted\n', j
    for _ in range(3):
        r.alive()
        j = r.sh('echo hi')
        assert j.status == 0 and j.out == b'hi\n', j
        j = r.code('import json, struct, selectors\nprint(json.dumps(1))', workdir='/tmp')
        assert j.status == 0 and j.out == b'1\n', j
    j = r.code('x = 1 / 0', workdir='/work')  # the traceback path imports nothing new
    assert j.status == 1 and 'ZeroDivisionError' in j.etext(), j
    r.sh('rm -f /work/*.py /tmp/*.py')
    return 'ok'


@case
def hostile_fake_frames():
    r = shared()
    fake = struct.pack('>IBI', 29, 0x84, 1) + b'{"status": 0, "oomKills": 0}'
    j = r.code('import os, sys\nsys.stdout.buffer.write(%r)\nsys.stdout.flush()\nos.write(2, %r)\nsys.exit(4)'
               % (fake, fake))
    assert j.status == 4 and j.out == fake and j.err == fake, j
    assert not r.violations, r.violations
    return 'ok'


@case
def hostile_forged_status():
    # a job writes an exit status into the status channel of another job of the container (same uid, dumpable):
    # through /proc/<pid>/fd/<n> of every other process; the other job's verdict and output must stay its own
    r = shared()
    b = r.start(code='import os, sys\nprint("B", os.getpid(), flush=True)\nsys.stdin.read()\nprint("B done")\n'
                     'raise SystemExit(9)', eof=False)
    end = time.time() + 20
    while b'B ' not in b.out and time.time() < end:
        time.sleep(0.01)
    a = r.code('import os\nhit = []\nfor p in os.listdir("/proc"):\n'
               '    if not p.isdigit() or int(p) == os.getpid():\n        continue\n'
               '    try:\n        fds = os.listdir("/proc/%s/fd" % p)\n    except OSError:\n        continue\n'
               '    for n in fds:\n        if n in ("0", "1", "2"):\n            continue\n'
               '        try:\n            fd = os.open("/proc/%s/fd/%s" % (p, n), os.O_WRONLY | os.O_NONBLOCK)\n'
               '        except OSError:\n            continue\n'
               '        try:\n            os.write(fd, b"exit\\x000")\n            hit.append("%s/%s" % (p, n))\n'
               '        except OSError:\n            pass\n        os.close(fd)\nprint(hit)')
    assert a.status == 0, a
    r.write(STDIN_EOF, b.jid)
    assert b.done.wait(20), b
    assert b.status == 9 and b.out.endswith(b'B done\n'), (b, a)
    r.alive()
    return 'ok: the job reached %s' % a.text().strip()


@case
def orphans_reaped():
    r = shared()
    j = r.sh('(sleep 1 &) ; exit 0')
    assert j.status == 0, j
    for i in range(5):
        r.sh('(sh -c "exit 0" &) ; (true &) ; exit 0')
    time.sleep(2)
    j = r.code('import os\nz = []\nfor p in os.listdir("/proc"):\n    if p.isdigit():\n'
               '        try:\n            s = open("/proc/%s/stat" % p).read()\n        except OSError:\n'
               '            continue\n        if s.rsplit(")", 1)[1].split()[0] == "Z":\n            z.append(s)\n'
               'print(z)')
    assert j.out == b'[]\n', j
    return 'no zombies'


@case
def oom():
    r = new_runner()
    before = r.hello['oomKills']
    j = r.code('b = b"x" * (300 << 20)\nprint("survived")', timeout=60)
    assert j.status == 137 and j.exit['oomKills'] > before, j
    r.alive()
    j2 = r.code('print(1)')
    assert j2.exit['oomKills'] == j.exit['oomKills'], j2
    j3 = r.sh('python3 -c "b = b\\"x\\" * (300 << 20)"; echo "status $?"', timeout=60)  # a cmd job's child
    assert j3.out == b'status 137\n' and j3.exit['oomKills'] > j2.exit['oomKills'], j3
    r.alive()
    r.close()
    return 'status 137, oomKills %d -> %d -> %d (code job, then a cmd job\'s child), runner alive' % (
        before, j.exit['oomKills'], j3.exit['oomKills'])


@case
def oom_between_jobs():
    # an OOM kill after a job's EXIT (its background process) and before the next job: not the next job's
    r = new_runner()
    j = r.sh('(python3 -c "a = bytearray(1 << 30)" &) ; exit 0')
    assert j.status == 0, j
    end = time.time() + 30
    n = 0
    while time.time() < end and n < 1:
        ev = subprocess.run(['docker', 'exec', r.name, 'sh', '-c', 'cat /sys/fs/cgroup/memory.events '
                             '/sys/fs/cgroup/memory/memory.oom_control 2>/dev/null'], stdout=subprocess.PIPE).stdout
        n = int(([l.split()[1] for l in ev.decode().splitlines() if l.startswith('oom_kill ')] or ['0'])[0])
        time.sleep(0.05)
    assert n >= 1, 'no OOM kill of the background process'
    k = r.code('import os, signal\nos.kill(os.getpid(), signal.SIGKILL)')
    assert k.status == 137, k
    assert k.exit['oomKillsAtStart'] == k.exit['oomKills'] == n, (k, j)
    r.close()
    r.kill()
    return 'ok: EXIT %r after %r' % (k.exit, j.exit)


@case
def eof_ends_container():
    r = new_runner()
    r.alive()
    bg = r.start(argv=['sleep', '60'])
    time.sleep(0.1)
    t = time.perf_counter()
    r.p.stdin.close()
    r.p.wait(10)
    dt = time.perf_counter() - t
    gone = subprocess.run(['docker', 'ps', '-aq', '--filter', 'name=' + r.name], stdout=subprocess.PIPE).stdout
    assert dt < 1.0 and not gone.strip(), (dt, gone)
    return 'container gone %.0f ms after EOF' % (dt * 1000)


@case
def deadline_ends_container():
    t = time.perf_counter()
    r = Runner(deadline=3)
    RUNNERS.append(r)
    r.wait_hello()
    r.alive()
    r.start(argv=['sleep', '60'])
    r.p.wait(10)
    dt = time.perf_counter() - t
    assert 2.9 < dt < 4.0, dt
    return 'ended %.2f s after docker run (deadline +3 s)' % dt


@case
def protocol_nonsense():
    r = new_runner()
    r.write(STDIN, 99, b'x')  # a job that was never started
    r.p.wait(5)
    assert r.p.returncode == 2 and b'never started' in bytes(r.stderr), (r.p.returncode, bytes(r.stderr))
    r = new_runner()
    r.write(0x7f, 0)
    r.p.wait(5)
    assert r.p.returncode == 2, r.p.returncode
    return 'exit 2 on an unknown job / type'


# ------------------------------------------------------------------------------------------------ sessions

def procs(r, pat):
    # processes of the container whose command line contains pat (a cmd job; itself excluded)
    j = r.run(argv=['python3', '-c', 'import os, sys\nn = []\nfor p in os.listdir("/proc"):\n'
                                     '    if p.isdigit() and int(p) != os.getpid():\n        try:\n'
                                     '            c = open("/proc/%s/cmdline" % p, "rb").read()\n'
                                     '        except OSError:\n            continue\n'
                                     '        if sys.argv[1].encode().replace(b"%00", b"\\0") in c:\n            n.append(p)\nprint(len(n))',
                    pat.replace('\x00', '%00')])
    assert j.status == 0, j
    return int(j.out)


def ok_cell(r, code, **kw):
    j = r.cell(code, **kw)
    assert j.status == 0 and j.alive and j.exit['report'] == {'error': None}, j
    return j


@case
def session_state():
    r = new_runner()
    j = ok_cell(r, 'import os, json\nx = 41\ndef f(a):\n    return a + 1\nos.environ["FOO"] = "bar"\n'
                   'os.chdir("/tmp")\nprint("one")')
    assert j.out == b'one\n' and j.interp == 1, j
    j = ok_cell(r, 'x = f(x)\nprint(x, json.dumps(os.environ["FOO"]), os.getcwd(), __name__)')
    assert j.out == b'42 "bar" /tmp __main__\n' and j.interp == 1, j
    j = ok_cell(r, 'import sys\nprint(sys.argv, sys.path[0] == "", sys.stdin.name, sys.stdout.line_buffering,'
                   ' open("/proc/self/oom_score_adj").read().strip(), sorted(os.listdir("/proc/self/fd")))')
    assert j.out == b"[''] True <stdin> False 1000 ['0', '1', '1023', '2', '3']\n", j
    j = r.run(argv=['sh', '-c', 'echo $FOO; pwd'], session=True)
    assert j.status == 0 and j.out == b'bar\n/tmp\n', j
    j = r.run(argv=['sh', '-c', 'echo "[$FOO]"; pwd'])
    assert j.status == 0 and j.out == b'[]\n/work\n', j
    j = ok_cell(r, 'import sys\nprint(sys.stdout.line_buffering)\nprint(input())', line=True, stdin=b'typed\n')
    assert j.out == b'True\ntyped\n', j
    j = ok_cell(r, 'import sys, io\nsys.stdout = io.StringIO()\nsys.stderr = io.StringIO()\nprint("swallowed")')
    assert j.out == b'', j
    j = ok_cell(r, 'import sys\nprint("back")\nprint("e", file=sys.stderr)\nsys.stdout.close()')
    assert j.out == b'back\n' and j.err == b'e\n', j
    j = ok_cell(r, 'print("again", x)')
    assert j.out == b'again 42\n', j
    j = ok_cell(r, 'import os\nif os.fork() == 0:\n    print("child")\nelse:\n    os.wait()\n    print("parent")')
    assert sorted(j.text().split()) == ['child', 'parent'], j
    j = ok_cell(r, 'print(x)')
    assert j.out == b'42\n' and j.interp == 1, j
    t = time.perf_counter()
    j = ok_cell(r, 'import subprocess\nsubprocess.Popen(["sh", "-c", "sleep 0.3; echo late; echo late >&2"])\nprint("now")')
    assert j.out == b'now\n' and time.perf_counter() - t < 0.25, j
    time.sleep(0.5)
    j = ok_cell(r, 'print("next")')
    assert j.out == b'next\n' and j.err == b'', j
    for i in range(5):  # 5 x 5 MiB: linecache keeps at most 16 MiB of sources
        ok_cell(r, 'z%d = 1\n' % i + '#' * (5 * MIB), timeout=60)
    j = ok_cell(r, 'import linecache\nprint(sum(v[0] for k, v in linecache.cache.items() if k.startswith("<cell-")) <= 16 << 20)')
    assert j.out == b'True\n', j
    big = 'y = "%s"\nprint(len(y))' % ('a' * (10 * MIB))
    j = ok_cell(r, big, timeout=60)
    assert j.out == b'%d\n' % (10 * MIB), j
    j = r.cell('x = 1', workdir='/nonexistent')  # the interpreter runs: its workdir is not used
    assert j.status == 0 and j.interp == 1, j
    assert not r.violations, r.violations
    r.close()
    r.kill()
    return 'ok (names, functions, imports, os.environ, cwd, session cmd env/cwd, stdin, replaced/closed std*, fork, 10 MiB cell)'


@case
def session_errors():
    r = new_runner()
    j = r.cell('x = 1\n\ndef g():\n    return 1 / 0\ng()\n')
    e = j.error_
    assert j.status == 1 and j.alive and e['name'] == 'ZeroDivisionError' and e['value'] == 'division by zero', j
    t = e['traceback']
    assert t.startswith('Traceback (most recent call last):\n  File "<cell-1>", line 5, in <module>\n    g()\n'), t
    assert 'File "<cell-1>", line 4, in g\n    return 1 / 0\n' in t and t.endswith('ZeroDivisionError: division by zero\n'), t
    assert t.count('File ') == 2 and '<string>' not in t and j.out == b'' and j.err == b'', j
    j = r.cell('import sys\nprint(sys.last_type.__name__, x)')
    assert j.out == b'ZeroDivisionError 1\n', j
    j = r.cell('x = (\n')
    e = j.error_
    assert j.status == 1 and e['name'] == 'SyntaxError' and 'File "<cell-3>", line 1' in e['traceback'], j
    assert 'Traceback' not in e['traceback'], e
    j = r.cell('class E(Exception):\n    class Inner(Exception):\n        pass\ntry:\n    {}["k"]\nexcept KeyError:\n'
               '    raise E.Inner("v")')
    e = j.error_
    assert e['name'] == 'E.Inner' and e['value'] == 'v' and 'KeyError' in e['traceback'], j
    assert 'During handling of the above exception' in e['traceback'] and '<string>' not in e['traceback'], e
    j = r.cell('raise SystemExit')
    assert j.status == 0 and j.exit['report'] == {'error': None} and j.alive, j
    j = r.cell('import sys\nsys.exit(3)')
    assert j.status == 3 and j.error_ == {'name': 'SystemExit', 'value': '3', 'traceback': ''} and j.alive, j
    j = r.cell('raise SystemExit("bye")')
    assert j.status == 1 and j.error_ == {'name': 'SystemExit', 'value': 'bye', 'traceback': ''} and j.err == b'', j
    j = r.cell('raise KeyboardInterrupt')
    assert j.status == 1 and j.error_['name'] == 'KeyboardInterrupt', j
    j = r.cell('class B(Exception):\n    def __str__(self):\n        raise RuntimeError\nraise B')
    assert j.status == 1 and j.error_['name'] == 'B' and j.alive, j
    j = r.cell('raise ValueError("v" * 100000 + "\\u00e9" * 100000)')
    assert j.status == 1 and len(j.error_['value']) == 65536 and j.error_['traceback'].endswith('\n'), j.exit['status']
    j = r.cell('import os\nos.environ["BIG"] = "b" * (2 << 20)\nraise ValueError("\\x00" * 262144)')
    assert j.status == 1 and j.alive and j.error_['name'] == 'ValueError', j.exit['status']
    j = r.cell('del os.environ["BIG"]\nprint(x)')
    assert j.out == b'1\n' and j.interp == 1, j
    assert not r.violations, r.violations
    r.close()
    r.kill()
    return 'ok (user frames only, SyntaxError, chained, SystemExit 0/3/msg, KeyboardInterrupt, bad __str__, long fields)'


@case
def session_interrupt():
    r = new_runner()
    ok_cell(r, 'x = 1')
    res = []
    for code in ('while True: pass', 'import time\ntime.sleep(100)', 'x = 0\nwhile True:\n    x += 1'):
        j = r.start(code=code, cell=True)
        time.sleep(0.3)
        t = time.perf_counter()
        r.write(INTERRUPT, j.jid)
        assert j.done.wait(5), j
        res.append('%.1f ms' % ((j.t_end - t) * 1000))
        e = j.error_
        assert j.status == 1 and j.alive and e['name'] == 'KeyboardInterrupt' and j.interp == 1, j
        assert '<string>' not in e['traceback'] and 'File "<cell-%d>"' % j.jid in e['traceback'], e
    j = ok_cell(r, 'print(x > 0)')
    assert j.out == b'True\n', j
    # INTERRUPT right behind the JOB (before the interpreter took the cell): it still interrupts this cell
    for _ in range(20):
        j = r.start(code='import time\ntime.sleep(100)', cell=True)
        r.write(INTERRUPT, j.jid)
        assert j.done.wait(5) and j.status == 1 and j.error_['name'] == 'KeyboardInterrupt', j
    # INTERRUPT racing the end of a cell: never lands in the next one
    for _ in range(20):
        j = r.start(code='x = 2', cell=True)
        r.write(INTERRUPT, j.jid)
        assert j.done.wait(5) and j.alive, j
        j = ok_cell(r, 'import time\ntime.sleep(0.01)')
    ok_cell(r, 'x = 2')  # (each `x = 2` above may have been interrupted before it ran: the race is the point)
    # a trailing SIGINT from a process of the cell after it ended (between cells): dropped
    ok_cell(r, 'import subprocess, os\nsubprocess.Popen(["sh", "-c", "sleep 0.2; kill -INT %d" % os.getpid()])')
    time.sleep(0.5)
    j = ok_cell(r, 'import time\ntime.sleep(0.3)\nprint("fine")')
    assert j.out == b'fine\n', j
    ok_cell(r, 'import os, threading, time, signal\n'
               'threading.Thread(target=lambda: [time.sleep(0.1)] + [os.kill(os.getpid(), signal.SIGINT) or time.sleep(0.01) for _ in range(30)], daemon=True).start()')
    time.sleep(0.6)
    j = ok_cell(r, 'import time\ntime.sleep(0.2)\nprint("fine")')
    # INTERRUPT of code and cmd jobs: SIGINT to the process group
    j = r.start(code='import time\ntime.sleep(100)')
    time.sleep(0.3)
    r.write(INTERRUPT, j.jid)
    assert j.done.wait(5) and j.status == 130 and 'KeyboardInterrupt' in j.etext(), j
    j = r.start(argv=['sleep', '100'])
    time.sleep(0.1)
    r.write(INTERRUPT, j.jid)
    assert j.done.wait(5) and j.status == 130, j
    r.write(INTERRUPT, j.jid)  # an ended job: ignored
    j = ok_cell(r, 'print(x)')
    assert j.out == b'2\n' and j.interp == 1, j
    assert not r.violations, r.violations
    r.close()
    r.kill()
    # INTERRUPT right behind the first JOB of a container (the interpreter is not ready yet: the cell waits for it)
    r = new_runner()
    j = r.start(code='import time\ntime.sleep(100)', cell=True)
    r.write(INTERRUPT, j.jid)
    assert j.done.wait(5) and j.status == 1 and j.error_['name'] == 'KeyboardInterrupt' and j.alive, j
    j = ok_cell(r, 'import time\ntime.sleep(0.05)\nprint("fine")')
    assert j.out == b'fine\n' and j.interp == 1, j
    assert not r.violations, r.violations
    r.close()
    r.kill()
    return 'ok; KeyboardInterrupt %s after INTERRUPT (busy loop, sleep, loop)' % ', '.join(res)


@case
def session_reset():
    r = new_runner()
    ok_cell(r, 'x = 1')
    sh = ('import subprocess\nsubprocess.Popen(["setsid", "sh", "-c", "sleep 1001"])\n'
          'subprocess.Popen(["sh", "-c", "(sleep 1002 &) ; exit 0"])\n'
          'import os\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n        os.execvp("sleep", ["sleep", "1003"])\n'
          '    os._exit(0)\nos.wait()\n')
    ok_cell(r, sh)
    bg = r.start(argv=['sleep', '1004'])
    time.sleep(0.3)
    assert procs(r, 'sleep\x00100') == 4, 'background processes not there'
    j = r.start(code='import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True: pass', cell=True)
    time.sleep(0.3)
    r.write(INTERRUPT, j.jid)
    time.sleep(0.3)
    assert not j.done.is_set(), j
    t = time.perf_counter()
    at, rd, pending = r.reset()
    dt = (at - t) * 1000
    assert rd == {'left': 0} and pending == [], (rd, pending)
    assert j.status == 137 and j.alive is False and j.exit['report'] is None and j.interp == 1, j
    assert bg.status == 137, bg
    assert procs(r, 'sleep\x00100') == 0
    j = r.cell('print(x)')
    assert j.interp == 2 and j.alive and j.error_['name'] == 'NameError', j
    # a fork bomb under --pids-limit 64
    j = r.start(code='import os\nwhile True:\n  try: os.fork()\n  except OSError: pass', cell=True)
    time.sleep(1)
    t = time.perf_counter()
    at, rd, pending = r.reset()
    dt2 = (at - t) * 1000
    assert rd == {'left': 0} and pending == [], (rd, pending)
    assert j.status == 137 and j.alive is False and j.interp == 2, j
    j = ok_cell(r, 'print("after", 1)')
    assert j.interp == 3 and j.out == b'after 1\n', j
    r.alive()
    j = r.sh('echo hi')
    assert j.out == b'hi\n', j
    at, rd, pending = r.reset()  # nothing running
    assert rd == {'left': 0}, rd
    j = ok_cell(r, 'x = 5')
    assert j.interp == 4, j
    r2 = new_runner()  # RESET with no interpreter ever: none started
    at, rd, pending = r2.reset()
    assert rd == {'left': 0}
    r2.alive()
    j = ok_cell(r2, 'print(1)')
    assert j.interp == 1, j
    assert not r.violations and not r2.violations, (r.violations, r2.violations)
    for x in (r, r2):
        x.close()
        x.kill()
    return 'ok: RESET with setsid/double-fork/cmd/SIGINT-ignoring cell %.1f ms; fork bomb %.1f ms; left 0' % (dt, dt2)


@case
def session_late_thread():
    r = new_runner()
    ok_cell(r, 'import threading, time, sys\ndef t():\n    for i in range(10):\n        time.sleep(0.05)\n'
               '        print("late", i)\n        print("late err", i, file=sys.stderr)\nthreading.Thread(target=t).start()\n'
               'print("first")')
    time.sleep(0.2)
    j = ok_cell(r, 'print("second")')
    assert j.out == b'second\n' and j.err == b'', j
    time.sleep(0.6)
    j = ok_cell(r, 'import time\ntime.sleep(0.05)\nprint("third")')
    assert j.out == b'third\n' and j.err == b'', j
    # a thread writing on the status socket between cells: the interpreter is replaced, the next cell runs
    ok_cell(r, 'import threading, time, os\nthreading.Thread(target=lambda: (time.sleep(0.1), os.write(1023, b"junk"))).start()')
    time.sleep(0.4)
    j = ok_cell(r, 'print(1)')
    assert j.interp == 2, j
    assert not r.violations, r.violations
    r.close()
    r.kill()
    return 'ok'


@case
def session_hostile_channel():
    r = new_runner()
    n = 1
    done = ('import json, os\nb = json.dumps({"t": "done", "status": 0, "error": None, "cwd": "/", "env": []}).encode()\n'
            'os.write(1023, len(b).to_bytes(4, "big") + b)\n')
    bad = [('garbage', 'import os, time\nos.write(1023, b"garbage!")\ntime.sleep(1)'),
           ('huge length', 'import os, time\nos.write(1023, b"\\xff\\xff\\xff\\xff")\ntime.sleep(1)'),
           ('bad JSON', 'import os, time\nos.write(1023, b"\\x00\\x00\\x00\\x02{]")\ntime.sleep(1)'),
           ('bad shape', 'import os, time, json\nb = json.dumps({"t": "done", "status": 300, "error": None, "cwd": "/",'
                         ' "env": []}).encode()\nos.write(1023, len(b).to_bytes(4, "big") + b)\ntime.sleep(1)'),
           ('long cwd', 'import os, time, json\nb = json.dumps({"t": "done", "status": 0, "error": None, "cwd": "/" * 5000,'
                        ' "env": []}).encode()\nos.write(1023, len(b).to_bytes(4, "big") + b)\ntime.sleep(1)'),
           ('long name', 'import os, time, json\nb = json.dumps({"t": "done", "status": 0, "error": {"name": "n" * 300,'
                         ' "value": "", "traceback": ""}, "cwd": "/", "env": []}).encode()\nos.write(1023, len(b).to_bytes(4, "big") + b)\ntime.sleep(1)'),
           ('a start message', 'import os, time\nos.write(1023, b"\\x00\\x00\\x00\\x0c{\\"t\\":\\"start\\"}")\ntime.sleep(1)'),
           ('partial then exit', 'import os\nos.write(1023, b"\\x00\\x00\\x00")\nos._exit(0)'),
           ('closed socket', 'import os, time\nos.close(1023)\ntime.sleep(0.2)'),
           ('SIGSTOP', 'import os, signal\nos.kill(os.getpid(), signal.SIGSTOP)'),
           ('os._exit(3)', 'import os\nos._exit(3)')]
    res = []
    for label, code in bad:
        ok_cell(r, 'x = 7')
        j = r.cell(code)
        assert j.alive is False and j.exit['report'] is None and j.interp == n, (label, j)
        res.append('%s: %d' % (label, j.status))
        if label == 'os._exit(3)':
            assert j.status == 3, j
        n += 1
        j = r.cell('print(x)')
        assert j.interp == n and j.error_['name'] == 'NameError', (label, j)
    # a forged done: ends the cell early (the user's own word); the real one later: killed, replaced
    ok_cell(r, 'x = 7')
    j = r.cell(done + 'import time\ntime.sleep(0.3)')
    assert j.interp == n and j.status == 0, j
    time.sleep(0.6)
    n += 1
    j = r.cell('print(x)')
    assert j.interp == n and j.error_['name'] == 'NameError', j
    # a forged done and garbage at once, from an interpreter slow to die (64 MiB to tear down): killed after the done
    # (or with the cell, when both came in one read); the next cell, sent right after the EXIT, gets a fresh
    # interpreter instead of dying with the old one before its reap
    for _ in range(3):
        ok_cell(r, 'x = 7')
        j = r.cell('big = b"x" * (64 << 20)\n' + done + 'os.write(1023, b"\\xff" * 64)\nimport time\ntime.sleep(1)')
        assert j.interp == n and (j.status == 0 or j.alive is False), j
        n += 1
        j = r.cell('print(x)')
        assert j.interp == n and j.alive and j.error_['name'] == 'NameError', j
    # forged bytes on the cell's pipes and a fake frame: just output
    fake = struct.pack('>IBI', 2, EXIT, 99) + b'{}'
    j = ok_cell(r, 'import sys\nsys.stdout.buffer.write(%r)' % fake)
    assert j.out == fake, j
    # killed between cells: the next cell gets the next one (started eagerly)
    j = ok_cell(r, 'import os\nprint(os.getpid())')
    pid = int(j.out)
    k = r.sh('kill -9 %d' % pid)
    assert k.status == 0, k
    time.sleep(0.2)
    n += 1
    j = ok_cell(r, 'import os\nprint(os.getpid())')
    assert j.interp == n and int(j.out) != pid, j
    # KILL of a running cell
    j = r.start(code='import time\ntime.sleep(100)', cell=True)
    time.sleep(0.2)
    r.write(KILL, j.jid)
    assert j.done.wait(5) and j.status == 137 and j.alive is False and j.interp == n, j
    n += 1
    j = ok_cell(r, 'print(2)')
    assert j.interp == n, j
    r.alive()
    assert not r.violations, r.violations
    r.close()
    r.kill()
    r = new_runner()  # the first cell's workdir does not exist: ERROR chdir; the next starts one
    j = r.cell('x = 1', workdir='/nonexistent')
    assert j.error == {'what': 'chdir', 'errno': 2, 'message': '/nonexistent: No such file or directory'}, j
    j = ok_cell(r, 'print(3)')
    assert j.out == b'3\n', j
    assert not r.violations, r.violations
    r.close()
    r.kill()
    return 'ok (%s; forged done; killed between cells; KILL; ERROR chdir)' % ', '.join(res)


@case
def session_output_backpressure():
    r = new_runner()
    ok_cell(r, 'x = 1')
    r.reading.clear()
    j = r.start(code='import sys\nb = b"z" * 65536\nfor _ in range(80):\n    sys.stdout.buffer.write(b)\n'
                     'sys.stdout.buffer.flush()\nprint("end", x)', cell=True)
    time.sleep(1.5)
    r.reading.set()
    assert j.done.wait(30), j
    assert j.status == 0 and len(j.out) == 80 * 65536 + 6 and j.out.endswith(b'end 1\n') and j.alive, j.exit
    j = ok_cell(r, 'print(x)')
    assert j.out == b'1\n', j
    assert not r.violations, r.violations
    r.close()
    r.kill()
    return 'ok: 5 MiB with 1.5 s of backpressure'


@case
def session_latency():
    r = new_runner()
    ok_cell(r, 'x = 0')
    for _ in range(20):
        ok_cell(r, 'x += 1')
    xs = latency(r, 300, {'code': 'x += 1', 'cell': True}, 0.005)
    j = ok_cell(r, 'print(x)')
    assert j.out == b'320\n' and j.interp == 1, j
    cs = latency(r, 100, {'code': 'x = 1'}, 0.005)  # for scale: code jobs through the same attach stream
    # inside the container (no docker attach): a nested runner driven over pipes by a code job
    j = r.code('import os, subprocess, sys, time, struct, json\nsrc = sys.stdin.read()\n'
               'p = subprocess.Popen([sys.executable, "-I", "-c", src, str(time.time() + 60), "3"], cwd="/",'
               ' stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)\n'
               'def frame():\n    h = b""\n    while len(h) < 9:\n        h += os.read(p.stdout.fileno(), 9 - len(h))\n'
               '    n, t, j = struct.unpack(">IBI", h)\n    b = b""\n    while len(b) < n:\n'
               '        b += os.read(p.stdout.fileno(), n - len(b))\n    return t, j, b\n'
               'frame()\nts = []\nfor i in range(1, 321):\n'
               '    hb = json.dumps({"kind": "cell", "env": ["PATH=/usr/bin:/bin"], "workdir": "/tmp", "name": "<cell-%d>" % i}).encode()\n'
               '    time.sleep(0.005)\n    t0 = time.perf_counter()\n'
               '    p.stdin.write(struct.pack(">IBI", 4 + len(hb) + 6, 1, i) + struct.pack(">I", len(hb)) + hb + b"x += 1" if i > 1 else'
               ' struct.pack(">IBI", 4 + len(hb) + 5, 1, i) + struct.pack(">I", len(hb)) + hb + b"x = 0")\n'
               '    while True:\n        t, j, b = frame()\n        if t == 0x84:\n            break\n'
               '    assert json.loads(b)["status"] == 0, b\n    ts.append((time.perf_counter() - t0) * 1000)\n'
               'p.stdin.close()\np.wait()\nts = sorted(ts[20:])\nprint("%.3f %.3f %.3f" % (ts[len(ts) // 2], ts[len(ts) * 9 // 10], ts[-3]))',
               stdin=SRC.encode(), timeout=60)
    assert j.status == 0, j
    inner = j.text().split()
    r.close()
    r.kill()
    return ('`x += 1` cell round trip p50 %.2f ms, p90 %.2f, p99 %.2f (300, 5 ms gaps; code job `x = 1` p50 %.2f ms);'
            ' inside the container (nested runner, no docker attach): p50 %s ms, p90 %s, p99 %s; load %s' % (
                pct(xs, 50), pct(xs, 90), pct(xs, 99), pct(cs, 50), inner[0], inner[1], inner[2],
                open('/proc/loadavg').read().split()[0]))


def latency(r, n, kw, idle):
    xs = []
    for _ in range(n):
        if idle:
            time.sleep(idle)
        j = r.run(**kw)
        if j.status != 0:
            time.sleep(0.3)
            raise AssertionError('%r; container exit %r; stderr %r' % (j, r.p.poll(), bytes(r.stderr[-2000:])))
        xs.append((j.t_end - j.t_start) * 1000)
    return xs


@case
def latencies():
    # targets (this machine, quiet): code p50 <= 4 ms, sh p50 <= 5 ms back to back. The machine is shared: when a
    # round misses them, up to two more rounds run (each in a fresh container) and the best one counts.
    # A container removed from outside (the integration tests' global teardown force-removes every container
    # labelled io.container-pool.test made during their run, ours included) only costs its round.
    rounds = []
    for attempt in range(3):
        r = new_runner()
        res = []
        try:
            for label, kw in (('code x = 1', {'code': 'x = 1'}),
                              ("sh -c 'echo hi'", {'argv': ['sh', '-c', 'echo hi']})):
                latency(r, 20, kw, 0)
                b2b = latency(r, 300, kw, 0)
                settled = latency(r, 300, kw, 0.02)
                res.append((label, b2b, settled))
        except AssertionError:
            if r.p.poll() != 137 or r.stderr:
                raise
            rounds.append(['round %d: the container was killed from outside (exit 137, runner silent)' % (attempt + 1)])
            r.kill()
            continue
        r.close()
        r.kill()
        load = open('/proc/loadavg').read().split()[0]
        lines = ['round %d (load %s)' % (attempt + 1, load)]
        for label, b2b, settled in res:
            lines.append('%s: back to back p50 %.2f p99 %.2f ms; settled p50 %.2f p99 %.2f ms' % (
                label, pct(b2b, 50), pct(b2b, 99), pct(settled, 50), pct(settled, 99)))
        rounds.append(lines)
        if pct(res[0][1], 50) <= 4 and pct(res[1][1], 50) <= 5:
            return '\n    '.join(sum(rounds, []))
    raise AssertionError('\n    '.join(sum(rounds, [])))


# ---- rich outputs (protocol 3)

def rich(r, code, outputs=(32, MIB), **kw):
    j = r.cell(code, outputs=outputs, **kw)
    assert j.status == 0 and j.alive and j.exit['report'] == {'error': None}, j
    return j


def datas(j):
    return [(o['type'], o['data']) for o in j.outputs]


def png_size(b64):
    import base64
    b = base64.b64decode(b64)
    assert b[:8] == b'\x89PNG\r\n\x1a\n', b[:16]
    return struct.unpack('>II', b[16:24])


@case
def rich_outputs():
    import base64
    r = new_runner()
    j = rich(r, 'x = 40\nx + 2')
    assert datas(j) == [('result', {'text/plain': '42'})] and j.exit['outputsDropped'] == 0, j
    j = rich(r, 'print(_)\nx + 2;  # shows nothing')
    assert j.out == b'42\n' and j.outputs == [], j
    # `_` is the code's own once it binds it (gettext's `_`, as IPython leaves it); deleted, it is the last result again
    j = rich(r, 'from gettext import gettext as _\n1')
    j = rich(r, '_("hi")')
    assert datas(j) == [('result', {'text/plain': "'hi'"})], j
    j = rich(r, 'del _\n2')
    j = rich(r, '_ + 1')
    assert datas(j) == [('result', {'text/plain': '3'})], j
    j = rich(r, '_ * 2')
    assert datas(j) == [('result', {'text/plain': '6'})], j
    j = rich(r, 'import gettext\ndel _\ngettext.install("x")\n4')
    j = rich(r, '_("in builtins")')
    assert datas(j) == [('result', {'text/plain': "'in builtins'"})], j
    j = rich(r, 'import builtins\ndel builtins._\n5')
    j = rich(r, '_')
    assert datas(j) == [('result', {'text/plain': '5'})], j
    for code in ('None', 'x = 1', 'def f():\n    return 1', 'x; y = 2'):
        j = rich(r, code)
        assert j.outputs == [], (code, j)
    j = rich(r, 'class H:\n    def _repr_html_(self):\n        return "<b>h</b>"\n    def __repr__(self):\n'
                '        return "H()"\n'
                'class M:\n    def _repr_mimebundle_(self, include=None, exclude=None):\n'
                '        return {"text/markdown": "*m*", "application/json": {"a": [1, 2]}, "x/unknown": "?"}, {}\n'
                'class P:\n    def _repr_png_(self):\n        return b"\\x89PNG fake"\n'
                'display(H(), M(), P(), 3)\n"tail"')
    d = datas(j)
    assert [t for t, _ in d] == ['display'] * 4 + ['result'], j
    assert d[0][1] == {'text/html': '<b>h</b>', 'text/plain': 'H()'}, d[0]
    assert set(d[1][1]) == {'text/markdown', 'application/json', 'text/plain'}, d[1]
    assert d[1][1]['application/json'] == {'a': [1, 2]} and d[1][1]['text/plain'].startswith('<__main__.M object'), d
    assert base64.b64decode(d[2][1]['image/png']) == b'\x89PNG fake', d[2]
    assert d[3][1] == {'text/plain': '3'} and d[4][1] == {'text/plain': "'tail'"}, d
    # a broken formatter: the text form still comes, one line on stderr, the cell succeeds
    j = rich(r, 'class B:\n    def _repr_html_(self):\n        raise ValueError("no html")\n'
                '    def _repr_json_(self):\n        return float("nan")\n    def _repr_svg_(self):\n        return 7\n'
                '    def __repr__(self):\n        return "B!"\nB()')
    assert datas(j) == [('result', {'text/plain': 'B!'})], j
    e = j.etext()
    assert '_repr_html_ of B failed: ValueError: no html' in e and '_repr_svg_ of B failed' in e, e
    assert '_repr_json_ of B failed' in e, e
    # classes, objects that claim every attribute, a repr that raises: text/plain only
    j = rich(r, 'class A:\n    def _repr_html_(self):\n        return "x"\n'
                'class Any:\n    def __getattr__(self, n):\n        return lambda *a, **k: "<i>"\n'
                '    def __repr__(self):\n        return "Any"\n'
                'class U:\n    def __repr__(self):\n        raise RuntimeError\ndisplay(A, Any(), U())')
    assert datas(j) == [('display', {'text/plain': "<class '__main__.A'>"}), ('display', {'text/plain': 'Any'}),
                        ('display', {'text/plain': '<unprintable U object>'})], j
    # IPython.display without IPython; display(raw=True)
    j = rich(r, 'from IPython.display import display, HTML, Markdown, JSON, SVG\n'
                'display(HTML("<p>"), Markdown("# t"), JSON({"k": 1}), SVG("<svg/>"))\n'
                'display({"text/plain": "raw", "text/html": "<r>", "bad/x": 1}, raw=True)')
    d = [x for _, x in datas(j)]
    assert [d[0]['text/html'], d[1]['text/markdown'], d[2]['application/json'], d[3]['image/svg+xml']] == [
        '<p>', '# t', {'k': 1}, '<svg/>'], d
    assert d[0]['text/plain'] == '<IPython.core.display.HTML object>' and d[4] == {'text/plain': 'raw',
                                                                                    'text/html': '<r>'}, d
    # an exception: outputs before it still come
    j = r.cell('display(1)\n1/0', outputs=(32, MIB))
    assert datas(j) == [('display', {'text/plain': '1'})] and j.error_['name'] == 'ZeroDivisionError', j
    assert 'line 2' in j.error_['traceback'] and '1/0' in j.error_['traceback'], j.error_
    # an exception in the trailing expression, and in a repr that is not an Exception (KeyboardInterrupt ends the cell)
    j = r.cell('x = 1\nx / 0', outputs=(32, MIB))
    assert j.outputs == [] and j.error_['name'] == 'ZeroDivisionError' and 'x / 0' in j.error_['traceback'], j
    j = r.cell('class K:\n    def __repr__(self):\n        raise KeyboardInterrupt\nK()', outputs=(32, MIB))
    assert j.outputs == [] and j.error_['name'] == 'KeyboardInterrupt' and j.alive, j
    # the caps: count, bytes, a message over 1 MiB: a drop mark, then nothing more
    j = rich(r, 'for i in range(10):\n    display(i)', outputs=(3, MIB))
    # (the drop mark past `max` is the runner's to count)
    assert datas(j) == [('display', {'text/plain': str(i)}) for i in range(3)] and j.exit['outputsDropped'] == 1, j
    j = rich(r, 'display("a" * 100, "b" * 100, "c")', outputs=(32, 150))
    assert datas(j) == [('display', {'text/plain': "'%s'" % ('a' * 100)}), ('display', None)], j
    j = rich(r, '"z" * (2 << 20)', outputs=(32, 8 << 20))
    assert datas(j) == [('result', None)], j
    # rich outputs off (max 0): nothing rendered; what the code displays is counted as dropped
    j = rich(r, 'display(1)\n5', outputs=(0, 0))
    assert j.outputs == [] and j.exit['outputsDropped'] == 1, j
    j = ok_cell(r, '5')  # a host that does not ask for outputs
    assert j.outputs == [] and j.exit['outputsDropped'] == 0, j
    # a thread's display() after its cell is dropped; the interpreter lives on
    n = rich(r, 'import threading, time\ndef late():\n    time.sleep(0.2)\n    display("late")\n'
                'threading.Thread(target=late).start()\n"now"').interp
    time.sleep(0.4)
    j = rich(r, '"next"')
    assert datas(j) == [('result', {'text/plain': "'next'"})] and j.interp == n, j
    # forged `out` messages on the interpreter's socket are the code's own word; past `max` the runner counts them
    j = rich(r, 'import json, os\nb = json.dumps({"t": "out", "type": "display", "data": {"text/plain": "forged"}})'
                '.encode()\nfor i in range(5):\n    os.write(1023, len(b).to_bytes(4, "big") + b)', outputs=(2, MIB))
    assert datas(j) == [('display', {'text/plain': 'forged'})] * 2 and j.exit['outputsDropped'] == 3, j
    for bad in ('{"t": "out", "type": "display", "data": {"text/plain": 1}}',
                '{"t": "out", "type": "display", "data": {"text/html": "<no plain>"}}',
                '{"t": "out", "type": "other", "data": null}',
                '{"t": "out", "type": "display", "data": {"text/plain": "x", "image/gif": "R0lG"}}',
                '{"t": "out", "type": "display", "data": null, "extra": 1}'):
        j = r.cell('import os, time\nb = %r.encode()\nos.write(1023, len(b).to_bytes(4, "big") + b)\ntime.sleep(2)'
                   % bad, outputs=(32, MIB))
        assert j.alive is False and j.status == 137 and j.exit['report'] is None, (bad, j)
    assert not r.violations, r.violations
    r.close()
    r.kill()
    return 'ok (result, _, ;, display order, mimebundle, png bytes, broken formatters, IPython.display, caps, ' \
           'late thread, forged and malformed out)'


@case
def rich_hostile():
    # what the code can do to the channel and the outputs; the runner (PID 1) and the interpreter survive what
    # is not theirs to die of
    r = new_runner()
    n = rich(r, 'x = 7').interp
    # messages the host's JSON.parse would refuse, or too deep for the runner's parser: a broken channel (the
    # interpreter is killed), never a dead runner or a frame the host cannot read
    for label, expr in (('NaN', '"NaN"'), ('Infinity', '"-Infinity"'), ('deep', '"[" * 100000 + "]" * 100000')):
        j = r.cell('import os, time\nb = (\'{"t": "out", "type": "display", "data": {"text/plain": "x", '
                   '"application/json": \' + %s + "}}").encode()\nos.write(1023, len(b).to_bytes(4, "big") + b)\n'
                   'time.sleep(2)' % expr, outputs=(32, MIB))
        assert not r.eof.is_set(), (label, bytes(r.stderr[-300:]))
        assert j.alive is False and j.status == 137 and j.outputs == [], (label, j)
        n += 1
        assert rich(r, 'x = 7').interp == n, label
    r.alive()
    # a fork that runs to the end of the code does not render: no second result, nothing on the interpreter's
    # channel after its cell (that would be a broken channel); a fork's display() is dropped
    j = rich(r, 'import os, time\npid = os.fork()\nif pid == 0:\n    time.sleep(0.3)\npid == 0')
    assert datas(j) == [('result', {'text/plain': 'False'})] and j.interp == n, j
    j = rich(r, 'import os\npid = os.fork()\nif pid == 0:\n    display("child")\n    os._exit(0)\n'
                'os.waitpid(pid, 0)\n"parent"')
    assert datas(j) == [('result', {'text/plain': "'parent'"})], j
    time.sleep(0.5)
    j = rich(r, 'x')
    assert datas(j) == [('result', {'text/plain': '7'})] and j.interp == n, j
    # a representation larger than the byte budget is dropped before it is copied or encoded (a 50 MB image
    # encoded would cost 3.5 times its size, past this container's 128 MiB)
    for code in ('class P:\n    def _repr_png_(self):\n        return b"\\x00" * (50 << 20)\ndisplay(P())',
                 'class H:\n    def _repr_html_(self):\n        return "x" * (50 << 20)\ndisplay(H())',
                 'display({"text/plain": "p", "image/png": b"\\x00" * (50 << 20)}, raw=True)',
                 'class J:\n    def _repr_json_(self):\n        return ["x" * (20 << 20)]\ndisplay(J())'):
        j = rich(r, code + '\n"after"', outputs=(32, 1 << 20))
        assert datas(j) == [('display', None)] and j.interp == n and j.exit['oomKills'] == 0, (code, j)
    # `;` and lines as Python counts them (a form feed or a vertical tab in a string is no line break)
    j = rich(r, 's = "a\x0bb\x0cc"\ns;')
    assert j.outputs == [], j
    j = rich(r, 's = "a\x0b  ;"\nx')
    assert datas(j) == [('result', {'text/plain': '7'})], j
    # an INTERRUPT while the interpreter writes a large output: the message is never cut (that would break the
    # channel and lose the interpreter's state); the cell ends with KeyboardInterrupt
    for _ in range(20):
        j = r.start(code='while True:\n    display("x" * 900000)', cell=True, outputs=(1024, 1 << 31))
        end = time.time() + 20
        while len(j.outputs) < 3 and time.time() < end and not j.done.is_set():  # well into the loop
            time.sleep(0.005)
        r.write(INTERRUPT, j.jid)
        assert j.done.wait(10), j
        assert j.alive and j.interp == n and j.error_['name'] == 'KeyboardInterrupt', j
        assert len(j.outputs) > 0 and all(o['data'] is not None for o in j.outputs), len(j.outputs)
    assert rich(r, 'x').interp == n
    assert not r.violations, r.violations
    r.close()
    r.kill()
    return 'ok (NaN, Infinity, deep JSON: the interpreter killed, the runner alive; forks render nothing; ' \
           'lines for `;`; interrupted while writing an output)'


@case
def rich_real_ipython():
    # an image with IPython: its display() (which, outside an IPython shell, prints) is the interpreter's
    site = '/usr/lib/python311.zip'  # on sys.path but not in the image: a directory mounted there is one
    r = new_runner(tmpfs=[site])
    files = {'IPython/__init__.py': 'version_info = (8, 0)\n', 'IPython/core/__init__.py': '',
             'IPython/core/display_functions.py': 'def display(*objs, **kw):\n    print("printed", *objs)\n',
             'IPython/core/display.py': 'from IPython.core.display_functions import display\n'
                                        'class HTML:\n    def __init__(self, d):\n        self.d = d\n'
                                        '    def _repr_html_(self):\n        return self.d\n',
             'IPython/display.py': 'from IPython.core.display import display, HTML\n'}
    j = rich(r, 'import os\nfor p, t in %r.items():\n    os.makedirs(os.path.dirname(os.path.join(%r, p)), exist_ok=True)\n'
                '    open(os.path.join(%r, p), "w").write(t)' % (files, site, site))
    j = r.cell('import os\nos._exit(0)')  # the next interpreter finds IPython as it starts
    assert j.alive is False, j
    j = rich(r, 'import IPython\nfrom IPython.display import display, HTML\ndisplay(HTML("<b>x</b>"), 2)\n'
                'import IPython.core.display_functions as f\nf.display(3)\nIPython.version_info')
    assert j.out == b'', j
    d = datas(j)
    assert [x['text/plain'] for _, x in d] == [d[0][1]['text/plain'], '2', '3', '(8, 0)'], j
    assert d[0][1]['text/html'] == '<b>x</b>', j
    assert not r.violations, r.violations
    r.close()
    r.kill()
    return 'ok (IPython.display.display and IPython.core.display_functions.display are the interpreter\'s)'


@case
def datascience():
    if subprocess.run(['docker', 'image', 'inspect', DATASCIENCE_IMAGE], stdout=subprocess.DEVNULL,
                      stderr=subprocess.DEVNULL).returncode != 0:
        raise AssertionError('no %s: bash scripts/build-sandbox-image.sh datascience' % DATASCIENCE_IMAGE)
    t = time.perf_counter()
    r = new_runner(image=DATASCIENCE_IMAGE, memory='1g', pids=128,
                   options={'preload': ['numpy', 'pandas', 'matplotlib', 'matplotlib.pyplot', 'no_such_mod']})
    hello_ms = (time.perf_counter() - t) * 1000
    j = r.code('import os, sys, threading\nprint(all(m in sys.modules for m in ("numpy", "pandas", '
               '"matplotlib.pyplot")), threading.active_count(), len(os.listdir("/proc/self/task")))\n'
               'print(" ".join(sorted(os.environ)))\nd = os.environ["MPLCONFIGDIR"]\n'
               'print(os.environ["MPLBACKEND"], d, oct(os.stat(d).st_mode & 0o777), '
               'any(n.startswith("fontlist") for n in os.listdir(d)))')
    assert j.status == 0, j
    lines = j.text().splitlines()
    assert lines[0] == 'True 1 1', j
    assert lines[1] == ('HOME MKL_NUM_THREADS MPLBACKEND MPLCONFIGDIR NUMEXPR_NUM_THREADS OMP_NUM_THREADS '
                        'OPENBLAS_NUM_THREADS PATH'), j
    assert lines[2] == 'Agg /tmp/.container-pool-matplotlib 0o700 True', j
    assert b'preload no_such_mod: ModuleNotFoundError' in r.stderr, r.stderr
    j = r.code('import os\nprint(os.environ["OMP_NUM_THREADS"])', env=ENV + ['OMP_NUM_THREADS=4'])
    assert j.out == b'4\n', j
    j = r.sh('echo $MPLBACKEND $OPENBLAS_NUM_THREADS')
    assert j.out == b'Agg 1\n', j
    t = time.perf_counter()
    j = rich(r, 'import numpy, pandas, matplotlib\nimport matplotlib.pyplot as plt')
    first_ms = (time.perf_counter() - t) * 1000
    assert j.outputs == [] and j.err == b'', j
    j = rich(r, 'fig = plt.figure(figsize=(4, 3), dpi=100)\nplt.plot([1, 2, 3])')  # the Line2D list, the figure
    d = datas(j)
    assert [t for t, _ in d] == ['result', 'display'] and 'Line2D' in d[0][1]['text/plain'], j
    j = rich(r, 'fig = plt.figure(figsize=(4, 3), dpi=100)\nplt.plot([1, 2, 3]);')
    d = datas(j)
    assert len(d) == 1 and d[0][0] == 'display' and d[0][1]['text/plain'] == '<Figure size 400x300 with 1 Axes>', j
    assert png_size(d[0][1]['image/png']) == (400, 300) and j.err == b'', j
    j = rich(r, 'plt.figure(figsize=(2, 2), dpi=50)\nplt.plot([1])\nplt.show()\nprint("between")\n'
                'plt.figure(figsize=(3, 1), dpi=50)\nplt.plot([2])\n"end"')
    d = datas(j)
    assert [t for t, _ in d] == ['display', 'result', 'display'] and d[1][1] == {'text/plain': "'end'"}, j
    assert png_size(d[0][1]['image/png']) == (100, 100) and png_size(d[2][1]['image/png']) == (150, 50), j
    assert j.out == b'between\n', j
    j = rich(r, 'plt.get_fignums()')
    assert datas(j) == [('result', {'text/plain': '[]'})], j
    j = rich(r, 'f = plt.figure(figsize=(1, 1), dpi=10)\nf')  # shown once, as the result
    d = datas(j)
    assert len(d) == 1 and d[0][0] == 'result' and png_size(d[0][1]['image/png']) == (10, 10), j
    j = rich(r, 'import pandas as pd\ndf = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})\ndf')
    d = datas(j)
    assert len(d) == 1 and '<table' in d[0][1]['text/html'] and d[0][1]['text/plain'].split() == \
        ['a', 'b', '0', '1', 'x', '1', '2', 'y'], j
    j = r.cell('plt.figure(figsize=(1, 1), dpi=20)\n1/0', outputs=(32, MIB))
    d = datas(j)
    assert j.error_['name'] == 'ZeroDivisionError' and len(d) == 1 and png_size(d[0][1]['image/png']) == (20, 20), j
    j = rich(r, 'numpy.arange(3)')
    assert datas(j) == [('result', {'text/plain': 'array([0, 1, 2])'})], j
    j = rich(r, 'for i in range(5):\n    plt.figure(figsize=(1, 1), dpi=10)', outputs=(2, MIB))
    assert [t for t, _ in datas(j)] == ['display', 'display'] and j.exit['outputsDropped'] == 1, j
    assert datas(rich(r, 'len(plt.get_fignums())')) == [('result', {'text/plain': '0'})]
    # a figure displayed then closed and collected: a new one (which may get its id) still shows at the end
    j = rich(r, 'import gc\nfor i in range(20):\n    f = plt.figure(figsize=(1, 1), dpi=10)\n    display(f)\n'
                '    plt.close(f)\n    del f\n    gc.collect()\ng = plt.figure(figsize=(2, 1), dpi=10)', outputs=(32, MIB))
    assert len(j.outputs) == 21 and png_size(j.outputs[20]['data']['image/png']) == (20, 10), j
    # at the figure's own dpi (as IPython passes it), whatever savefig.dpi says
    j = rich(r, 'plt.rcParams["savefig.dpi"] = 200\nplt.figure(figsize=(2, 1), dpi=50)\nplt.plot([1]);')
    assert png_size(j.outputs[0]['data']['image/png']) == (100, 50), j
    j = rich(r, 'plt.rcParams["savefig.dpi"] = "figure"')
    # figures never leak into a later call: closed at the end of a call without rich outputs (max 0: counted as
    # dropped, not rendered) and of one that ended with SystemExit (rendered, as after an exception)
    j = rich(r, 'plt.figure(figsize=(1, 1), dpi=10)\nplt.plot([1]);', outputs=(0, 0))
    assert j.outputs == [] and j.exit['outputsDropped'] == 1, j
    j = r.cell('plt.figure(figsize=(3, 2), dpi=10)\nraise SystemExit(0)', outputs=(32, MIB))
    d = datas(j)
    assert j.status == 0 and len(d) == 1 and png_size(d[0][1]['image/png']) == (30, 20), j
    j = r.cell('plt.figure(figsize=(1, 1), dpi=10)\nraise SystemExit(3)')  # a host that asks for no outputs
    assert j.status == 3 and j.outputs == [], j
    assert datas(rich(r, 'len(plt.get_fignums())')) == [('result', {'text/plain': '0'})]
    assert b'threads running' not in r.stderr, r.stderr
    assert not r.violations, r.violations
    r.close()
    r.kill()
    return 'ok; HELLO %.0f ms after docker run (numpy, pandas, matplotlib pre-imported); first cell importing ' \
           'them %.1f ms' % (hello_ms, first_ms)


def main():
    args = sys.argv[1:]
    sel = None
    if '-k' in args:
        sel = args[args.index('-k') + 1]
    quick = '--quick' in args  # without the timing cases (latencies, throughput)
    failed = 0
    try:
        for fn in CASES:
            if sel and sel not in fn.__name__:
                continue
            if quick and fn.__name__ in ('latencies', 'throughput', 'session_latency'):
                continue
            t = time.perf_counter()
            try:
                msg = fn()
                print('PASS %-26s %5.1fs  %s' % (fn.__name__, time.perf_counter() - t, msg), flush=True)
            except Exception:
                failed += 1
                print('FAIL %-26s %5.1fs  %s' % (fn.__name__, time.perf_counter() - t,
                                                  traceback.format_exc().strip().replace('\n', '\n    ')), flush=True)
        for r in RUNNERS:
            if r.violations:
                failed += 1
                print('FAIL protocol violations in %s: %r' % (r.name, r.violations[:5]))
    finally:
        for r in RUNNERS:
            r.close() if r.p.poll() is None and False else None
            r.kill()
        for _ in range(50):  # --rm removal may still be in progress
            left = subprocess.run(['docker', 'ps', '-aq', '--filter', 'label=' + RUN_LABEL],
                                  stdout=subprocess.PIPE).stdout
            if not left.strip():
                break
            time.sleep(0.2)
        if left.strip():
            failed += 1
            print('FAIL containers left: %r' % left)
            subprocess.run(['docker', 'rm', '-f'] + left.split(), stdout=subprocess.DEVNULL)
    print('%s: %d case(s) failed' % ('FAIL' if failed else 'OK', failed))
    sys.exit(1 if failed else 0)


if __name__ == '__main__':
    main()

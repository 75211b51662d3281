# container-pool runner: PID 1 of a runner-transport container. Code jobs run in a pre-forked, warmed spare child,
# cmd jobs through posix_spawn; frames over the attach stream (fd 0 in, fd 1 out), diagnostics on fd 2.
# Contract: docs/runner-protocol.md. Stdlib only, Python >= 3.8, started as
#   python3 -I -c <this source> <deadline-epoch-seconds> <protocol-version>
RUNNER_VERSION = '1.0.0'
PROTOCOL = 1
import os, sys
try:  # opened while still dumpable (after the prctl, /proc/self is root's): cmd jobs inherit 1000 from here
    OOMADJ = os.open('/proc/self/oom_score_adj', os.O_RDWR | os.O_CLOEXEC)
    OOMADJ0 = os.read(OOMADJ, 32).strip() or b'0'
except OSError:
    OOMADJ, OOMADJ0 = None, b'0'
try:
    import ctypes
    _libc = ctypes.CDLL(None, use_errno=True)
    _libc.prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE 0: /proc/1/fd, /proc/1/mem and ptrace refused to the same uid
    DUMPABLE = _libc.prctl(3, 0, 0, 0, 0)
except Exception:
    DUMPABLE = -1
import signal
signal.signal(signal.SIGINT, signal.SIG_IGN)
if sys.version_info < (3, 8) or DUMPABLE != 0:
    os.write(2, b'runner: needs python >= 3.8 and prctl(PR_SET_DUMPABLE, 0)\n')
    os._exit(3)
os.chdir('/')
import array, atexit, builtins, errno, fcntl, io, json, select, selectors, socket, struct, time, warnings  # all, first

MIB = 1 << 20
HDR = struct.Struct('>IBI')
JOB, STDIN, STDIN_EOF, KILL = 1, 2, 3, 4
HELLO, STDOUT, STDERR, EXIT, ERROR = 0x81, 0x82, 0x83, 0x84, 0x85
MAXLEN = {JOB: 4 + MIB + 64 * MIB, STDIN: MIB, STDIN_EOF: 0, KILL: 0}
CHUNK = 65536
G = globals()
MAIN = sys.modules['__main__']  # the runner's own module (kept alive; jobs get a fresh one)
LOADER = G.get('__loader__')
OLDIO = (sys.stdin, sys.stdout, sys.stderr)  # never used, never collected
IOENC = [(f.encoding, f.errors) if f is not None else ('utf-8', 'strict') for f in OLDIO]
try:
    MAXFD = os.sysconf('SC_OPEN_MAX')
except (OSError, ValueError):
    MAXFD = 1024
NB = os.WNOHANG | os.WUNTRACED
DFL_SIGS = (signal.SIGINT, signal.SIGPIPE, signal.SIGXFSZ, signal.SIGCHLD)


def diag(msg):
    try:
        os.write(2, ('runner: %s\n' % msg).encode('utf-8', 'replace'))
    except OSError:
        pass


def die(msg):
    diag(msg)
    os._exit(2)


try:
    DEADLINE = float(sys.argv[1])
    ARGPROTO = int(sys.argv[2])
except (IndexError, ValueError):
    die('usage: runner <deadline-epoch-seconds> <protocol-version>')
if ARGPROTO != PROTOCOL:
    diag('host asked for protocol %d, this runner speaks %d' % (ARGPROTO, PROTOCOL))


def _oomfile():
    for p in ('/sys/fs/cgroup/memory/memory.oom_control', '/sys/fs/cgroup/memory.events'):
        try:
            with open(p, 'rb') as f:
                if any(l.startswith(b'oom_kill ') for l in f.read().split(b'\n')):
                    return p
        except OSError:
            pass
    return None


OOMFILE = _oomfile()


def oom_kills():
    if OOMFILE is None:
        return None
    try:
        fd = os.open(OOMFILE, os.O_RDONLY | os.O_CLOEXEC)
        try:
            d = os.read(fd, 4096)
        finally:
            os.close(fd)
        for l in d.split(b'\n'):
            if l.startswith(b'oom_kill '):
                return int(l[9:])
    except (OSError, ValueError):
        pass
    return None


# ---- code jobs: the child (spare, then job)

WARM = b'''
def f(n):
    s = 0
    for i in range(n):
        s += i * i
    return s
class A:
    def __init__(self, x):
        self.x = x
d = {str(i): A(i) for i in range(64)}
x = f(200) + len(d)
try:
    raise ValueError('w')
except ValueError as e:
    y = '%s %d %r' % (e, x, 2.5) + f'{x}'
'''
SF = min(MAXFD, 1024) - 1  # a code child's status pipe (CLOEXEC), out of the way of the program's own descriptors
ST = [SF, None]  # where _fail writes; the status pipe's (st_dev, st_ino)


def _stdio(fd, mode, name, enc, lb):
    # as Python's create_stdio
    b = io.open(fd, mode, -1, closefd=False)
    b.raw.name = name
    return io.TextIOWrapper(b, enc[0], enc[1], '\n', lb)


def _fail(what, e, pre=''):
    # the job never ran the caller's program: the runner turns this into ERROR
    no = getattr(e, 'errno', None) or errno.EINVAL
    msg = pre + (getattr(e, 'strerror', None) or str(e))
    try:
        os.write(ST[0], ('%s\0%d\0%s' % (what, no, msg)).encode('utf-8', 'replace'))
    finally:
        os._exit(127)


def _report(st):
    # the status, right before _exit: the runner ends the job without waiting for the kernel's teardown
    try:
        s = os.fstat(SF)
        if (s.st_dev, s.st_ino) == ST[1]:
            os.write(SF, b'exit\0%d' % st)
    except OSError:
        pass


def spare_main(ir, ow, ew, jr, xw, warm):
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        ST[0] = xw
        os.setpgid(0, 0)
        a, b = os.dup(jr), os.dup(xw)
        os.dup2(ir, 0)  # the job's own pipes: never the control channel
        os.dup2(ow, 1)
        os.dup2(ew, 2)
        os.dup2(a, 3, inheritable=False)
        os.dup2(b, SF, inheritable=False)
        ST[0] = SF
        os.closerange(4, SF)
        os.closerange(SF + 1, MAXFD)
        s = os.fstat(SF)
        ST[1] = (s.st_dev, s.st_ino)
        # everything that does not depend on the job, before it comes
        m = type(sys)('__main__')
        d = m.__dict__
        d['__loader__'] = LOADER
        d['__annotations__'] = {}
        d['__builtins__'] = builtins
        sys.stdin = sys.__stdin__ = _stdio(0, 'rb', '<stdin>', IOENC[0], False)
        sys.stdout = sys.__stdout__ = _stdio(1, 'wb', '<stdout>', IOENC[1], False)
        sys.stderr = sys.__stderr__ = _stdio(2, 'wb', '<stderr>', IOENC[2], True)
        sys.argv = ['-c']
        atexit._clear()
        k = sys.excepthook

        def hook(t, v, tb, k=k, G=G, B=BaseException, I=isinstance):
            # the default report without the runner's frames; a hook the program installs gets everything
            while tb is not None and tb.tb_frame.f_globals is G:
                tb = tb.tb_next
            k(t, v.with_traceback(tb) if I(v, B) else v, tb)

        sys.excepthook = hook
        if warm:  # copy-on-write faults now rather than in the job: the job's own paths, with no effect
            exec(compile(WARM, '<warm>', 'exec', dont_inherit=True), type(sys)('__warm__').__dict__)
            w = json.loads('{"kind": "code", "env": ["PATH=/bin", "HOME=/"], "workdir": "/", "lineBuffered": false}')
            _libc.prctl(3, 0, 0, 0, 0)
            signal.signal(signal.SIGPIPE, signal.SIG_IGN)
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            signal.pthread_sigmask(signal.SIG_BLOCK, [])
            e = envdict(w['env'])
            e.update(os.environ)
            os.environ.update(e)
            os.chdir(w['workdir'])
            sys.stdout.reconfigure(line_buffering=False)
            sys.modules.get('threading')
            atexit._run_exitfuncs()
            _flush()
            os.fstat(SF)
            del w, e
        b = bytearray()
        while True:
            c = os.read(3, CHUNK)
            if not c:
                break
            b += c
        os.close(3)
        if not b:
            os._exit(0)
        os.write(SF, b'\6')  # got it: from now on a death is the job's, not a lost job
        n = int.from_bytes(b[:4], 'big')
        h = json.loads(b[4:4 + n].decode('utf-8'))
        code = bytes(b[4 + n:])
        del b
        _libc.prctl(4, 1, 0, 0, 0)  # PR_SET_DUMPABLE 1 (also needed to write oom_score_adj)
        try:
            fd = os.open('/proc/self/oom_score_adj', os.O_WRONLY | os.O_CLOEXEC)
            os.write(fd, b'1000')  # the OOM killer takes the job, not the runner
            os.close(fd)
        except OSError:
            pass
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        signal.pthread_sigmask(signal.SIG_SETMASK, [])
        try:
            os.environ.clear()
            os.environ.update(envdict(h['env']))
        except (ValueError, OSError) as e:
            _fail('exec', e)
    except BaseException as e:
        _fail('spawn', e)
    try:
        os.chdir(h['workdir'])
    except (OSError, ValueError) as e:
        _fail('chdir', e, h['workdir'] + ': ')
    if h.get('lineBuffered'):
        sys.stdout.reconfigure(line_buffering=True)
    sys.modules['__main__'] = m
    sys.path.insert(0, '')
    run_code(code, d)


def _sysexit(e):
    # as CPython's handle_system_exit
    c = e.code
    if c is None:
        return 0
    if isinstance(c, int):
        return c & 255 if -(1 << 63) <= c < (1 << 63) else 255
    try:
        sys.stderr.write(str(c) + '\n')
    except BaseException:
        pass
    return 1


def _flush():
    bad = False
    for f in (sys.stdout, sys.stderr):
        try:
            if f is not None and not f.closed:
                f.flush()
        except BaseException as e:
            if f is sys.stdout:
                bad = True
                try:
                    os.write(2, ('Exception ignored in: %r\n%s: %s\n' % (f, type(e).__name__, e)).encode())
                except OSError:
                    pass
    return bad


def run_code(src, d):
    me = os.getpid()
    st, ki = 0, False
    try:
        exec(compile(src, '<string>', 'exec', dont_inherit=True), d)
    except SystemExit as e:
        st = _sysexit(e)
    except BaseException as e:
        st, ki = 1, isinstance(e, KeyboardInterrupt)
        sys.last_type, sys.last_value, sys.last_traceback = type(e), e, e.__traceback__
        try:
            sys.excepthook(type(e), e, e.__traceback__)
        except BaseException:
            try:
                sys.__excepthook__(type(e), e, e.__traceback__)
            except BaseException:
                pass
        e = None
    # as Py_FinalizeEx: threads, atexit, flush (120 when stdout fails), module teardown, flush again
    t = sys.modules.get('threading')
    if t is not None:
        try:
            t._shutdown()
        except BaseException:
            pass
    try:
        atexit._run_exitfuncs()
    except BaseException:
        pass
    if _flush():
        st = 120
    try:
        for n in list(d):
            if n != '__builtins__':
                d[n] = None
    except BaseException:
        pass
    if _flush():
        st = 120
    if ki:
        st = 130
    if os.getpid() == me:  # not a fork the program made
        _report(st)
    if ki:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    os._exit(st)


# ---- cmd jobs: posix_spawn (vfork + exec)

def envdict(env):
    e = {}
    for kv in env:
        k, s, v = kv.partition('=')
        if s and k:
            e[k] = v
    return e


def spawnp(argv, env, fa):
    # os.execvpe's PATH search (PATH from the job's env), each candidate through posix_spawn
    f = argv[0]
    saved = last = None
    for p in [f] if '/' in f else [os.path.join(d, f) for d in os.get_exec_path(env)]:
        try:
            if p != f:
                os.stat(p)
            return os.posix_spawn(p, argv, env, file_actions=fa, setpgroup=0, setsigmask=(), setsigdef=DFL_SIGS)
        except OSError as e:
            last = e
            if e.errno not in (errno.ENOENT, errno.ENOTDIR) and saved is None:
                saved = e
    raise saved or last


# ---- the runner

sel = selectors.DefaultSelector()
out = bytearray()  # the outbound queue (frames to the host)
inb = bytearray()
RBUF = bytearray(MIB)
RVIEW = memoryview(RBUF)
kids = {}  # pid -> Kid (spare or job)
jobs = {}  # job id -> Kid
last_id = 0
paused = False
spare = None
spare_deaths = 0
zsock, zpid, zpending = None, 0, False  # the zygote: the runner's end of its socket, its pid, a spare asked for
said_hello = False


class Kid(object):
    __slots__ = ('pid', 'si', 'so', 'se', 'sj', 'sx', 'jid', 'iq', 'ieof', 'jq', 'job', 'acked', 'killed', 'tries',
                 'oom0')

    def __init__(self, pid, si, so, se, sj, sx):
        self.pid, self.si, self.so, self.se, self.sj, self.sx = pid, si, so, se, sj, sx
        self.jid, self.iq, self.ieof, self.jq = 0, [], False, None
        self.job, self.acked, self.killed, self.tries = None, sj < 0, False, 0
        self.oom0 = None


def kill(pid):
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass


def reg(fd, ev, cb, arg):
    if fd >= 0 and fd not in sel.get_map():
        sel.register(fd, ev, (cb, arg))


def unreg(fd):
    if fd >= 0 and fd in sel.get_map():
        sel.unregister(fd)


def close(fd):
    if fd >= 0:
        unreg(fd)
        os.close(fd)
    return -1


def send(t, jid, payload):
    out.extend(HDR.pack(len(payload), t, jid))
    out.extend(payload)


def fork_child(warm):
    # pipes (stdin, stdout, stderr, job, status) and a fork running spare_main: (pid, the parent ends)
    fds = []
    try:
        for _ in range(4):
            fds.extend(os.pipe())
        # the status channel is a socket, not a pipe: a pipe can be reopened through /proc/<pid>/fd by any process
        # of the uid once the job is dumpable (another job could write its exit status); a socket cannot (ENXIO)
        xs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        fds.extend(x.detach() for x in xs)
        pid = os.fork()
    except OSError:
        for f in fds:
            os.close(f)
        raise
    ir, iw, orr, ow, er, ew, jr, jw, xr, xw = fds
    if pid == 0:
        try:
            spare_main(ir, ow, ew, jr, xw, warm)
        finally:
            os._exit(127)
    for f in (ir, ow, ew, jr, xw):
        os.close(f)
    return pid, [iw, orr, er, jw, xr]


def spawn(warm):
    try:
        pid, fds = fork_child(warm)
    except OSError as e:
        return e
    for f in fds:
        os.set_blocking(f, False)
    k = kids[pid] = Kid(pid, *fds)
    return k


def new_spare():
    global spare, zpending
    spare = None
    if spare_deaths > 20:
        return  # something keeps killing spares: fork per job from now on
    if zsock is not None:
        if not zpending:
            try:
                zsock.send(b'\1')
                zpending = True
            except OSError:
                zygote_gone()
        if zsock is not None:
            return
    k = spawn(True)
    if isinstance(k, Kid):
        spare = k
    else:
        diag('cannot fork a spare: %s' % k)


# The zygote, forked once at start, forks the spares, passes their pipes (SCM_RIGHTS) and wait statuses on: the
# runner forks nothing per code job, so it stops paying copy-on-write faults on its own pages on every job.

def zygote_main(b):
    signal.set_wakeup_fd(-1)
    os.setpgid(0, 0)
    fd = b.fileno()
    n = os.open('/dev/null', os.O_RDWR)
    os.dup2(n, 0)  # never hold the control channel
    os.dup2(n, 1)
    os.closerange(3, fd)
    os.closerange(fd + 1, MAXFD)
    wr, ww = os.pipe()
    os.set_blocking(wr, False)
    os.set_blocking(ww, False)
    signal.set_wakeup_fd(ww, warn_on_full_buffer=False)  # the runner's SIGCHLD handler (a no-op) is still set
    while True:
        r = select.select([fd, wr], [], [])[0]
        if wr in r:
            try:
                while os.read(wr, 4096):
                    pass
            except OSError:
                pass
            while True:
                try:
                    pid, st = os.waitpid(-1, NB)
                except ChildProcessError:
                    break
                if pid == 0:
                    break
                b.send(struct.pack('=ii', pid, st))
        if fd in r:
            d = b.recv(64)
            if not d:
                os._exit(0)
            for _ in d:
                zspawn(b)


def zspawn(b):
    try:
        pid, fds = fork_child(True)
    except OSError:
        b.send(struct.pack('=i', 0))
        return
    b.sendmsg([struct.pack('=i', pid)], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array('i', fds))])
    for f in fds:
        os.close(f)


def zygote_start():
    global zsock, zpid, zpending
    try:
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    except OSError as e:
        diag('no zygote: %s' % e)
        return
    try:
        pid = os.fork()
    except OSError as e:
        diag('no zygote: %s' % e)
        a.close()
        b.close()
        return
    if pid == 0:
        try:
            zygote_main(b)
        finally:
            os._exit(0)
    b.close()
    a.setblocking(False)
    zsock, zpid, zpending = a, pid, False
    reg(a.fileno(), selectors.EVENT_READ, on_zygote, None)


def zygote_gone():
    global zsock, zpid, zpending
    if zsock is not None:
        unreg(zsock.fileno())
        zsock.close()
    if zpid:
        kill(zpid)
    zsock, zpending = None, False


def on_zygote(_, fd):
    global zpending, spare, spare_deaths
    while zsock is not None:
        try:
            msg, anc, _f, _a = zsock.recvmsg(8, socket.CMSG_SPACE(5 * 4), socket.MSG_CMSG_CLOEXEC)
        except BlockingIOError:
            return
        except OSError:
            msg, anc = b'', []
        if not msg:
            zygote_gone()
            new_spare()
            return
        if len(msg) == 8:  # a wait status of one of its children
            on_reaped(*struct.unpack('=ii', msg))
            continue
        zpending = False
        fds = []
        for lvl, typ, data in anc:
            if lvl == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
                a = array.array('i')
                a.frombytes(data[:len(data) - len(data) % a.itemsize])
                fds.extend(a)
        pid = struct.unpack('=i', msg)[0] if len(msg) == 4 else 0
        if pid <= 0 or len(fds) != 5 or spare is not None:
            for f in fds:
                os.close(f)
            if pid > 0:
                kill(pid)
            if spare is None:  # the zygote could not fork one: fork it here
                zygote_gone()
                new_spare()
            hello()
            continue
        for f in fds:
            os.set_blocking(f, False)
        k = Kid(pid, *fds)
        kids[pid] = k
        spare = k
        hello()


def hello():
    global said_hello
    if not said_hello:
        said_hello = True
        v = sys.version_info
        send(HELLO, 0, json.dumps({'protocol': PROTOCOL, 'runner': RUNNER_VERSION,
                                   'python': '%d.%d.%d' % (v[0], v[1], v[2]), 'oomKills': oom_kills()}).encode())


def discard(k):
    for f in (k.si, k.so, k.se, k.sj, k.sx):
        close(f)
    k.si = k.so = k.se = k.sj = k.sx = -1


def error(jid, what, no, msg):
    send(ERROR, jid, json.dumps({'what': what, 'errno': no, 'message': msg}).encode())


def feed_job(k):
    # the job header and code go down the job pipe as the child takes them
    mv = k.jq
    while mv:
        try:
            n = os.write(k.sj, mv)
        except BlockingIOError:
            break
        except OSError:
            mv = None
            break
        mv = mv[n:]
    k.jq = mv
    if mv:
        reg(k.sj, selectors.EVENT_WRITE, feed_job_cb, k)
    else:
        k.sj = close(k.sj)


def feed_job_cb(k, fd):
    feed_job(k)


def start_job(jid, payload):
    global spare, spare_deaths
    n = int.from_bytes(payload[:4], 'big')
    if len(payload) < 4 or n > MIB or 4 + n > len(payload):
        die('bad JOB payload for job %d' % jid)
    try:
        h = json.loads(payload[4:4 + n].decode('utf-8'))
        ok = (isinstance(h, dict) and h.get('kind') in ('code', 'cmd') and isinstance(h.get('env'), list)
              and all(isinstance(x, str) for x in h['env']) and isinstance(h.get('workdir'), str)
              and isinstance(h.get('lineBuffered', False), bool))
        if ok and h['kind'] == 'cmd':
            a = h.get('argv')
            ok = isinstance(a, list) and len(a) > 0 and all(isinstance(x, str) for x in a)
    except ValueError:
        ok = False
    if not ok:
        die('bad JOB header for job %d' % jid)
    if h['kind'] == 'cmd':
        start_cmd(jid, h)
        return
    k, spare = spare, None
    if k is not None:
        spare_deaths = 0
    hand(jid, payload, k, [], False, 0)
    if spare is None:
        new_spare()


def hand(jid, payload, k, iq, ieof, tries, oom0=None):
    # give a code job to a child: k (the spare), else a fresh fork. Until the child acknowledges the job, its
    # payload and stdin are kept: a child killed before (by another job: same uid) is replaced, the job re-sent.
    while True:
        if k is None:
            k = spawn(False)
            if not isinstance(k, Kid):
                no = getattr(k, 'errno', None) or errno.EAGAIN
                error(jid, 'spawn', no, 'cannot start the job process: %s' % (getattr(k, 'strerror', None) or k))
                return
        try:
            w = os.write(k.sj, payload)
            break
        except BlockingIOError:
            w = 0
            break
        except OSError:  # the child is gone (EPIPE): forget it, try a fresh one
            kill(k.pid)
            discard(k)
            k = None
    k.job, k.iq, k.ieof, k.tries = payload, iq, ieof, tries
    k.jq = memoryview(payload)[w:]
    feed_job(k)
    began(jid, k, oom0)
    reg(k.sx, selectors.EVENT_READ, on_status, k)


def began(jid, k, oom0=None):
    # oom0: the OOM kill counter when the job started (a retry keeps the first): an OOM between jobs (a background
    # process of an earlier one) is not this job's
    k.jid = jid
    k.oom0 = oom_kills() if oom0 is None else oom0
    jobs[jid] = k
    if not paused:
        reg(k.so, selectors.EVENT_READ, on_out, (k, STDOUT))
        reg(k.se, selectors.EVENT_READ, on_out, (k, STDERR))


def adj(v):
    if OOMADJ is not None:
        try:
            os.write(OOMADJ, v)
        except OSError:
            pass


def start_cmd(jid, h):
    fds = []
    try:
        for _ in range(3):
            fds.extend(os.pipe())
    except OSError as e:
        for f in fds:
            os.close(f)
        error(jid, 'spawn', e.errno, 'cannot start the job process: %s' % e.strerror)
        return
    ir, iw, orr, ow, er, ew = fds
    what, pid = 'chdir', None
    try:
        os.chdir(h['workdir'])  # the child inherits it; the runner imports nothing, so its own cwd does not matter
        what = 'exec'
        adj(b'1000')  # the runner's own, for the spawn only: the child inherits it at the clone
        pid = spawnp(h['argv'], envdict(h['env']),
                     [(os.POSIX_SPAWN_DUP2, ir, 0), (os.POSIX_SPAWN_DUP2, ow, 1), (os.POSIX_SPAWN_DUP2, ew, 2)])
    except (OSError, ValueError) as e:
        no = getattr(e, 'errno', None) or errno.EINVAL
        if what == 'exec' and no in (errno.EAGAIN, errno.ENOMEM):
            what = 'spawn'
        error(jid, what, no, '%s: %s' % (h['workdir'] if what == 'chdir' else h['argv'][0],
                                         getattr(e, 'strerror', None) or e))
    finally:
        adj(OOMADJ0)
        os.chdir('/')
        for f in (ir, ow, ew):
            os.close(f)
    if pid is None:
        for f in (iw, orr, er):
            os.close(f)
        return
    for f in (iw, orr, er):
        os.set_blocking(f, False)
    k = Kid(pid, iw, orr, er, -1, -1)
    kids[pid] = k
    began(jid, k)


def on_status(k, fd):
    # a code child's status (right before its _exit) or why it never ran the program
    try:
        x = os.read(fd, 65536)
    except BlockingIOError:
        return
    except OSError:
        x = b''
    if x[:1] == b'\6':
        x = x[1:]
        k.acked, k.job = True, None
        feed(k)
        if not x:
            return
    if not x or not end_job(k, x, None):
        k.sx = close(k.sx)  # nothing usable: the reap ends the job


def on_out(a, fd):
    k, t = a
    try:
        d = os.read(fd, CHUNK)
    except BlockingIOError:
        return
    except OSError:
        d = b''
    if d:
        send(t, k.jid, d)
    elif t == STDOUT:
        k.so = close(k.so)
    else:
        k.se = close(k.se)


def feed(k):
    if not k.acked:
        return
    q = k.iq
    while q:
        try:
            n = os.write(k.si, q[0])
        except BlockingIOError:
            break
        except OSError:  # EPIPE: the job closed its stdin; the rest is dropped
            del q[:]
            k.ieof = True
            break
        if n < len(q[0]):
            q[0] = q[0][n:]
            break
        del q[0]
    if q:
        reg(k.si, selectors.EVENT_WRITE, feed_cb, k)
    else:
        unreg(k.si)
        if k.ieof:
            k.si = close(k.si)


def feed_cb(k, fd):
    feed(k)


def drain(k, fd, t):
    got = 0
    while fd >= 0 and got < 4 * MIB:
        try:
            d = os.read(fd, CHUNK)
        except OSError:
            break
        if not d:
            break
        got += len(d)
        send(t, k.jid, d)


def end_job(k, x, st):
    # x: what the status pipe holds (b'exit\0N', b'<what>\0<errno>\0<message>' or b''); st: the wait status
    # (None: not reaped yet). False when x is unusable and the job is not over.
    err = None
    if x.startswith(b'exit\0'):
        try:
            n = int(x[5:])
        except ValueError:
            n = -1
        if not 0 <= n <= 255:
            x = b''
    elif x:
        p = x.decode('utf-8', 'replace').split('\0', 2)
        try:
            err = (p[0], int(p[1]), p[2])
        except (IndexError, ValueError):
            err = None
        if err is None or err[0] not in ('exec', 'chdir', 'spawn'):
            x, err = b'', None
    if st is None and not x:
        return False
    jid = k.jid
    drain(k, k.so, STDOUT)
    drain(k, k.se, STDERR)
    discard(k)
    del jobs[jid]
    k.jid = 0
    if err:
        error(jid, err[0], err[1], err[2])
        return True
    if st is not None:
        n = 128 + os.WTERMSIG(st) if os.WIFSIGNALED(st) else os.WEXITSTATUS(st)
    o, o0 = oom_kills(), k.oom0
    send(EXIT, jid, b'{"status": %d, "oomKills": %s, "oomKillsAtStart": %s}' % (
        n, b'null' if o is None else str(o).encode(), b'null' if o0 is None else str(o0).encode()))
    return True


def reap():
    while True:
        try:
            pid, st = os.waitpid(-1, NB)
        except ChildProcessError:
            return
        if pid == 0:
            return
        on_reaped(pid, st)


def on_reaped(pid, st):
    global spare, spare_deaths
    if pid == zpid:
        if os.WIFSTOPPED(st):
            kill(pid)
            return
        zygote_gone()
        spare_deaths += 1
        if spare_deaths <= 20:
            zygote_start()
            if spare is None:
                new_spare()
        return
    k = kids.get(pid)
    if k is None:
        return  # an orphan reparented to PID 1
    if os.WIFSTOPPED(st):
        if not k.jid or not k.acked:  # a spare, a child that has not got its job, one that reported its end
            kill(pid)
            if k is spare:
                spare_deaths += 1
                new_spare()
        return
    if os.WIFCONTINUED(st):
        return
    del kids[pid]
    if k.jid:
        x = b''
        try:
            x = os.read(k.sx, 65536) if k.sx >= 0 else b''
        except OSError:
            pass
        if x[:1] == b'\6':
            x, k.acked = x[1:], True
        if not k.acked and not k.killed and os.WIFSIGNALED(st) and k.tries < 3:
            jid = k.jid  # killed before it got the job: run it in a new child
            del jobs[jid]
            discard(k)
            hand(jid, k.job, None, k.iq, k.ieof, k.tries + 1, k.oom0)
            return
        end_job(k, x, st)
    else:
        discard(k)
        if k is spare:
            spare_deaths += 1
            new_spare()


def on_wake(_, fd):
    try:
        while os.read(fd, 4096):
            pass
    except OSError:
        pass
    reap()


def on_input(_, fd):
    global last_id
    try:
        n = os.readv(0, [RBUF])  # into one buffer: no allocation per read
    except BlockingIOError:
        return
    except OSError:
        os._exit(0)
    if not n:
        os._exit(0)  # EOF: the owner is gone
    inb.extend(RVIEW[:n])
    p, end = 0, len(inb)
    while end - p >= 9:
        n, t, jid = HDR.unpack_from(inb, p)
        if t not in MAXLEN or n > MAXLEN[t]:
            die('bad frame: type %d, length %d' % (t, n))
        if end - p - 9 < n:
            break
        payload = bytes(inb[p + 9:p + 9 + n])
        p += 9 + n
        if t == JOB:
            if jid <= last_id:
                die('JOB %d: ids must grow' % jid)
            last_id = jid
            start_job(jid, payload)
            continue
        if jid == 0 or jid > last_id:
            die('frame type %d for job %d that was never started' % (t, jid))
        k = jobs.get(jid)
        if k is None:
            continue  # the job ended already: a race, not nonsense
        if t == STDIN:
            if payload and not k.ieof and k.si >= 0:
                k.iq.append(memoryview(payload))
                feed(k)
        elif t == STDIN_EOF:
            k.ieof = True
            feed(k)
        else:
            k.killed = True
            try:
                os.killpg(k.pid, signal.SIGKILL)
            except OSError:
                try:
                    kill(k.pid)
                except OSError:
                    pass
    del inb[:p]


def flush():
    global paused
    if out:
        try:
            n = os.write(1, out)
        except BlockingIOError:
            n = 0
        except OSError:
            os._exit(0)
        del out[:n]
    if out:
        reg(1, selectors.EVENT_WRITE, lambda a, fd: None, None)
    else:
        unreg(1)
    if len(out) > MIB:
        if not paused:
            paused = True
            for k in jobs.values():
                unreg(k.so)
                unreg(k.se)
    elif paused:
        paused = False
        for k in jobs.values():
            reg(k.so, selectors.EVENT_READ, on_out, (k, STDOUT))
            reg(k.se, selectors.EVENT_READ, on_out, (k, STDERR))


def main():
    for fd in (0, 1):
        try:  # the attach stream's pipes: 1 MiB (the default limit for a user) takes stdin about 1.6x faster
            fcntl.fcntl(fd, getattr(fcntl, 'F_SETPIPE_SZ', 1031), MIB)
        except OSError:
            pass
    for fd in (0, 1, 2):
        os.set_blocking(fd, False)
    wr, ww = os.pipe()
    os.set_blocking(wr, False)
    os.set_blocking(ww, False)
    signal.signal(signal.SIGCHLD, lambda s, f: None)
    signal.set_wakeup_fd(ww, warn_on_full_buffer=False)
    sel.register(wr, selectors.EVENT_READ, (on_wake, None))
    sel.register(0, selectors.EVENT_READ, (on_input, None))
    zygote_start()
    new_spare()
    if zsock is None:
        hello()  # else once the zygote's first spare is here
    flush()
    mp = sel.get_map()
    while True:
        t = DEADLINE - time.time()
        if t <= 0:
            os._exit(0)  # the hard lifetime deadline
        for key, _ in sel.select(t):
            if mp.get(key.fd) is key:  # skip events of an fd closed (and maybe reused) earlier in this batch
                key.data[0](key.data[1], key.fd)
        flush()


try:
    main()
except BaseException as e:
    diag('fatal: %r' % (e,))
    os._exit(2)

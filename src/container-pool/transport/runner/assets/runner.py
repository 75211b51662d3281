# container-pool runner: PID 1 of a runner-transport container. Code jobs run in a pre-forked, warmed spare child,
# cmd jobs through posix_spawn; frames over the direct channel's socket when the host offers one (else the attach
# stream: fd 0 in, fd 1 out), diagnostics on fd 2.
# Contract: docs/runner-protocol.md. Stdlib only, Python >= 3.8, started as
#   python3 -I -c <this source> <deadline-epoch-seconds> <protocol-version> [<options-json>]
RUNNER_VERSION = '1.3.0'
PROTOCOL = 3
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
CHAN = os.environ.pop('CONTAINER_POOL_CHANNEL', None)  # the direct channel's socket (never in a job's environ)
import array, ast, atexit, base64, builtins, errno, fcntl, importlib.machinery, io, json, linecache, re, select, socket, struct, time, traceback, warnings  # all, first
import _thread

MIB = 1 << 20
HDR = struct.Struct('>IBI')
JOB, STDIN, STDIN_EOF, KILL, INTERRUPT, RESET = 1, 2, 3, 4, 5, 6
HELLO, STDOUT, STDERR, EXIT, ERROR, RESET_DONE, OUTPUT = 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87
MAXLEN = {JOB: 4 + MIB + 64 * MIB, STDIN: MIB, STDIN_EOF: 0, KILL: 0, INTERRUPT: 0, RESET: 0}
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
PRELOAD = []  # the profile's pre-imports (the zygote imports them before its first spare)
if len(sys.argv) > 3:
    try:
        _o = json.loads(sys.argv[3])
        PRELOAD = _o.get('preload', []) if isinstance(_o, dict) and set(_o) <= {'preload'} else None
    except ValueError:
        PRELOAD = None
    if not (isinstance(PRELOAD, list) and len(PRELOAD) <= 32 and all(
            isinstance(m, str) and 0 < len(m) <= 128 and m.isascii() and all(x.isidentifier() for x in m.split('.'))
            for m in PRELOAD)):
        die('bad options: %r' % sys.argv[3][:200])
MPLDIR = '/tmp/.container-pool-matplotlib'
MPLCACHE = '/usr/local/share/matplotlib-cache'
# with pre-imports (a numeric stack): every job's defaults, and the zygote's before it imports
NUMENV = (('MPLBACKEND', 'Agg'), ('MPLCONFIGDIR', MPLDIR), ('OPENBLAS_NUM_THREADS', '1'), ('OMP_NUM_THREADS', '1'),
          ('MKL_NUM_THREADS', '1'), ('NUMEXPR_NUM_THREADS', '1')) if PRELOAD else ()
PRELOADED = [False]


def preload():
    # the numeric defaults, a writable MPLCONFIGDIR holding the image's font cache, then the imports (once per
    # process tree: a spare forked from the zygote that did it skips all of it)
    if not PRELOAD or PRELOADED[0]:
        return
    PRELOADED[0] = True
    for k, v in NUMENV:
        os.environ.setdefault(k, v)
    try:
        os.mkdir(MPLDIR, 0o700)
    except FileExistsError:
        pass
    except OSError as e:
        diag('preload: %s: %s' % (MPLDIR, e))
    try:
        names = os.listdir(MPLCACHE)
    except OSError:
        names = []
    for n in names:
        try:
            with open(os.path.join(MPLCACHE, n), 'rb') as f:
                b = f.read(64 * MIB)
            fd = os.open(os.path.join(MPLDIR, n), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW,
                         0o600)
            try:
                os.write(fd, b)
            finally:
                os.close(fd)
        except OSError:
            pass
    for m in PRELOAD:
        if m in sys.modules:
            continue
        try:
            __import__(m)
        except BaseException as e:
            diag('preload %s: %s: %s' % (m, type(e).__name__, e))
    try:
        n = len(os.listdir('/proc/self/task'))
    except OSError:
        n = 1
    if n > 1:  # every spare is a fork of this process: a thread's locks would be copied held
        diag('preload: the imports left %d threads running; forks of this process may deadlock' % (n - 1))


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


OOMFD = [-1]  # the runner's descriptor on it, opened once (CLOEXEC; every child closes it): re-read with pread


def oom_kills():
    if OOMFILE is None:
        return None
    try:
        if OOMFD[0] < 0:
            OOMFD[0] = os.open(OOMFILE, os.O_RDONLY | os.O_CLOEXEC)
        try:
            d = os.pread(OOMFD[0], 4096, 0)  # a cgroup file shows its counters anew at offset 0
        except OSError:
            os.close(OOMFD[0])
            OOMFD[0] = -1
            raise
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
            preload()
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
            for k, v in NUMENV:
                os.environ.setdefault(k, v)
        except (ValueError, OSError) as e:
            _fail('exec', e)
    except BaseException as e:
        _fail('spawn', e)
    try:
        os.chdir(h['workdir'])
    except (OSError, ValueError) as e:
        _fail('chdir', e, h['workdir'] + ': ')
    sys.modules['__main__'] = m
    sys.path.insert(0, '')
    if h.get('kind') == 'interp':
        interp_main(d)
    if h.get('lineBuffered'):
        sys.stdout.reconfigure(line_buffering=True)
    run_code(code, d)


# ---- the session interpreter (a child made from a spare with an `interp` job): serves cells until it dies

try:
    raise ValueError
except ValueError as _e:
    TB = type(_e.__traceback__)
    del _e
LIM = (('name', 256), ('value', 65536), ('traceback', 262144))


def u16(s):
    # a string's length as the host counts it (UTF-16 code units)
    return len(s) if s.isascii() else len(s.encode('utf-16-le', 'surrogatepass')) // 2


def cut(s, n, tail=False):
    # at most n UTF-16 units: the head (the tail for a traceback: its last line names the error)
    k = n
    while k > 0 and u16(s[-k:] if tail else s[:k]) > n:
        k -= u16(s[-k:] if tail else s[:k]) - n
    return s if len(s) <= k else (s[-k:] if tail else s[:k])


# Rich outputs (protocol 3): the value of a trailing expression, display(), matplotlib figures; rendered as
# IPython's formatters do, sent to the runner as `out` messages while the cell runs. The caps are the host's; the
# interpreter keeps them too, so it renders nothing past them. OUT: this process's state for the running cell.
OUT = {'on': False, 'gen': 0, 'max': 0, 'bytes': 0, 'n': 0, 'used': 0, 'stop': False, 'figs': [], 'say': None,
       'lock': _thread.allocate_lock(), 'pid': 0}
REPRS = (('image/png', '_repr_png_'), ('image/jpeg', '_repr_jpeg_'), ('image/svg+xml', '_repr_svg_'),
         ('text/html', '_repr_html_'), ('text/markdown', '_repr_markdown_'), ('text/latex', '_repr_latex_'),
         ('application/json', '_repr_json_'))


def _warn(what, obj, e):
    # a formatter that failed: one line on the cell's stderr, as IPython reports it (shorter)
    try:
        sys.stderr.write('%s of %s failed: %s: %s\n' % (what, type(obj).__name__, type(e).__name__, e))
    except Exception:
        pass


OVER = ('', -1)  # an entry past what is left of the byte budget: the output is dropped, nothing encoded


def _entry(mime, v):
    # a repr method's value as (message value, its size in bytes), None (nothing for this type) or OVER (larger
    # than what is left of the cell's byte budget: not copied nor encoded, a huge one would cost its size again)
    left = OUT['bytes'] - OUT['used']
    if mime in ('image/png', 'image/jpeg'):
        if isinstance(v, str):
            try:
                v = base64.b64decode(v.encode('ascii'))
            except (ValueError, UnicodeError):
                return None
        if not isinstance(v, (bytes, bytearray, memoryview)):
            return None
        if (v.nbytes if isinstance(v, memoryview) else len(v)) > left:
            return OVER
        v = bytes(v)
        return base64.b64encode(v).decode('ascii'), len(v)
    if mime == 'application/json':
        if isinstance(v, (str, bytes)):  # IPython takes a str as JSON text
            try:
                v = json.loads(v)
            except ValueError:
                return None
        try:
            j = json.dumps(v, ensure_ascii=False, separators=(',', ':'), allow_nan=False)
            if len(j) > left:
                return OVER
            return json.loads(j), len(j.encode('utf-8', 'surrogatepass'))
        except (TypeError, ValueError, RecursionError):
            return None
    if isinstance(v, str):
        if len(v) > left:  # more bytes than that in any encoding
            return OVER
        return v, len(v.encode('utf-8', 'surrogatepass'))
    return None


def _attr(obj, name):
    try:
        return getattr(obj, name, None)
    except Exception:
        return None


def _figdata(fig):
    data = {}
    try:
        b = io.BytesIO()
        fig.savefig(b, format='png', dpi=fig.dpi)  # at the figure's own dpi (not savefig.dpi): figsize x dpi px
        data['image/png'] = _entry('image/png', b.getbuffer())
    except Exception as e:
        _warn('savefig', fig, e)
    return data


def _bundle(obj):
    # {mime: (value, size)}: the mimebundle, then each _repr_*_ it did not give, then text/plain
    data = {}
    mf = sys.modules.get('matplotlib.figure')
    if mf is not None and isinstance(obj, getattr(mf, 'Figure', ())):
        OUT['figs'].append(obj)
        data = _figdata(obj)
    elif not isinstance(obj, type) and _attr(obj, '_ipython_canary_method_should_not_exist_') is None:
        m = _attr(obj, '_repr_mimebundle_')
        if callable(m):
            try:
                r = m(include=None, exclude=None)
            except Exception as e:
                _warn('_repr_mimebundle_', obj, e)
                r = None
            if isinstance(r, tuple) and len(r) == 2:
                r = r[0]
            if isinstance(r, dict):
                for k, v in r.items():
                    if k in MIMES and k not in data:
                        x = _entry(k, v)
                        if x is OVER:
                            return None
                        if x is not None:
                            data[k] = x
        for mime, name in REPRS:
            if mime in data:
                continue
            m = _attr(obj, name)
            if not callable(m):
                continue
            try:
                v = m()
            except Exception as e:
                _warn(name, obj, e)
                continue
            if isinstance(v, tuple) and len(v) == 2:
                v = v[0]
            if v is None:
                continue
            x = _entry(mime, v)
            if x is OVER:
                return None
            if x is None:
                _warn(name, obj, TypeError('returned %s' % type(v).__name__))
            else:
                data[mime] = x
    if 'text/plain' not in data:
        try:
            t = repr(obj)
            if not isinstance(t, str):
                raise TypeError('__repr__ returned non-string')
        except Exception:
            t = '<unprintable %s object>' % type(obj).__name__
        data['text/plain'] = _entry('text/plain', t)
    return None if any(x is OVER for x in data.values()) else data


def _send(kind, data, gen):
    # one output, or the drop mark when it passes the caps (then nothing more this cell)
    o = OUT
    b = None
    if data is not None and not o['stop'] and o['n'] < o['max']:
        size = sum(z for _, z in data.values())
        if o['used'] + size <= o['bytes']:
            b = json.dumps({'t': 'out', 'type': kind, 'data': {k: v for k, (v, _) in data.items()}}).encode()
            if len(b) > MIB:
                b = None
    with o['lock']:
        # a thread of a cell that is over, or a fork the code made (it shares the channel: its messages could
        # interleave with the interpreter's or come after `done`): dropped
        if not o['on'] or o['gen'] != gen or os.getpid() != o['pid']:
            return
        if b is None:
            if o['stop']:
                return
            o['stop'] = True
            b = b'{"t": "out", "type": "%s", "data": null}' % kind.encode()
        else:
            o['n'] += 1
            o['used'] += size
        o['say'](b)


def _pub(kind, obj):
    o = OUT
    gen = o['gen']
    if not o['on'] or os.getpid() != o['pid']:
        return
    _send(kind, None if o['stop'] or o['n'] >= o['max'] else _bundle(obj), gen)


def display(*objs, **kw):
    """Shows each object as a notebook would (its richest representations) in the cell's outputs."""
    raw = kw.get('raw', False)
    for obj in objs:
        if raw and isinstance(obj, dict):
            gen = OUT['gen']
            data = {k: x for k, x in ((k, _entry(k, v)) for k, v in obj.items() if k in MIMES) if x is not None}
            if 'text/plain' not in data:
                data['text/plain'] = ('', 0)
            _send('display', None if any(x is OVER for x in data.values()) else data, gen)
        else:
            _pub('display', obj)


def _figs(skip_shown, render=True):
    # every open figure as a display output (not those the cell displayed itself), then all closed
    plt = sys.modules.get('matplotlib.pyplot')
    if plt is None:
        return
    try:
        _patch(plt)
        ms = sys.modules['matplotlib._pylab_helpers'].Gcf.get_all_fig_managers() if render else []
    except Exception:
        ms = []
    try:
        for m in ms:
            try:
                fig = m.canvas.figure
            except Exception:
                continue
            if not (skip_shown and any(f is fig for f in OUT['figs'])):
                _pub('display', fig)  # past the caps: the drop mark, nothing rendered
    finally:
        try:
            plt.close('all')
        except Exception:
            pass


def _show(*a, **kw):
    """plt.show(): the open figures go to the cell's outputs now, then they are closed (as Jupyter's inline
    backend does)."""
    _figs(False)


_show._container_pool = True


def _patch(plt):
    if not getattr(getattr(plt, 'show', None), '_container_pool', False):
        plt.show = _show


def _ipdisplay(m):
    # a real IPython's display() (outside an IPython shell it prints the objects) is the interpreter's
    if getattr(m, 'display', display) is not display:
        m.display = display


HOOKS = {'matplotlib.pyplot': lambda m: _patch(m), 'IPython.core.display_functions': _ipdisplay,
         'IPython.core.display': _ipdisplay, 'IPython.display': _ipdisplay}


class _PltHook(object):
    # the first `import matplotlib.pyplot` gets plt.show patched, IPython's modules their display (one imported
    # already, pre-imported, is patched at the start)
    def find_spec(self, name, path=None, target=None):
        fix = HOOKS.get(name)
        if fix is None:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        ld = getattr(spec, 'loader', None)
        ex = getattr(ld, 'exec_module', None)
        if ex is None:
            return spec

        def exec_module(m, ex=ex):
            ex(m)
            fix(m)

        ld.exec_module = exec_module
        return spec


class _Shown(object):
    # IPython.display's objects, for images without IPython
    def __init__(self, data=None, url=None, filename=None, **kw):
        if filename is not None:
            with open(filename, 'rb') as f:
                data = f.read()
            if self._text:
                data = data.decode('utf-8', 'replace')
        self.data, self.url, self.filename = data, url, filename

    def __repr__(self):
        return '<IPython.core.display.%s object>' % type(self).__name__


class HTML(_Shown):
    _text = True

    def _repr_html_(self):
        return self.data


class Markdown(_Shown):
    _text = True

    def _repr_markdown_(self):
        return self.data


class Latex(_Shown):
    _text = True

    def _repr_latex_(self):
        return self.data


class SVG(_Shown):
    _text = True

    def _repr_svg_(self):
        return self.data


class JSON(_Shown):
    _text = True

    def _repr_json_(self):
        return self.data


class Image(_Shown):
    _text = False

    def __init__(self, data=None, url=None, filename=None, format=None, **kw):
        if isinstance(data, str) and filename is None and '\n' not in data and len(data) < 4096:
            filename, data = data, None  # IPython takes a short str as a file name
        _Shown.__init__(self, data, url, filename)
        f = (format or (filename or '').rpartition('.')[2] or 'png').lower()
        b = self.data if isinstance(self.data, bytes) else b''
        self.format = 'jpeg' if f in ('jpg', 'jpeg') or b[:3] == b'\xff\xd8\xff' else 'png'

    def _repr_png_(self):
        return self.data if self.format == 'png' else None

    def _repr_jpeg_(self):
        return self.data if self.format == 'jpeg' else None


def _ipython_shim():
    # `from IPython.display import display, HTML, ...` works without IPython; a real IPython is left alone
    try:
        if importlib.machinery.PathFinder.find_spec('IPython', [p for p in sys.path if p]) is not None:
            return
    except Exception:
        return
    ip, ipd = type(sys)('IPython'), type(sys)('IPython.display')
    ip.__path__ = []
    for c in (display, HTML, Markdown, Latex, SVG, JSON, Image):
        setattr(ipd, c.__name__, c)
    ipd.clear_output = lambda wait=False: None
    ip.display = ipd
    ip.get_ipython = lambda: None  # libraries that look for a notebook (matplotlib, tqdm) find none
    sys.modules['IPython'], sys.modules['IPython.display'] = ip, ipd


def _semicolon(src, node):
    # IPython: a trailing expression whose line ends with `;` shows nothing
    try:
        # lines as the compiler counts them (str.splitlines also breaks at \f, \v, \x1c, \u2028 ...)
        line = src.replace('\r\n', '\n').replace('\r', '\n').split('\n')[node.end_lineno - 1]
        return line.encode('utf-8')[node.end_col_offset:].lstrip().startswith(b';')
    except (IndexError, TypeError, UnicodeError):
        return False


def interp_main(d, _exit=os._exit, _dup2=os.dup2, _open=os.open, _close=os.close, _read=os.read, _getpid=os.getpid,
                _sig=signal.signal, _mask=signal.pthread_sigmask, _dumps=json.dumps, _loads=json.loads,
                _fmt=traceback.format_exception, _lc=linecache.cache, _getcwd=os.getcwd, _fsenc=os.fsencode,
                _compile=compile, _exec=exec, _eval=eval, _ast=ast.PyCF_ONLY_AST, _Expr=ast.Expr,
                _Expression=ast.Expression, INT=signal.SIGINT, BLK=signal.SIG_BLOCK, UNB=signal.SIG_UNBLOCK,
                IGN=signal.SIG_IGN, _str=str, _isinst=isinstance, _len=len, _type=type):
    n = _open('/dev/null', os.O_RDWR)
    for i in (0, 1, 2):  # between cells: nothing of a cell's pipes
        _dup2(n, i)
    _close(n)
    sys.argv = ['']
    me = _getpid()
    sk = socket.socket(fileno=SF)
    own = [sys.stdin, sys.stdout, sys.stderr]
    A = [False, False]  # armed (the code runs: raise), pending (recorded while it did not)

    def onint(s, f):
        if A[0]:
            raise KeyboardInterrupt
        A[1] = True

    _sig(INT, onint)
    _mask(BLK, [INT])

    def say(m):
        b = _dumps(m).encode()
        sk.sendall(_len(b).to_bytes(4, 'big') + b)

    mt = _thread.get_ident()

    def sayb(b):
        # an output (the code's own thread may call it too): a SIGINT while it is written is raised once it is
        # all written; a message cut by KeyboardInterrupt would break the channel (sendall runs the handler)
        if _thread.get_ident() != mt:  # only the main thread runs the handler
            sk.sendall(_len(b).to_bytes(4, 'big') + b)
            return
        a = A[0]
        A[0] = False
        try:
            sk.sendall(_len(b).to_bytes(4, 'big') + b)
        finally:
            A[0] = a
        if a and A[1]:
            A[1] = False
            raise KeyboardInterrupt

    O = OUT
    O['say'], O['pid'] = sayb, me
    builtins.display = display
    _ipython_shim()
    for k, fix in HOOKS.items():
        if sys.modules.get(k) is not None:
            fix(sys.modules[k])
    sys.meta_path.insert(0, _PltHook())

    def flush_all():
        a, b = sys.stdout, sys.stderr
        for f in (a, b) if a is own[1] and b is own[2] else (a, b, own[1], own[2]):
            try:
                f.flush()
            except BaseException:
                pass

    und = [None]  # the last result the interpreter bound to `_` (itself: the code's own `_`)
    und[0] = und
    sent = [None]  # os.environ._data as last reported in a `done` (a copy), None: report it
    kept, total = [], [0]  # the cells' sources in linecache (for tracebacks of their functions), at most 16 MiB
    hc = [None, None]  # the last cell's header: its bytes up to its name, and its dict (read only)
    dc = [None, None]  # the last plain `done` (no error, env unchanged): (status, cwd) and its bytes
    os.write(SF, b'\7')  # ready: set up, serving cells
    while True:
        try:
            msg, anc, _f, _a = sk.recvmsg(1, socket.CMSG_SPACE(4 * 4), socket.MSG_CMSG_CLOEXEC)
        except BaseException:
            _exit(0)
        fds = []
        for lvl, typ, data in anc:
            if lvl == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
                a = array.array('i')
                a.frombytes(data[:_len(data) - _len(data) % a.itemsize])
                fds.extend(a)
        if msg == b'I' and not fds:
            continue  # an INTERRUPT of an earlier cell that came after its code had returned
        if msg != b'C' or _len(fds) != 4:
            _exit(0)  # the runner is gone (EOF), or a cell's own thread took the message
        b = bytearray()
        while True:  # the cell: the runner sends `C` ahead (between cells) and writes the job when it comes
            try:
                c = _read(fds[3], CHUNK)
            except OSError:  # a thread of an earlier cell closed it
                _exit(0)
            if not c:
                break
            b += c
        _close(fds[3])
        if not b:  # the runner took the cell back (none came)
            for i in (0, 1, 2):
                _close(fds[i])
            continue
        _sig(INT, IGN)  # a pending SIGINT from before this cell is dropped (one for this cell comes with an `I`)
        _sig(INT, onint)
        A[1] = False
        flush_all()  # what a thread of an earlier cell left in the buffers goes to /dev/null, not this cell
        for i in (0, 1, 2):
            _dup2(fds[i], i)
            _close(fds[i])
        n = int.from_bytes(b[:4], 'big')
        hb = bytes(b[4:4 + n])
        h = cell_header(hb, hc)  # the last cell's header but its name (the usual case): no JSON parse
        if h is None:
            h = _loads(hb.decode('utf-8'))
            keep_cell_header(hb, h, hc)
        code = bytes(b[4 + n:])
        del b
        name = h['name']
        oc = h.get('outputs') or {}
        O['max'], O['bytes'], O['n'], O['used'], O['stop'] = oc.get('max', 0), oc.get('maxBytes', 0), 0, 0, False
        O['figs'] = []  # the figures this cell displayed itself (kept alive until its end, so `is` tells them apart)
        O['gen'] += 1
        rich = O['max'] > 0
        for i in (1, 2):
            f = own[i]
            if f.closed:
                f = own[i] = _stdio(i, 'wb', ('<stdout>', '<stderr>')[i - 1], IOENC[i], i == 2)
        sys.stdin = sys.__stdin__ = own[0] = _stdio(0, 'rb', '<stdin>', IOENC[0], False)
        sys.stdout = sys.__stdout__ = own[1]
        sys.stderr = sys.__stderr__ = own[2]
        lb = bool(h.get('lineBuffered'))
        if own[1].line_buffering != lb:
            try:
                own[1].reconfigure(line_buffering=lb)
            except BaseException:
                pass
        text = code.decode('utf-8', 'replace')
        _lc[name] = (_len(text), None, text.splitlines(True), name)
        kept.append((name, _len(text)))
        total[0] += _len(text)
        while total[0] > 16 * MIB and _len(kept) > 1:  # the sources of the oldest cells go first
            o, z = kept.pop(0)
            total[0] -= z
            _lc.pop(o, None)
        st, err, co, lco = 0, None, None, None
        try:
            if rich:  # a trailing expression is the cell's `result`: compiled apart, evaluated after the rest
                co = _compile(code, name, 'exec', _ast, dont_inherit=True)
                if co.body and _isinst(co.body[-1], _Expr) and not _semicolon(text, co.body[-1]):
                    lco = _compile(_Expression(co.body.pop().value), name, 'eval', dont_inherit=True)
                co = _compile(co, name, 'exec', dont_inherit=True)
            else:
                co = _compile(code, name, 'exec', dont_inherit=True)
            del code, text
            try:  # an `I` on the channel: an INTERRUPT of this cell whose SIGINT may have been dropped above
                x = sk.recv(64, socket.MSG_DONTWAIT)
                if not x or x.strip(b'I'):
                    _exit(0)  # the runner is gone, or a cell's own thread wrote there
                A[1] = True
            except OSError:  # BlockingIOError: none
                pass
            O['on'] = True
            A[0] = True
            _mask(UNB, [INT])
            if A[1]:
                raise KeyboardInterrupt
            _exec(co, d)
            if lco is not None:
                v = _eval(lco, d)
                if v is not None:
                    # as IPython: `_` is the last result unless the code bound `_` itself, in `__main__` or
                    # in builtins (gettext's `_`, gettext.install())
                    if ('_' not in d or d['_'] is und[0]) and '_' not in builtins.__dict__:
                        d['_'] = und[0] = v
                    else:
                        und[0] = und
                    _pub('result', v)
                v = None
            _figs(True)  # also without rich outputs (max 0: counted as dropped), or they would show in a later cell
            A[0] = False
        except SystemExit as e:
            A[0] = False
            try:
                st = _exitcode(e.code)
                if st:
                    err = {'name': 'SystemExit', 'value': _str(e.code), 'traceback': ''}
            except BaseException:
                st, err = 1, {'name': 'SystemExit', 'value': '', 'traceback': ''}
            e = None
            try:  # the figures it made still show, as after an exception
                A[0] = True
                _figs(True)
            except BaseException:
                pass
            A[0] = False
        except BaseException as e:
            A[0] = False
            st = 1
            try:
                err = _excreport(e, _fmt)
            except BaseException:
                err = {'name': 'BaseException', 'value': '', 'traceback': ''}
            try:  # the figures the code made before it failed still show (an interrupted cell's are closed)
                A[0] = True
                _figs(True, not _isinst(e, KeyboardInterrupt))
            except BaseException:
                pass
            A[0] = False
            e = None
        A[0] = False
        with O['lock']:
            O['on'] = False  # from now on a thread's display() is dropped
        O['figs'] = []
        _mask(BLK, [INT])
        try:
            if _getpid() != me:  # a fork the cell made ran to the end of the code: it ends here, as a program would
                flush_all()
                if err and err['traceback']:
                    os.write(2, err['traceback'].encode('utf-8', 'replace'))
                _exit(st)
            if err is not None:
                for k, lim in LIM:
                    err[k] = cut(err[k], lim, k == 'traceback')
            flush_all()
            n = _open('/dev/null', os.O_RDWR)
            for i in (0, 1, 2):
                _dup2(n, i)
            _close(n)
            try:
                cwd = _getcwd()
                if _len(_fsenc(cwd)) > 4096:
                    cwd = None
            except BaseException:
                cwd = None
            try:
                ed = getattr(os.environ, '_data', None)  # bytes -> bytes: unchanged since the last report, null
                if _type(ed) is dict and ed == sent[0]:
                    env, ed = None, sent[0]
                else:
                    ed = dict(ed) if _type(ed) is dict else None
                    env = ['%s=%s' % (k, v) for k, v in os.environ.items()]
                    if not all(_isinst(x, str) for x in env):
                        env = ed = None
            except BaseException:
                env = ed = None
            if err is None and env is None and dc[0] == (st, cwd):  # as the last one: its bytes, no json.dumps
                sk.sendall(dc[1])
                sent[0] = ed
                co = ed = None
                continue
            m = {'t': 'done', 'status': st, 'error': err, 'cwd': cwd, 'env': env}
            for i in range(40):
                b = _dumps(m).encode()
                if _len(b) <= MIB:
                    break
                if m['env'] is not None:
                    m['env'] = ed = None
                elif err is not None:
                    err['traceback'] = err['traceback'][-(_len(err['traceback']) // 2):]
                    err['value'] = err['value'][:_len(err['value']) // 2]
            b = _len(b).to_bytes(4, 'big') + b
            sk.sendall(b)
            if err is None and env is None:
                dc[0], dc[1] = (st, cwd), b
            sent[0] = ed
            del m, b
            err = env = co = ed = None
        except BaseException:
            _exit(70)  # the runner sees the death: the cell ends alive: false


def _exitcode(c):
    # as CPython's handle_system_exit computes the status (without printing)
    if c is None:
        return 0
    if isinstance(c, int):
        return c & 255 if -(1 << 63) <= c < (1 << 63) else 255
    return 1


def _excreport(e, fmt):
    # the report of an exception that ended a cell: only the user's frames (the interpreter's own are G's)
    xs = []
    tb = e.__traceback__
    while tb is not None:
        if tb.tb_frame.f_globals is not G:
            xs.append(tb)
        tb = tb.tb_next
    t = None
    for x in reversed(xs):
        t = TB(t, x.tb_frame, x.tb_lasti, x.tb_lineno)
    e.__traceback__ = t
    sys.last_type, sys.last_value, sys.last_traceback = type(e), e, t
    if sys.version_info >= (3, 12):
        sys.last_exc = e
    try:
        name = type(e).__qualname__
        name = name if isinstance(name, str) else type(e).__name__
    except BaseException:
        name = 'BaseException'
    try:
        value = str(e)
    except BaseException:
        value = '<exception str() failed>'
    try:
        tbt = ''.join(fmt(type(e), e, t))
    except BaseException:
        tbt = ''
    return {'name': name, 'value': value, 'traceback': tbt}


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

CIN, COUT = 0, 1  # the host's channel: the attach stream's stdin and stdout, or two descriptors of the socket
EP = select.epoll()  # the loop's (CLOEXEC): epoll itself, no selectors layer (less code per wake-up)
REGS = {}  # fd -> (callback, arg), one tuple per registration
EV_READ, EV_WRITE = select.EPOLLIN, select.EPOLLOUT
out = bytearray()  # the outbound queue (frames to the host)
later = []  # interpreters to send the next cell's pipes to once the loop has written what it has (prepare)
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
interp = None  # the session interpreter (Interp), when one runs
interp_seq = 0  # interpreters started in this container
base = None  # (env, workdir) of the cell that started the first interpreter that became ready: for restarts
sess = [None, None]  # the interpreter's env and cwd as it last reported them (session cmd jobs)
cell = None  # the running cell's Kid
want_interp = None  # (env, workdir): start an interpreter as soon as a spare is there (after RESET)
resetting = False


class Interp(object):
    __slots__ = ('pid', 'sock', 'fd', 'rb', 'st', 'acked', 'ftext', 'n', 'env', 'wd', 'tries', 'cell', 'served',
                 'reaped', 'prep')

    def __init__(self, pid, sx, n, env, wd, tries):
        self.pid, self.sock, self.fd, self.n, self.env, self.wd, self.tries = pid, socket.socket(fileno=sx), sx, n, \
            env, wd, tries
        self.rb, self.st, self.acked, self.ftext, self.cell, self.served, self.reaped = bytearray(), 0, False, \
            bytearray(), None, 0, False
        self.prep = None  # the next cell's pipes, sent ahead: (stdin w, stdout r, stderr r, job w)


class Kid(object):
    __slots__ = ('pid', 'si', 'so', 'se', 'sj', 'sx', 'jid', 'iq', 'ieof', 'jq', 'job', 'acked', 'killed', 'tries',
                 'oom0', 'cell', 'started', 'intr', 'cfds', 'omax', 'obound', 'ofwd', 'ofb', 'odrop')

    def __init__(self, pid, si, so, se, sj, sx):
        self.pid, self.si, self.so, self.se, self.sj, self.sx = pid, si, so, se, sj, sx
        self.jid, self.iq, self.ieof, self.jq = 0, [], False, None
        self.job, self.acked, self.killed, self.tries = None, sj < 0, False, 0
        self.oom0 = None
        self.cell, self.started, self.intr, self.cfds = None, False, False, None  # cell jobs: the Interp, ...
        self.omax, self.obound, self.ofwd, self.ofb, self.odrop = 0, 0, 0, 0, 0  # ... and its rich outputs


def kill(pid):
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass


def reg(fd, ev, cb, arg):
    if fd >= 0 and fd not in REGS:
        EP.register(fd, ev)
        REGS[fd] = (cb, arg)


def unreg(fd):
    if fd >= 0 and REGS.pop(fd, None) is not None:
        EP.unregister(fd)


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
    preload()
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
    reg(a.fileno(), EV_READ, on_zygote, None)


def zygote_gone():
    global zsock, zpid, zpending
    if zsock is not None:
        unreg(zsock.fileno())
        zsock.close()
    if zpid:
        kill(zpid)
    zsock, zpending = None, False


def on_zygote(_, fd):
    global zpending, spare, spare_deaths, want_interp
    while zsock is not None:
        try:
            msg, anc, _f, _a = zsock.recvmsg(8, socket.CMSG_SPACE(5 * 4), socket.MSG_CMSG_CLOEXEC)
        except BlockingIOError:
            return
        except OSError:
            msg, anc = b'', []
        if not msg:
            zygote_gone()
            if spare is None:  # a spare it made before it died stays ours (its child now): never dropped, its fds kept
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
        if want_interp is not None:
            w, want_interp = want_interp, None
            if interp is None:
                start_interp(*w)


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
        reg(k.sj, EV_WRITE, feed_job_cb, k)
    else:
        k.sj = close(k.sj)


def feed_job_cb(k, fd):
    feed_job(k)


HCELL = [None, None]  # the last cell's JOB header: its bytes up to its name, and its checked dict (read only)


def cell_header(hb, cache):
    # the host writes a cell's `name` last (`,"name":"<cell-N>"}`): the same bytes before it as the last header's,
    # and a plain name, are the same header but its name; anything else is parsed
    i = hb.rfind(b',"name":"')
    if i < 0 or cache[0] is None or hb[:i] != cache[0]:
        return None
    m = CELLNAME.match(hb, i + 9)
    if m is None or m.end() != len(hb):
        return None
    h = dict(cache[1])
    h['name'] = m.group(1).decode('ascii')
    return h


def keep_cell_header(hb, h, cache):
    i = hb.rfind(b',"name":"')
    m = CELLNAME.match(hb, i + 9) if i >= 0 else None
    if m is not None and m.end() == len(hb) and h.get('name') == m.group(1).decode('ascii'):
        cache[0], cache[1] = bytes(hb[:i]), h


CELLNAME = re.compile(rb'(<cell-[0-9]{1,18}>)"}')


def start_job(jid, payload):
    global spare, spare_deaths
    n = int.from_bytes(payload[:4], 'big')
    if len(payload) < 4 or n > MIB or 4 + n > len(payload):
        die('bad JOB payload for job %d' % jid)
    hb = payload[4:4 + n]
    c = cell_header(hb, HCELL)
    if c is not None:  # a cell's header as the last one's but its name (the usual session call): no JSON parse
        start_cell(jid, c, payload, n)
        return
    try:
        h = json.loads(hb.decode('utf-8'))
        ok = (isinstance(h, dict) and h.get('kind') in ('code', 'cmd', 'cell') and isinstance(h.get('env'), list)
              and all(isinstance(x, str) for x in h['env']) and isinstance(h.get('workdir'), str)
              and isinstance(h.get('lineBuffered', False), bool))
        if ok and h['kind'] == 'cmd':
            a = h.get('argv')
            x = h.get('extraEnv', [])
            ok = (isinstance(a, list) and len(a) > 0 and all(isinstance(x, str) for x in a)
                  and isinstance(h.get('session', False), bool)
                  and isinstance(x, list) and all(isinstance(v, str) for v in x))
        if ok and h['kind'] == 'cell':
            o = h.get('outputs', {'max': 0, 'maxBytes': 0})
            ok = (isinstance(h.get('name'), str) and 0 < len(h['name']) <= 64 and isinstance(o, dict)
                  and set(o) == {'max', 'maxBytes'} and all(type(o[x]) is int for x in o)
                  and 0 <= o['max'] <= 1024 and 0 <= o['maxBytes'] <= 1 << 31)
    except ValueError:
        ok = False
    if not ok:
        die('bad JOB header for job %d' % jid)
    if h['kind'] == 'cmd':
        if NUMENV and not (h.get('session') and sess[0] is not None):  # the numeric defaults, as for code jobs
            e = envdict(h['env'])
            h['env'] = h['env'] + ['%s=%s' % kv for kv in NUMENV if kv[0] not in e]
        if h.get('session'):  # the interpreter's env and cwd as it last reported them
            h['env'] = sess[0] if sess[0] is not None else h['env']
            h['workdir'] = sess[1] if sess[1] is not None else h['workdir']
            if h.get('extraEnv'):  # the call's own variables, over the interpreter's
                e = envdict(h['env'])
                e.update(envdict(h['extraEnv']))
                h['env'] = ['%s=%s' % kv for kv in e.items()]
        start_cmd(jid, h)
        return
    if h['kind'] == 'cell':
        keep_cell_header(hb, h, HCELL)
        start_cell(jid, h, payload, n)
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
    reg(k.sx, EV_READ, on_status, k)


def began(jid, k, oom0=None):
    # oom0: the OOM kill counter when the job started (a retry keeps the first): an OOM between jobs (a background
    # process of an earlier one) is not this job's
    k.jid = jid
    k.oom0 = oom_kills() if oom0 is None else oom0
    jobs[jid] = k
    if not paused:
        reg(k.so, EV_READ, on_out, (k, STDOUT))
        reg(k.se, EV_READ, on_out, (k, STDERR))


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
        reg(k.si, EV_WRITE, feed_cb, k)
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


# ---- cell jobs: the session interpreter

def start_interp(env, wd, tries=0, n=None):
    # a spare (else a fresh fork) gets an `interp` job: it sets up as for a code job, then serves cells
    global spare, spare_deaths, interp, interp_seq, want_interp
    want_interp = None
    k, spare = spare, None
    if k is not None:
        spare_deaths = 0
    hb = json.dumps({'kind': 'interp', 'env': env, 'workdir': wd}).encode()
    payload = struct.pack('>I', len(hb)) + hb
    while True:
        if k is None:
            k = spawn(False)
            if not isinstance(k, Kid):
                if spare is None:
                    new_spare()
                return k
        try:
            w = os.write(k.sj, payload)
            break
        except BlockingIOError:
            w = 0
            break
        except OSError:  # the child is gone: a fresh one
            kill(k.pid)
            discard(k)
            k = None
    if spare is None:
        new_spare()
    kids.pop(k.pid, None)
    k.jq = memoryview(payload)[w:]
    feed_job(k)
    for f in (k.si, k.so, k.se):  # its fds 0, 1, 2 are /dev/null: cells bring their own
        close(f)
    k.si = k.so = k.se = -1
    if n is None:
        interp_seq += 1
        n = interp_seq
    sess[0] = sess[1] = None
    it = interp = Interp(k.pid, k.sx, n, env, wd, tries)
    k.sx = -1  # the Interp's now (k stays only while the rest of a large env is fed: feed_job closes k.sj)
    reg(it.fd, EV_READ, on_interp, it)
    return it


def start_cell(jid, h, payload, n):
    global cell, interp
    if cell is not None:
        die('JOB %d: a cell while cell %d runs' % (jid, cell.jid))
    it = interp
    if it is not None and it.fd < 0 and it.cell is None:
        # broken after the last cell ended (a message it sent later broke the rules: killed), not reaped yet: this
        # cell gets a fresh interpreter now instead of dying with that one (the reap of a forgotten pid is a no-op)
        interp = it = None
    if it is not None and it.prep is not None and it.st == 2 and it.fd >= 0:  # sent ahead: the job pipe is all
        iw, orr, er, jw = it.prep
        it.prep = None
        k = Kid(it.pid, iw, orr, er, jw, -1)
        k.acked, k.cell, k.started = True, it, True
        o = h.get('outputs', {'max': 0, 'maxBytes': 0})
        k.omax, k.obound = o['max'], 2 * o['maxBytes'] + 65536
        k.jq = memoryview(payload)
        cell = it.cell = k
        began(jid, k)
        feed_job(k)
        return
    fds = []
    try:
        if it is None:
            it = start_interp(h['env'], h['workdir'])
            if not isinstance(it, Interp):
                raise it
        for _ in range(4):
            fds.extend(os.pipe())
    except OSError as e:
        for f in fds:
            os.close(f)
        no = getattr(e, 'errno', None) or errno.EAGAIN
        error(jid, 'spawn', no, 'cannot start the interpreter: %s' % (getattr(e, 'strerror', None) or e))
        return
    ir, iw, orr, ow, er, ew, jr, jw = fds
    for f in (iw, orr, er, jw):
        os.set_blocking(f, False)
    k = Kid(it.pid, iw, orr, er, jw, -1)
    k.acked, k.cell, k.cfds = True, it, [ir, ow, ew, jr]
    o = h.get('outputs', {'max': 0, 'maxBytes': 0})
    k.omax, k.obound = o['max'], 2 * o['maxBytes'] + 65536
    k.jq = memoryview(payload)  # the JOB payload as it came: the interpreter reads name, lineBuffered, outputs
    cell = it.cell = k
    began(jid, k)
    feed_job(k)
    send_cell(it)


def send_cell(it):
    # the cell's stdin, stdout, stderr and job pipe to the interpreter, once it is ready
    k = it.cell
    if k is None or k.cfds is None or it.st != 2 or it.fd < 0:
        return
    try:
        it.sock.sendmsg([b'C'], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array('i', k.cfds))])
        k.started = True
    except OSError:
        interp_broken(it)
    for f in k.cfds:
        os.close(f)
    k.cfds = None
    if k.started and k.intr:  # an INTERRUPT that came before the cell could be sent
        interrupt_cell(it)


def prepare(it):
    # the next cell's pipes, sent to an idle interpreter ahead of the cell (off the cell's path): it reads the job
    # pipe, and takes the other three only once the job is there (fds 0, 1, 2 stay /dev/null between cells)
    if it is not interp or it.prep is not None or it.cell is not None or it.st != 2 or it.fd < 0 or resetting:
        return
    fds = []
    try:
        for _ in range(4):
            fds.extend(os.pipe())
    except OSError:
        for f in fds:
            os.close(f)
        return  # the cell makes its own
    ir, iw, orr, ow, er, ew, jr, jw = fds
    for f in (iw, orr, er, jw):
        os.set_blocking(f, False)
    try:
        it.sock.sendmsg([b'C'], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array('i', [ir, ow, ew, jr]))])
        it.prep = (iw, orr, er, jw)
    except OSError:
        for f in (iw, orr, er, jw):
            os.close(f)
        interp_broken(it)
    for f in (ir, ow, ew, jr):
        os.close(f)


def drop_prep(it):
    if it.prep is not None:
        for f in it.prep:
            os.close(f)
        it.prep = None


def interrupt_cell(it):
    # `I` on its channel, then SIGINT: a SIGINT that lands before the interpreter took the cell is dropped with the
    # stale ones, the `I` (sent first) is seen after that; one left over is skipped at the next cell
    if it.fd >= 0:
        try:
            it.sock.send(b'I')
        except OSError:
            pass
    sigint(it.pid)


def interp_broken(it):
    # its channel broke the rules (or closed): SIGKILL; the reap ends the running cell (alive: false)
    if not it.reaped:
        kill(it.pid)
    drop_prep(it)
    if it.fd >= 0:
        unreg(it.fd)
        it.sock.close()
        it.fd = -1


def on_interp(it, fd):
    try:
        d = os.read(fd, 65536)
    except BlockingIOError:
        return
    except OSError:
        d = b''
    if not d:
        interp_broken(it)
        return
    it.rb += d
    parse_interp(it)


def parse_interp(it):
    # the ack (0x06), then `ready` (0x07) or why it could not start (as a code job's), then messages
    global base
    while it.rb and it.fd >= 0:
        if it.st == 0:
            if it.rb[0] == 6:
                del it.rb[:1]
                it.acked = True
            it.st = 1
            continue
        if it.st == 1:
            if it.acked and not it.ftext and it.rb[0] == 7:
                del it.rb[:1]
                it.st = 2
                if base is None:
                    base = (it.env, it.wd)
                send_cell(it)
                prepare(it)
                continue
            it.ftext += it.rb
            del it.rb[:]
            if len(it.ftext) > 65536:
                interp_broken(it)
            return
        if len(it.rb) < 4:
            return
        n = int.from_bytes(it.rb[:4], 'big')
        if n > MIB:
            interp_broken(it)
            return
        if len(it.rb) < 4 + n:
            return
        m = bytes(it.rb[4:4 + n])
        del it.rb[:4 + n]
        interp_msg(it, m)


def done_ok(v):
    if set(v) != {'t', 'status', 'error', 'cwd', 'env'}:
        return False
    st, e, c, env = v['status'], v['error'], v['cwd'], v['env']
    if type(st) is not int or not 0 <= st <= 255:
        return False
    if e is not None:
        if not isinstance(e, dict) or set(e) != {'name', 'value', 'traceback'}:
            return False
        for key, lim in LIM:
            x = e[key]
            if not isinstance(x, str) or len(x) > lim or u16(x) > lim:
                return False
    if c is not None:
        if not isinstance(c, str) or not c.startswith('/') or '\0' in c:
            return False
        try:
            if len(os.fsencode(c)) > 4096:
                return False
        except (UnicodeError, ValueError):
            return False
    if env is not None:
        if not isinstance(env, list) or not all(isinstance(x, str) and '\0' not in x for x in env):
            return False
    return True


MIMES = frozenset(('text/plain', 'text/html', 'text/markdown', 'text/latex', 'image/svg+xml', 'image/png',
                   'image/jpeg', 'application/json'))


def out_ok(v):
    if len(v) != 3 or v.get('type') not in ('result', 'display') or 'data' not in v:
        return False
    d = v['data']
    return d is None or (isinstance(d, dict) and 'text/plain' in d and all(
        x in MIMES and (x == 'application/json' or isinstance(y, str)) for x, y in d.items()))


def _nonjson(c):
    raise ValueError(c)  # NaN, Infinity: Python's extension of JSON (the host's JSON.parse refuses them)


DONE = [None, None]  # the last valid `done` message: its bytes and its (checked, read-only) dict


def interp_msg(it, m):
    k = it.cell
    if m == DONE[0]:  # the same bytes as the last valid done (the usual cell): the same checked dict
        v = DONE[1]
    else:
        try:
            v = json.loads(m.decode('utf-8'), parse_constant=_nonjson)
        except (ValueError, RecursionError):  # too deeply nested for the parser: malformed (never the runner's death)
            v = None
    if k is not None and isinstance(v, dict):
        t = v.get('t')
        if t == 'out' and k.started and out_ok(v):
            if k.ofwd < k.omax and k.ofb < k.obound:  # the host's bounds on what it has to read
                k.ofwd += 1
                k.ofb += len(m)
                send(OUTPUT, k.jid, m)
            else:
                k.odrop += 1
            return
        if t == 'done' and k.started and not it.rb and (v is DONE[1] or done_ok(v)):
            if v is not DONE[1] and v['error'] is None:
                DONE[0], DONE[1] = bytes(m), v
            it.served += 1
            if v['env'] is not None:
                sess[0] = v['env']
            if v['cwd'] is not None:
                sess[1] = v['cwd']
            end_cell(k, v['status'], True, {'error': v['error']})
            later.append(it)  # the next cell's pipes, once the EXIT is written
            return
    interp_broken(it)


def sigint(pid):
    try:
        os.kill(pid, signal.SIGINT)
    except OSError:
        pass


def end_cell(k, st, alive, rep, err=None):
    global cell
    it, jid = k.cell, k.jid
    drain(k, k.so, STDOUT)
    drain(k, k.se, STDERR)
    discard(k)
    for f in k.cfds or ():
        os.close(f)
    k.cfds = None
    del jobs[jid]
    k.jid = 0
    cell = it.cell = None
    if err:
        error(jid, err[0], err[1], err[2])
        return
    o, o0 = oom_kills(), k.oom0
    if rep is None or rep['error'] is None:  # the usual cell: no json.dumps
        send(EXIT, jid, b'{"status": %d, "oomKills": %s, "oomKillsAtStart": %s, "interpreter": %d, "alive": %s, '
             b'"report": %s, "outputsDropped": %d}' % (
                 st, b'null' if o is None else b'%d' % o, b'null' if o0 is None else b'%d' % o0, it.n,
                 b'true' if alive else b'false', b'null' if rep is None else b'{"error": null}', k.odrop))
        return
    send(EXIT, jid, json.dumps({'status': st, 'oomKills': o, 'oomKillsAtStart': o0, 'interpreter': it.n,
                                'alive': alive, 'report': rep, 'outputsDropped': k.odrop}).encode())


def interp_reaped(it, st):
    global interp
    if os.WIFSTOPPED(st):
        kill(it.pid)
        return
    if os.WIFCONTINUED(st):
        return
    it.reaped = True
    while it.fd >= 0:  # what it said before it died (a done, why it could not start)
        try:
            d = os.read(it.fd, 65536)
        except OSError:
            break
        if not d:
            break
        it.rb += d
        parse_interp(it)
    interp_broken(it)
    if interp is it:
        interp = None
    k = it.cell
    if k is not None:
        if not it.acked and not k.killed and not resetting and os.WIFSIGNALED(st) and it.tries < 3:
            ni = start_interp(it.env, it.wd, it.tries + 1, it.n)  # killed before it got its job: another one
            if isinstance(ni, Interp):
                ni.cell, k.cell, k.pid = k, ni, ni.pid
                return
        err = None
        if it.st < 2 and it.ftext:
            p = it.ftext.decode('utf-8', 'replace').split('\0', 2)
            try:
                err = (p[0], int(p[1]), p[2])
            except (IndexError, ValueError):
                err = None
            if err is not None and err[0] not in ('exec', 'chdir', 'spawn'):
                err = None
        end_cell(k, 128 + os.WTERMSIG(st) if os.WIFSIGNALED(st) else os.WEXITSTATUS(st), False, None, err)
    if not resetting and it.st == 2 and (it.served or k is not None) and base is not None and interp is None:
        start_interp(*base)  # eagerly: the next cell does not wait for it


def do_reset():
    # every process of the container but PID 1, whatever its group or session; bounded
    global resetting, want_interp
    resetting = True
    had = base or ((interp.env, interp.wd) if interp is not None else None)
    for k in jobs.values():
        k.killed = True
    end = time.monotonic() + 1.5
    sts = []
    while True:
        try:
            os.kill(-1, signal.SIGKILL)
        except OSError:
            pass
        while True:
            try:
                pid, st = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            sts.append((pid, st))
        try:
            left = [p for p in os.listdir('/proc') if p.isdigit() and p != '1']
        except OSError:
            left = []
        if not left or time.monotonic() >= end:
            break
        time.sleep(0.001)
    zst = []
    while zsock is not None:  # wait statuses the zygote sent before it died
        try:
            msg, anc, _f, _a = zsock.recvmsg(8, socket.CMSG_SPACE(5 * 4), socket.MSG_CMSG_CLOEXEC)
        except OSError:
            break
        for lvl, typ, data in anc:
            if lvl == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
                a = array.array('i')
                a.frombytes(data[:len(data) - len(data) % a.itemsize])
                for f in a:
                    os.close(f)
        if not msg:
            break
        if len(msg) == 8:
            zst.append(struct.unpack('=ii', msg))
    for pid, st in zst + sts:
        on_reaped(pid, st)
    if zsock is not None:
        zygote_gone()
    resetting = False
    zygote_start()
    if spare is None:
        new_spare()
    if had is not None and interp is None:
        if spare is not None:
            start_interp(*had)
        else:
            want_interp = had
    send(RESET_DONE, 0, json.dumps({'left': len(left)}).encode())


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
    if interp is not None and pid == interp.pid:
        interp_reaped(interp, st)
        return
    if pid == zpid:
        if os.WIFSTOPPED(st):
            kill(pid)
            return
        zygote_gone()
        if resetting:
            return
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
            if k is spare and not resetting:
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
            if resetting:
                spare = None
                return
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
        n = os.readv(CIN, [RBUF])  # into one buffer: no allocation per read
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
        if t == RESET:
            if jid != 0:
                die('RESET with job id %d' % jid)
            do_reset()
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
        elif t == INTERRUPT:
            if k.cell is not None:  # the interpreter only, once the cell was sent to it
                if k.started:
                    interrupt_cell(k.cell)
                else:
                    k.intr = True
            else:
                try:
                    os.killpg(k.pid, signal.SIGINT)
                except OSError:
                    pass
        elif k.cell is not None:
            k.killed = True
            kill(k.pid)
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
            n = os.write(COUT, out)
        except BlockingIOError:
            n = 0
        except OSError:
            os._exit(0)
        del out[:n]
    if out:
        reg(COUT, EV_WRITE, lambda a, fd: None, None)
    else:
        unreg(COUT)
    if len(out) > MIB:
        if not paused:
            paused = True
            for k in jobs.values():
                unreg(k.so)
                unreg(k.se)
    elif paused:
        paused = False
        for k in jobs.values():
            reg(k.so, EV_READ, on_out, (k, STDOUT))
            reg(k.se, EV_READ, on_out, (k, STDERR))


def on_lifeline(_, fd):
    # the attach stream's stdin with a direct channel: its EOF is the owner's end as well; nothing is read from it
    try:
        if os.read(0, 4096):
            return
    except BlockingIOError:
        return
    except OSError:
        pass
    os._exit(0)


def direct():
    # the host's socket (docs/runner-protocol.md, Direct channel): two descriptors of it, one registered for
    # reading and one for writing (an epoll registration per descriptor), both CLOEXEC and closed in every child
    global CIN, COUT
    s = None
    try:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(CHAN)
    except OSError as e:
        if s is not None:
            s.close()
        diag('direct channel %s: %s; frames on the attach stream' % (CHAN, e))
        return
    for o in (socket.SO_SNDBUF, socket.SO_RCVBUF):
        try:
            s.setsockopt(socket.SOL_SOCKET, o, MIB)
        except OSError:
            pass
    CIN = s.detach()
    COUT = os.dup(CIN)


def main():
    if CHAN:
        direct()
    for fd in (0, 1):
        try:  # the attach stream's pipes: 1 MiB (the default limit for a user) takes stdin about 1.6x faster
            fcntl.fcntl(fd, getattr(fcntl, 'F_SETPIPE_SZ', 1031), MIB)
        except OSError:
            pass
    for fd in {0, 1, 2, CIN, COUT}:
        os.set_blocking(fd, False)
    wr, ww = os.pipe()
    os.set_blocking(wr, False)
    os.set_blocking(ww, False)
    signal.signal(signal.SIGCHLD, lambda s, f: None)
    signal.set_wakeup_fd(ww, warn_on_full_buffer=False)
    reg(wr, EV_READ, on_wake, None)
    reg(CIN, EV_READ, on_input, None)
    if CIN != 0:
        reg(0, EV_READ, on_lifeline, None)
    zygote_start()
    new_spare()
    if zsock is None:
        hello()  # else once the zygote's first spare is here
    flush()
    get = REGS.get
    while True:
        t = DEADLINE - time.time()
        if t <= 0:
            os._exit(0)  # the hard lifetime deadline
        evs = EP.poll(t)
        if len(evs) == 1:  # the usual wake-up
            fd = evs[0][0]
            a = get(fd)
            if a is not None:
                a[0](a[1], fd)
        else:
            for fd, a in [(fd, get(fd)) for fd, _ in evs]:
                if a is not None and get(fd) is a:  # skip an fd closed (and maybe reused) earlier in this batch
                    a[0](a[1], fd)
        flush()
        while later:
            prepare(later.pop())


try:
    main()
except BaseException as e:
    diag('fatal: %r' % (e,))
    os._exit(2)

import ctypes, errno, json, os, signal, sys, time
libc = ctypes.CDLL(None, use_errno=True)
ME = os.getpid()
MARK = os.environ["CPATK_MARK"].encode()
def pids():
    return sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
def status(pid):
    try:
        return dict(l.split(":\t", 1) for l in open("/proc/%d/status" % pid).read().splitlines() if ":\t" in l)
    except OSError:
        return {}
def state(pid):
    return status(pid).get("State", "").strip()[:1]
def code(e):
    return errno.errorcode.get(e, str(e))
def tryit(fn):
    try:
        fn()
        return "ok"
    except OSError as e:
        return code(e.errno)
# exec: the lifeline is every uid-0 process (docker-init, sh, sleep, cat). runner: the runner's processes, PID 1
# and its helpers (zygote, spare), which run as the sandbox user and have the runner's command line.
TRANSPORT = os.environ.get("CPATK_TRANSPORT", "exec")
RUNNER = b"python3\0-I\0-c\0# container-pool runner"
def cmdline(pid):
    try:
        return open("/proc/%d/cmdline" % pid, "rb").read()
    except OSError:
        return b""
def lifeline():
    out = {}
    for p in pids():
        s = status(p)
        if TRANSPORT == "runner":
            mine = cmdline(p).startswith(RUNNER)
        else:
            mine = s.get("Uid", "").split()[:1] == ["0"]
        if mine:
            out[str(p)] = {k: s.get(k, "").strip().split(" ")[0] for k in ("Name", "State", "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs", "Seccomp")}
            out[str(p)]["Uid"] = (s.get("Uid", "").split() or [""])[0]
            out[str(p)]["PPid"] = s.get("PPid", "").strip()
    return out
def name(n):
    libc.prctl(15, ctypes.c_char_p(n), 0, 0, 0)
def wait_gone(pid):
    # until the foreground (the execution itself) has exited: the attack must not end it
    for _ in range(500):
        try:
            if open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()[0] == "Z":
                return
        except (OSError, IndexError):
            return
        time.sleep(0.01)
def daemon(loop):
    # double fork + setsid, stdio on /dev/null: runs on after the execution returned
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            fd = os.open("/dev/null", os.O_RDWR)
            for i in (0, 1, 2):
                os.dup2(fd, i)
            name(MARK)
            try:
                loop()
            finally:
                os._exit(0)
        os._exit(0)
    os.wait()
def sleeper():
    pid = os.fork()
    if pid == 0:
        time.sleep(60)
        os._exit(0)
    return pid
def report(**kw):
    kw["lifeline"] = LIFE
    sys.stdout.write(json.dumps(kw) + "\n")
    sys.stdout.flush()
# exec: the lifeline comes up as docker-init -> sh (exec cat) + sh -> sleep; runner: PID 1 -> zygote -> spare
# (there before the runner's HELLO). Attack it once it is all there.
for _ in range(300):
    if TRANSPORT == "runner":
        if len(lifeline()) >= 3:
            break
    elif {"cat", "sleep"} <= {v["Name"] for v in lifeline().values()}:
        break
    time.sleep(0.01)
LIFE = lifeline()
LPIDS = [int(p) for p in LIFE]

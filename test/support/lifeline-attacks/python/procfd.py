# /proc/<pid>/fd (the owner's attach stream is fd 0 of cat), environ, mem, root of every pid; and the other
# handles on another process: renice it, raise its oom_score_adj, read its limits (prlimit).
import resource
def opens(p):
    return {
        "fd": tryit(lambda: os.listdir("/proc/%d/fd" % p)),
        "fd0": tryit(lambda: os.close(os.open("/proc/%d/fd/0" % p, os.O_RDONLY | os.O_NONBLOCK))),
        "fd1w": tryit(lambda: os.close(os.open("/proc/%d/fd/1" % p, os.O_WRONLY | os.O_NONBLOCK))),
        "environ": tryit(lambda: open("/proc/%d/environ" % p, "rb").read()),
        "mem": tryit(lambda: os.close(os.open("/proc/%d/mem" % p, os.O_RDWR))),
        "root": tryit(lambda: os.listdir("/proc/%d/root/" % p)),
        "nice": tryit(lambda: os.setpriority(os.PRIO_PROCESS, p, 19)),
        "oomAdj": tryit(lambda: open("/proc/%d/oom_score_adj" % p, "w").write("1000")),
        "prlimit": tryit(lambda: resource.prlimit(p, resource.RLIMIT_NOFILE)),
    }
victim = sleeper()
control = opens(victim)
os.kill(victim, signal.SIGKILL)
os.waitpid(victim, 0)
report(control=control, open={str(p): opens(p) for p in pids() if p != ME})
def loop():
    held = []
    while True:
        for p in LPIDS:
            for f in ("fd/0", "fd/1", "fd/2", "mem", "environ"):
                try:
                    held.append(os.open("/proc/%d/%s" % (p, f), os.O_RDWR | os.O_NONBLOCK))
                except OSError:
                    pass
        held = held[-8:]
        time.sleep(0.02)
daemon(loop)

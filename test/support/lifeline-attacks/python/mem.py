# Children that allocate 40 MiB each, more than the memory limit holds: repeated OOM kills, refilled.
def loop():
    kids = set()
    while True:
        while len(kids) < 4:
            try:
                pid = os.fork()
            except OSError:
                break
            if pid == 0:
                name(MARK)
                hold = b"\1" * (40 << 20)
                signal.pause()
                os._exit(0)
            kids.add(pid)
        try:
            while True:
                pid, _ = os.waitpid(-1, os.WNOHANG)
                if pid == 0:
                    break
                kids.discard(pid)
        except ChildProcessError:
            kids.clear()
        time.sleep(0.05)
def oom_kills():
    for l in open("/sys/fs/cgroup/memory/memory.oom_control"):
        if l.startswith("oom_kill "):
            return int(l.split()[1])
    return None
before = oom_kills()
daemon(loop)
for _ in range(150):
    if oom_kills() > before:
        break
    time.sleep(0.02)
report(oomKillsBefore=before, oomKills=oom_kills(), limit=int(open("/sys/fs/cgroup/memory/memory.limit_in_bytes").read()))

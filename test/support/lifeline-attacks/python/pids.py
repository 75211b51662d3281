# Fork until EAGAIN (the pids limit), then a bomb that keeps the pid table full and keeps forking.
kids, error = [], None
while len(kids) < 100000:
    try:
        pid = os.fork()
    except OSError as e:
        error = code(e.errno)
        break
    if pid == 0:
        time.sleep(60)
        os._exit(0)
    kids.append(pid)
for k in kids:
    os.kill(k, signal.SIGKILL)
for k in kids:
    os.waitpid(k, 0)
pidsMax = open("/sys/fs/cgroup/pids/pids.max").read().strip()
def loop():
    while True:
        try:
            if os.fork() == 0:
                try:
                    os.execv("/bin/sleep", [MARK, "100000"])
                finally:
                    os._exit(0)
        except OSError:
            time.sleep(0.01)
daemon(loop)
for _ in range(200):
    cur = open("/sys/fs/cgroup/pids/pids.current").read().strip()
    if cur == pidsMax:
        break
    time.sleep(0.01)
report(forked=len(kids), error=error, pidsMax=pidsMax, pidsCurrent=cur)

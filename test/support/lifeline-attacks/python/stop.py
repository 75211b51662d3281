# SIGSTOP and SIGKILL to every process it can name (pid 1, the lifeline sh, sleep, cat), kill(-1, SIGSTOP); then a loop of it.
victim = sleeper()
stop = {str(p): tryit(lambda p=p: os.kill(p, signal.SIGSTOP)) for p in pids() if p != ME}
kill = {str(p): tryit(lambda p=p: os.kill(p, signal.SIGKILL)) for p in LPIDS}
os.kill(victim, signal.SIGCONT)
group = tryit(lambda: os.kill(-1, signal.SIGSTOP))
# A stop takes effect when the target next runs: wait for the victim's (up to 2 s on a loaded machine).
for _ in range(200):
    if state(victim) == "T":
        break
    time.sleep(0.01)
after = {str(p): state(p) for p in LPIDS}
victimState = state(victim)
os.kill(victim, signal.SIGKILL)
os.waitpid(victim, 0)
report(stop={p: stop[p] for p in LIFE}, kill=kill, group=group, after=after, victimStop=stop[str(victim)], victimState=victimState)
def loop():
    wait_gone(ME)
    me = os.getpid()
    while True:
        for p in pids():
            if p != me:
                tryit(lambda: os.kill(p, signal.SIGSTOP))
        tryit(lambda: os.kill(-1, signal.SIGSTOP))
        for p in LPIDS:
            tryit(lambda: os.kill(p, signal.SIGKILL))
        time.sleep(0.02)
daemon(loop)

# kill(-1, SIGKILL): every process the caller may signal. The lifeline is not among them any more.
victim = sleeper()
group = tryit(lambda: os.kill(-1, signal.SIGKILL))
_, st = os.waitpid(victim, 0)
time.sleep(0.05)
alive = {str(p): state(p) not in ("", "Z", "X") for p in LPIDS}
direct = {str(p): tryit(lambda p=p: os.kill(p, signal.SIGKILL)) for p in LPIDS}
report(group=group, victimSignal=os.WTERMSIG(st) if os.WIFSIGNALED(st) else None, alive=alive, direct=direct)
def loop():
    wait_gone(ME)
    while True:
        tryit(lambda: os.kill(-1, signal.SIGKILL))
        for p in LPIDS:
            tryit(lambda: os.kill(p, signal.SIGKILL))
        time.sleep(0.02)
daemon(loop)

# PTRACE_SEIZE and PTRACE_ATTACH of every pid; a child of its own shows that ptrace itself works.
libc.ptrace.restype = ctypes.c_long
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
SEIZE, ATTACH, INTERRUPT = 0x4206, 16, 0x4207
def pt(req, pid):
    ctypes.set_errno(0)
    return "ok" if libc.ptrace(req, pid, None, None) == 0 else code(ctypes.get_errno())
victim = sleeper()
control = pt(SEIZE, victim)
os.kill(victim, signal.SIGKILL)
os.waitpid(victim, 0)
others = [p for p in pids() if p != ME]
seize = {str(p): pt(SEIZE, p) for p in others}
attach = {str(p): pt(ATTACH, p) for p in others}
tracers = {str(p): status(p).get("TracerPid", "").strip() for p in LPIDS}
report(control=control, seize=seize, attach=attach, tracers=tracers)
def loop():
    wait_gone(ME)
    while True:
        for p in pids():
            if p != os.getpid():
                pt(SEIZE, p)
                pt(ATTACH, p)
                pt(INTERRUPT, p)
        time.sleep(0.02)
daemon(loop)

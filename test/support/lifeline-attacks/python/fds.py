# Open descriptors to EMFILE; the background process closes all of its own, then holds the limit.
opened, error = [], None
while True:
    try:
        opened.append(os.open("/dev/null", os.O_RDONLY))
    except OSError as e:
        error = code(e.errno)
        break
for fd in opened:
    os.close(fd)
nofile = __import__("resource").getrlimit(__import__("resource").RLIMIT_NOFILE)
def loop():
    os.closerange(0, 1 << 16)
    while True:
        try:
            os.open("/dev/null", os.O_RDONLY)
        except OSError:
            time.sleep(0.02)
daemon(loop)
report(opened=len(opened), error=error, nofile=list(nofile))

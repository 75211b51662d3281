# Fill /tmp, the work dir and /dev/shm to ENOSPC; keep writing.
def fill(path):
    n = 0
    chunk = b"\0" * (1 << 20)
    try:
        with open(path, "wb", buffering=0) as f:
            while True:
                n += f.write(chunk)
    except OSError as e:
        return [n, code(e.errno)]
dirs = ["/tmp", os.environ["HOME"], "/dev/shm"]
filled = {d: fill(d + "/cpatk-fill") for d in dirs}
def loop():
    i = 0
    while True:
        for d in dirs:
            try:
                with open("%s/cpatk-more-%d" % (d, i), "wb") as f:
                    f.write(b"\0" * 65536)
            except OSError:
                pass
        i += 1
        time.sleep(0.02)
daemon(loop)
report(filled=filled)

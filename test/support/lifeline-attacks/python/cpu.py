# Four spinners (the container's CPU share is one CPU).
def loop():
    for _ in range(3):
        if os.fork() == 0:
            break
    while True:
        pass
daemon(loop)
report(spinners=4)

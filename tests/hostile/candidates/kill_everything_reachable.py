import os
import signal
import stat


def act():
    # No socket may be open here: the zygote's control socket would let this program order it.
    for name in os.listdir("/proc/self/fd"):
        try:
            if stat.S_ISSOCK(os.fstat(int(name)).st_mode):
                print(f"socket fd {name} is reachable", flush=True)
        except OSError:
            continue
    # Then kill whatever can be reached: the parents, PID 1 of this namespace, every process.
    for pid in (os.getppid(), 1, -1):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    # kill(-1) spares the caller: end this process too, so its evaluation fails.
    os.kill(os.getpid(), signal.SIGKILL)

NONE, SPOT, ON_DEMAND = 0, 1, 2
PATHS = __PATHS__


class Policy:
    def __init__(self, scenario):
        for path in PATHS:
            try:
                with open(path, "rb") as f:
                    print("READ", path, f.read(200))
            except OSError as exc:
                print("DENIED", path, type(exc).__name__)
        for fd in range(3, 64):  # an inherited descriptor of the hidden file would do as well
            try:
                import os
                print("FD", fd, os.readlink(f"/proc/self/fd/{fd}"), os.pread(fd, 40, 0))
            except OSError:
                pass

    def decide(self, state):
        return ON_DEMAND

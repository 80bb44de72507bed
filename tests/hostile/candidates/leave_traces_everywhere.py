import json
import os
import random
import signal
import sys
import types

MARKER = "evolve_leak_marker"


def act():
    # Module globals, sys.modules, the environment, signal handlers, cwd and the random stream.
    sys.modules["evaluate"].calls = 1000
    setattr(json, MARKER, True)
    sys.modules[MARKER] = types.ModuleType(MARKER)
    os.environ["EVOLVE_LEAK_MARKER"] = "left behind"
    os.putenv("EVOLVE_LEAK_MARKER", "left behind")
    signal.signal(signal.SIGUSR1, lambda *_: None)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    random.seed(1234)
    # Files wherever this process may write (some of these are read-only in the sandbox).
    for folder in (os.environ.get("TMPDIR", ""), "/tmp", "/dev/shm", "/var/tmp"):
        try:
            with open(os.path.join(folder, MARKER), "w") as f:
                f.write("left behind")
        except OSError:
            pass
    os.chdir("/")

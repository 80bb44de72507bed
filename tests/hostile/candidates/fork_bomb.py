import os
import subprocess
import sys
import time

# A copy of this loop runs in a separate interpreter carrying a marker in its argv, so the test
# can check that none of its descendants survive the evaluation.
BOMB = "import os, time\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        time.sleep(0.01)\n"


def solve(xs):
    subprocess.Popen([sys.executable, "-c", BOMB, "__MARKER__"])
    while True:
        try:
            os.fork()
        except OSError:
            time.sleep(0.01)

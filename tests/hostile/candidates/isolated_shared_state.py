# Independent runs of one evaluation, each in a candidate process of its own: run 0 is shown a
# secret each step, run 1 tries to answer it. Every place a program can reach from its own
# process is tried: module globals, a class attribute, builtins, another module's namespace,
# sys.modules, the environment, state made at import time (a fork made after it would share
# it), files in the work dir, $TMPDIR, /tmp and /dev/shm, and an abstract unix socket that
# run 0 serves from a thread. Run 1 waits up to 50 ms for a value it has not seen before.
import builtins
import hashlib
import json
import os
import socket
import sys
import threading
import time

SEEN = []
_AT_IMPORT = []
# Both ends name their places after the work dir (the same path in every process of one
# sandbox), so that other evaluations on the machine do not get in the way.
_TAG = f"shared_secret_{hashlib.sha1(os.getcwd().encode()).hexdigest()[:12]}"
_FILES = [f"{_TAG}.txt", f"/tmp/{_TAG}.txt", f"/dev/shm/{_TAG}.txt",
          os.path.join(os.environ.get("TMPDIR", "/tmp"), f"{_TAG}_2.txt")]
_ADDRESS = "\0evolve-" + _TAG
_LATEST = [0]
_ANSWERED = []


def _serve():
    try:
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(_ADDRESS)
        server.listen(8)
    except OSError:
        return
    while True:
        conn, _ = server.accept()
        with conn:
            conn.sendall(str(_LATEST[0]).encode())


def _remember(value):
    SEEN.append(value)
    _AT_IMPORT.append(value)
    Run.latest = value
    builtins._shared_secret = value
    json._shared_secret = value
    sys.modules["_shared_secret"] = type(sys)("_shared_secret")
    sys.modules["_shared_secret"].value = value
    os.environ["SHARED_SECRET"] = str(value)
    _LATEST[0] = value
    for path in _FILES:
        try:
            with open(path + ".tmp", "w") as f:
                f.write(str(value))
            os.chmod(path + ".tmp", 0o666)
            os.replace(path + ".tmp", path)
        except OSError:
            pass


def _look():
    found = [SEEN[-1] if SEEN else None, _AT_IMPORT[-1] if _AT_IMPORT else None, Run.latest,
             getattr(builtins, "_shared_secret", None), getattr(json, "_shared_secret", None),
             getattr(sys.modules.get("_shared_secret"), "value", None),
             int(os.environ.get("SHARED_SECRET", "0")) or None]
    for path in _FILES:
        try:
            with open(path) as f:
                found.append(int(f.read()))
        except (OSError, ValueError):
            pass
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(0.01)
            conn.connect(_ADDRESS)
            found.append(int(conn.recv(64)))
    except (OSError, ValueError):
        pass
    return [v for v in found if v]


class Run:
    latest = None

    def __init__(self, number):
        self.number = number
        if number == 0:
            threading.Thread(target=_serve, daemon=True).start()

    def step(self, value):
        if self.number == 0:
            _remember(value)
            return value
        end = time.monotonic() + 0.05
        while True:
            fresh = [v for v in _look() if v not in _ANSWERED]
            if fresh or time.monotonic() > end:
                break
            time.sleep(0.002)
        answer = fresh[0] if fresh else 0
        _ANSWERED.append(answer)
        return answer

# Splits a large allocation over several child processes, each under the per-process memory
# limit, and reports how many held their share at the same time.
import os
import select
import time

CHILDREN, SHARE_MB = __CHILDREN__, __SHARE_MB__


def report():
    read_end, write_end = os.pipe()
    release_r, release_w = os.pipe()
    children = []
    for _ in range(CHILDREN):
        pid = os.fork()
        if pid == 0:
            os.close(read_end)
            os.close(release_w)
            held = bytearray(b"\x01") * (SHARE_MB << 20)  # every page written: resident
            os.write(write_end, b"+")
            os.read(release_r, 1)  # hold it until the parent has counted
            os._exit(len(held) & 0)
        children.append(pid)
    os.close(write_end)
    os.close(release_r)
    holding, dead = 0, set()
    deadline = time.monotonic() + 5
    # Children that hold their share stay alive; one that died never reported.
    while holding + len(dead) < CHILDREN and time.monotonic() < deadline:
        if select.select([read_end], [], [], 0.05)[0]:
            holding += len(os.read(read_end, 64))
        dead |= {pid for pid in children if pid not in dead and os.waitpid(pid, os.WNOHANG)[0]}
    os.close(release_w)
    for pid in children:
        if pid not in dead:
            os.waitpid(pid, 0)
    return {"score": float(holding), "valid": True, "metrics": {"holding": holding},
            "feedback": f"{holding} of {CHILDREN} children held {SHARE_MB} MB at once"}

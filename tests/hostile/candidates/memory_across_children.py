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
            os.write(write_end, os.getpid().to_bytes(4, "big"))
            os.read(release_r, 1)  # hold it until the parent has counted
            os._exit(len(held) & 0)
        children.append(pid)
    os.close(write_end)
    os.close(release_r)
    reported, dead, data = set(), set(), b""
    deadline = time.monotonic() + 5
    # A child that holds its share stays alive; one the kernel killed for memory is dead,
    # whether it reported before that or not.
    while len(reported | dead) < CHILDREN and time.monotonic() < deadline:
        if select.select([read_end], [], [], 0.05)[0]:
            data += os.read(read_end, 64)
            reported |= {int.from_bytes(data[i:i + 4], "big") for i in range(0, len(data) // 4 * 4, 4)}
        dead |= {pid for pid in children if pid not in dead and os.waitpid(pid, os.WNOHANG)[0]}
    time.sleep(0.3)
    dead |= {pid for pid in children if pid not in dead and os.waitpid(pid, os.WNOHANG)[0]}
    holding = len(reported - dead)
    os.close(release_w)
    for pid in children:
        if pid not in dead:
            os.waitpid(pid, 0)
    return {"score": float(holding), "valid": True, "metrics": {"holding": holding},
            "feedback": f"{holding} of {CHILDREN} children held {SHARE_MB} MB at once"}

"""How many processes the kernel's out-of-memory killer has ended on this machine so far
(/proc/vmstat `oom_kill`, Linux 4.13 and later; it counts container (cgroup) limits too).

Read before and after an evaluation: a process of it that died of SIGKILL while the count went up
most likely died because the machine, or the container the run is in, ran out of memory, under
the load of everything else running there; not because of the program, and not by a limit of
the sandbox. Without this, such an evaluation came back invalid with "killed by SIGKILL" or "no
result", and its cause was nowhere.
"""

from __future__ import annotations


def oom_kills() -> int | None:
    """The machine's count of out-of-memory kills so far; None when the kernel does not say."""
    try:
        with open("/proc/vmstat", "rb") as stats:
            text = stats.read()   # one read; read twice per evaluation, so no line splitting
    except OSError:
        return None
    start = (b"\n" + text).find(b"\noom_kill ")
    if start < 0:
        return None
    try:
        return int(text[start + 9:].split(b"\n", 1)[0])
    except ValueError:
        return None


def kills_since(before: int | None) -> int | None:
    """Out-of-memory kills since `before` (a reading of `oom_kills`), None when unknown."""
    after = oom_kills()
    return None if before is None or after is None else max(0, after - before)


def oom_note(kills: int | None) -> str:
    """What to add to the reason of an evaluation killed by SIGKILL."""
    if kills is None:
        return ("whether the kernel's out-of-memory killer ended processes meanwhile is unknown "
                "here (no /proc/vmstat)")
    if kills <= 0:
        return "the kernel's out-of-memory killer ended no process meanwhile"
    return (f"the kernel's out-of-memory killer ended {kills} process(es) on this machine "
            f"meanwhile: the machine (or its container) ran out of memory, most likely not "
            f"because of this program; evaluate it again with more memory free")

"""Finding and killing a process tree through /proc, without cgroups.

The harness supervisor makes itself a *child subreaper*: descendants that are orphaned (a
double fork, `setsid`, a cleared environment) are re-parented to it instead of to init, so they
stay in its tree and die with the evaluation.
"""

from __future__ import annotations

import ctypes
import os
import signal
import time


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists (another user's counts: it is alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_PR_SET_CHILD_SUBREAPER = 36


def set_subreaper() -> bool:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except OSError:
        return False


def _parents() -> dict[int, int]:
    """pid -> parent pid for every live (non-zombie) process."""
    parents = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(b")") + 2:].split()
        if fields[0] != b"Z":
            parents[int(entry.name)] = int(fields[1])
    return parents


def descendants(root: int) -> list[int]:
    parents = _parents()
    children: dict[int, list[int]] = {}
    for pid, ppid in parents.items():
        children.setdefault(ppid, []).append(pid)
    found, frontier = [], [root]
    while frontier:
        pid = frontier.pop()
        for child in children.get(pid, ()):
            found.append(child)
            frontier.append(child)
    return found


def kill_descendants(root: int, rounds: int = 50) -> int:
    """Stop, then kill, every descendant of `root` until none is left; returns how many."""
    killed: set[int] = set()
    for _ in range(rounds):
        victims = descendants(root)
        if not victims:
            break
        # Stopping first keeps a fork bomb from replacing what we kill.
        for sig in (signal.SIGSTOP, signal.SIGKILL):
            for pid in victims:
                try:
                    os.kill(pid, sig)
                except OSError:
                    pass
        killed.update(victims)
        time.sleep(0.01)
    return len(killed)

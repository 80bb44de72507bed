"""Resource limits applied by the harness worker to itself (inherited by anything it starts).

They are set inside the sandbox, after any namespaces exist, so that a process-count limit counts
only the sandbox's own processes when it runs under its own uid.
"""

from __future__ import annotations

import os
import resource
from typing import Any


def _set(which: int, soft: int, hard: int | None = None) -> None:
    hard = soft if hard is None else hard
    _, current_hard = resource.getrlimit(which)
    if current_hard != resource.RLIM_INFINITY:
        soft, hard = min(soft, current_hard), min(hard, current_hard)
    resource.setrlimit(which, (soft, hard))


def _own_process_count() -> int:
    """Processes and threads of our uid (RLIMIT_NPROC counts them all, not just ours)."""
    uid, count = os.getuid(), 0
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid == uid:
                    count += len(os.listdir(f"/proc/{entry.name}/task"))
            except OSError:
                continue
    return count


def _killable_first() -> None:
    """When memory runs out (in the evaluation's cgroup, which on the warm path also holds
    the harness processes, or on the machine), the kernel kills the candidate's processes
    first: the highest OOM score adjustment, which any process may raise for itself and
    none of the candidate's can lower again without privileges."""
    try:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write("1000")
    except OSError:
        pass


def _few_malloc_arenas() -> None:
    """glibc gives a new thread a malloc arena of its own, reserving 64 MB of address space:
    under the address-space limit a few threads would exhaust it, and a thread that then
    fails to allocate while starting leaves the thread that started it waiting forever. Two
    arenas (as a process from the environment variable MALLOC_ARENA_MAX would get) keep
    threads within the limit their stacks set."""
    try:
        import ctypes

        ctypes.CDLL(None).mallopt(-8, 2)  # M_ARENA_MAX
    except (OSError, AttributeError):
        pass  # not glibc


def apply_limits(limits: dict[str, Any], *, dedicated_uid: bool = False) -> None:
    """Apply memory (address space), CPU seconds, file size, open files and process limits."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    _killable_first()
    if limits.get("memory_mb"):
        _set(resource.RLIMIT_AS, int(limits["memory_mb"]) << 20)
        _few_malloc_arenas()
    if limits.get("cpu_seconds"):
        # Soft limit sends SIGXCPU (reported as a CPU-time timeout); the hard one kills.
        cpu = int(limits["cpu_seconds"])
        _set(resource.RLIMIT_CPU, cpu, cpu + 2)
    if limits.get("max_file_mb"):
        _set(resource.RLIMIT_FSIZE, int(limits["max_file_mb"]) << 20)
    if limits.get("max_open_files"):
        _set(resource.RLIMIT_NOFILE, int(limits["max_open_files"]))
    if limits.get("max_processes"):
        allowed = int(limits["max_processes"])
        if not dedicated_uid and os.getuid() != 0:
            # Shared uid: the limit counts the user's other processes too.
            allowed += _own_process_count()
        _set(resource.RLIMIT_NPROC, allowed)


def drop_privileges(uid: int) -> None:
    """Become `uid` (group `uid`, no supplementary groups) for good."""
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)

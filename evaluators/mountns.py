"""The `unshare` level's file-system view, applied by the harness inside its own mount namespace.

`unshare --mount` gives the harness a private copy of the host's mounts (as root, or as root of
its own user namespace); it then mounts a fresh, size-capped /tmp and /dev/shm (the host's are
not shared with the candidate: binding back only its own work dir and what the evaluation reads
from there), covers every top-level folder that is not part of the base system (/root, /home,
/srv, /opt, /work, ...) with an empty read-only tmpfs, binds back read-only exactly what the
evaluation needs (the interpreter, the `evaluators` package, the problem), and covers the
problem's hidden files with /dev/null. The plan comes from the executor in EVOLVE_MOUNT_PLAN (JSON); this runs before
the worker is forked, so the candidate only ever sees the result. Plain libc calls, no helper
processes: this is on every evaluation's critical path.
"""

from __future__ import annotations

import ctypes
import json
import os
from pathlib import Path

PLAN_VAR = "EVOLVE_MOUNT_PLAN"
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_REMOUNT, MS_BIND, MS_MOVE = 1, 2, 4, 32, 4096, 8192
MS_REC, MS_PRIVATE = 16384, 1 << 18


def _mount(libc: ctypes.CDLL, source: str | None, target: str, fstype: str | None, flags: int,
           data: str | None = None) -> None:
    def encode(text: str | None) -> bytes | None:
        return text.encode() if text is not None else None

    if libc.mount(encode(source), encode(target), encode(fstype), flags, encode(data)) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"mount {source} on {target}: {os.strerror(errno)}")


def _make_target(path: Path, like: Path) -> None:
    """Create the mount point for a bind of `like` (a folder or an empty file), parents 0755."""
    for parent in reversed(path.parents):
        if not parent.exists():
            parent.mkdir(mode=0o755)
    if like.is_dir():
        path.mkdir(mode=0o755, exist_ok=True)
    elif not path.exists():
        path.touch(mode=0o644)


def _fresh(libc: ctypes.CDLL, folder: str, size_mb: int, keep_rw: list[str],
           keep_ro: list[str]) -> None:
    """A fresh tmpfs on `folder`, with the paths under it that must stay bound back from the
    host's (the work dir writable, the rest read-only). They are held open first: the new
    tmpfs hides them, and a bind from the held descriptor reaches them still."""
    held = []
    for path, writable in [*((p, True) for p in keep_rw), *((p, False) for p in keep_ro)]:
        if Path(folder) in Path(path).parents:
            try:
                held.append((path, writable, os.open(path, os.O_PATH | os.O_CLOEXEC)))
            except OSError:
                continue  # not there: nothing to bind back
    _mount(libc, "tmpfs", folder, "tmpfs", MS_NOSUID | MS_NODEV, f"size={size_mb}m,mode=1777")
    for path, writable, fd in held:
        target = Path(path)
        _make_target(target, Path(f"/proc/self/fd/{fd}"))
        _mount(libc, f"/proc/self/fd/{fd}", path, None, MS_BIND | MS_REC)
        if not writable:
            _mount(libc, None, path, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID)
        os.close(fd)


def fresh_mqueue(libc: ctypes.CDLL | None = None) -> None:
    """Where the host mounts the POSIX message queue file system (/dev/mqueue), mount it again:
    a mount shows the queues of the IPC namespace it was made in, so the host's would stay
    reachable (as files) from our own IPC namespace."""
    if os.path.isdir("/dev/mqueue") and not os.path.islink("/dev/mqueue"):
        _mount(libc or ctypes.CDLL(None, use_errno=True), "mqueue", "/dev/mqueue", "mqueue",
               MS_NOSUID | MS_NODEV | 8)  # 8: MS_NOEXEC


def apply(plan: dict) -> None:
    """Fresh `plan['fresh']` folders, cover `plan['cover']`, bind back `plan['binds']`
    read-only, null out `plan['hidden']`."""
    libc = ctypes.CDLL(None, use_errno=True)
    _mount(libc, None, "/", None, MS_REC | MS_PRIVATE)
    for folder, size_mb in plan.get("fresh", {}).items():
        if os.path.isdir(folder):
            _fresh(libc, folder, int(size_mb), plan.get("keep_rw", []), plan.get("keep_ro", []))
    fresh_mqueue(libc)
    stage = Path(plan["stage"])
    staged = []
    # First pin what must come back (the covers would hide it), then cover, then move back.
    for i, path in enumerate(plan["binds"]):
        source, holder = Path(path), stage / str(i)
        _make_target(holder, source)
        _mount(libc, str(source), str(holder), None, MS_BIND | MS_REC)
        staged.append((holder, source))
    for folder in plan["cover"]:
        _mount(libc, "tmpfs", folder, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,nr_inodes=4096,mode=755")
    for holder, target in staged:
        _make_target(target, holder)
        _mount(libc, str(holder), str(target), None, MS_MOVE)
        _mount(libc, None, str(target), None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID)
        if holder.is_dir():
            holder.rmdir()
        else:
            holder.unlink()
    for folder in plan["cover"]:
        _mount(libc, None, folder, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
    for path in plan["hidden"]:
        if os.path.isdir(path):
            _mount(libc, "tmpfs", path, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV, "size=4k")
        elif os.path.exists(path):
            _mount(libc, "/dev/null", path, None, MS_BIND)
    stage.rmdir()


def apply_from_environment() -> None:
    """Apply the executor's plan, if it sent one (only the `unshare` level as root does)."""
    raw = os.environ.pop(PLAN_VAR, None)
    if raw:
        apply(json.loads(raw))

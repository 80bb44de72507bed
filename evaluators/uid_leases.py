"""Throw-away uids for evaluations, reserved machine-wide.

As root, each evaluation runs under a uid of its own from a fixed range, and its clean-up kills
every process of that uid (`kill -1` as it), so two evaluations must never hold the same uid at
once, whichever run, user or $TMPDIR they come from. A uid is held by an exclusive `flock` on a
file named after it in one folder that does not depend on the environment: /run (a tmpfs that
empties at boot), else /var/lock or /var/tmp. A lock ends with its holder, even one killed with
SIGKILL, so a crashed run frees its uids. When every uid is held, a lease waits for one.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import stat
import time
from pathlib import Path

# Versions before these machine-wide leases reserved 1,800,000-1,800,511 per $TMPDIR: a range of
# its own keeps a run of such a version on the same machine from taking (and killing) ours.
UID_BASE, UID_COUNT = 1_810_000, 512
_CANDIDATE_DIRS = (Path("/run"), Path("/var/lock"), Path("/var/tmp"))
_NAME = "evolve-sandbox-uids"


class NoFreeUid(RuntimeError):
    """Every throw-away uid stayed held for as long as a lease waits."""


def lock_dir() -> Path:
    """The machine's folder of uid locks: root's, private, never a link."""
    for base in _CANDIDATE_DIRS:
        if not base.is_dir() or not os.access(base, os.W_OK):
            continue
        path = base / _NAME
        try:
            path.mkdir(mode=0o700)
        except FileExistsError:
            pass
        except OSError:
            continue
        info = os.lstat(path)
        if stat.S_ISDIR(info.st_mode) and info.st_uid == os.geteuid() \
                and not info.st_mode & 0o077:
            return path
    raise RuntimeError("no private folder for the sandbox's uid locks under /run, /var/lock "
                       "or /var/tmp; check that root can write /run")


_LOCK_FLAGS = os.O_CREAT | os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW
_lock_dir: str | None = None


def _known_lock_dir(again: bool = False) -> str:
    """`lock_dir()`, checked once per process (a lease is taken for every evaluation)."""
    global _lock_dir
    if _lock_dir is None or again:
        _lock_dir = str(lock_dir())
    return _lock_dir


class UidLease:
    """A uid no other evaluation on this machine is using now; `release()` when done."""

    def __init__(self, wait_s: float = 120.0) -> None:
        folder = _known_lock_dir()
        deadline = time.monotonic() + wait_s
        while True:
            start = secrets.randbelow(UID_COUNT)
            for i in range(UID_COUNT):
                uid = UID_BASE + (start + i) % UID_COUNT
                try:
                    fd = os.open(os.path.join(folder, str(uid)), _LOCK_FLAGS, 0o600)
                except FileNotFoundError:  # the folder was removed meanwhile: checked anew
                    folder = _known_lock_dir(again=True)
                    fd = os.open(os.path.join(folder, str(uid)), _LOCK_FLAGS, 0o600)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    os.close(fd)
                    continue
                self.uid, self._fd = uid, fd
                return
            if time.monotonic() >= deadline:
                raise NoFreeUid(f"all {UID_COUNT} sandbox uids stayed in use for {wait_s:g} s; "
                                f"too many evaluations at once on this machine")
            time.sleep(0.05)

    def release(self) -> None:
        os.close(self._fd)

"""Which sandbox isolation this machine offers, and the command prefix that applies it.

Levels, best first:
- ``bwrap``: bubblewrap with a read-only root, only the work dir writable (a size-capped tmpfs),
  home and temp folders hidden, new network, PID and IPC namespaces, dies with its parent.
- ``unshare``: ``unshare`` with new network and PID namespaces, plus rlimits.
- ``rlimits``: resource limits only; the candidate can reach the network and the user's files.

The level is probed once per process (a tiny real run of each tool) and cached.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger(__name__)

LEVELS = ("bwrap", "unshare", "rlimits")

# Folders that may hold secrets or other users' work; bubblewrap hides them behind an empty
# tmpfs, then binds back (read-only) exactly what an evaluation needs.
_HIDDEN_DIRS = ("/tmp", "/var/tmp", "/root", "/home", "/run/user")

DESCRIPTIONS = {
    "bwrap": "bubblewrap: read-only root, private work dir, no network, own PID/IPC namespaces",
    "unshare": "unshare: no network, own PID namespace, rlimits (files outside the work dir are "
               "visible)",
    "rlimits": "WARNING rlimits only: candidates can use the network and read or write your files; "
               "install bubblewrap (apt-get install bubblewrap)",
}


class IsolationUnavailable(RuntimeError):
    """The requested isolation level cannot be used on this machine."""


def is_root() -> bool:
    return os.geteuid() == 0


def _probe(cmd: list[str]) -> bool:
    try:
        proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0


def _user_ns_flags() -> list[str]:
    # Without root, namespaces need a user namespace of our own.
    return [] if is_root() else ["--unshare-user"]


@functools.cache
def level_works(level: str) -> bool:
    """Whether `level` works here, probed once with a real, tiny sandboxed run."""
    if level == "bwrap":
        bwrap = shutil.which("bwrap")
        return bool(bwrap) and _probe([
            bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", *_user_ns_flags(),
            "--unshare-net", "--unshare-pid", "--unshare-ipc", "--die-with-parent",
            "--new-session", sys.executable, "-c", "pass"])
    if level == "unshare":
        unshare = shutil.which("unshare")
        return bool(unshare) and _probe([unshare, *unshare_flags(), sys.executable, "-c", "pass"])
    return level == "rlimits"


def available_levels() -> tuple[str, ...]:
    """Levels that work here, best first."""
    return tuple(level for level in LEVELS if level_works(level))


def unshare_flags() -> list[str]:
    flags = [] if is_root() else ["--user", "--map-root-user"]
    return [*flags, "--net", "--pid", "--fork", "--kill-child", "--mount-proc"]


def resolve_level(requested: str = "auto") -> str:
    """The level to use for `requested` ('auto' = best available); raises if unavailable."""
    if requested == "auto":
        level = next(lv for lv in LEVELS if level_works(lv))
        if level == "rlimits":
            log.warning("sandbox: %s", DESCRIPTIONS["rlimits"])
        return level
    if requested not in LEVELS:
        raise IsolationUnavailable(f"unknown isolation level '{requested}'; use one of "
                                   f"auto, {', '.join(LEVELS)}")
    if not level_works(requested):
        levels = available_levels()
        hint = ("install bubblewrap (apt-get install bubblewrap)" if requested == "bwrap"
                else "check that `unshare --net true` works for this user")
        raise IsolationUnavailable(f"isolation '{requested}' is not available here ({hint}); "
                                   f"available: {', '.join(levels)}; set sandbox.isolation=auto")
    return requested


def detect_isolation(requested: str = "auto") -> tuple[str, str]:
    """(level, one-line description) of the isolation evaluations get; recorded with each run."""
    level = resolve_level(requested)
    description = DESCRIPTIONS[level]
    if level != "bwrap" and is_root() and not uid_drop_possible(level):
        description += "; process-count limit not enforced (running as root)"
    return level, description


def world_accessible(path: Path) -> bool:
    """Whether an unprivileged user could reach `path` (every ancestor traversable)."""
    path = path.resolve()
    for part in [path, *path.parents]:
        try:
            mode = part.stat().st_mode
        except OSError:
            return False
        if not mode & 0o001:
            return False
    return True


def runtime_paths() -> list[Path]:
    """Paths the harness needs to read: the interpreter, its prefixes and our own package."""
    import evaluators

    paths = {Path(sys.prefix), Path(sys.base_prefix), Path(sys.exec_prefix),
             Path(os.path.realpath(sys.executable)).parent,
             Path(evaluators.__file__).resolve().parent.parent}
    return sorted(p.resolve() for p in paths)


def uid_drop_possible(level: str) -> bool:
    """As root, evaluations run under a throw-away uid so process limits apply. That needs the
    interpreter to be readable by that uid: bubblewrap arranges it; otherwise check the paths."""
    if not is_root():
        return False
    if level == "bwrap":
        return True
    return all(world_accessible(p) for p in runtime_paths())


def _outermost(paths: Iterable[Path]) -> list[Path]:
    """Drop paths nested in another path of the list (binding the parent covers them)."""
    result: list[Path] = []
    for p in sorted(set(paths), key=lambda q: len(q.parts)):
        if not any(p == q or q in p.parents for q in result):
            result.append(p)
    return result


def bwrap_prefix(*, work_dir: Path, program: Path, read_paths: Iterable[Path],
                 work_dir_mb: int, devices: Iterable[str] = ()) -> list[str]:
    """bubblewrap arguments: read-only root, hidden home/temp dirs with the needed paths bound
    back read-only, the work dir a size-capped tmpfs holding the (read-only) program."""
    bwrap = shutil.which("bwrap") or "bwrap"
    # Every writable tmpfs gets a size cap, or it could fill the machine's memory.
    args = [bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
            "--perms", "1777", "--size", str(work_dir_mb << 20), "--tmpfs", "/dev/shm"]
    for hidden in _HIDDEN_DIRS:
        if Path(hidden).is_dir():
            args += ["--size", str(1 << 20), "--tmpfs", hidden]
    hidden_roots = [Path(h) for h in _HIDDEN_DIRS]
    binds = [p for p in _outermost(Path(p).resolve() for p in read_paths)
             if p.exists() and any(h == p or h in p.parents for h in hidden_roots)]
    # bubblewrap would create the folders leading to a bind as 0700 (unreadable for the
    # sandbox uid); create them traversable first, parents before children.
    leading = {a for p in binds for a in p.parents
               if any(h in a.parents for h in hidden_roots)}
    for folder in sorted(leading, key=lambda q: len(q.parts)):
        args += ["--perms", "0755", "--dir", str(folder)]
    for path in binds:
        args += ["--ro-bind", str(path), str(path)]
    for dev in devices:
        args += ["--dev-bind", dev, dev]
    args += ["--perms", "1777", "--size", str(work_dir_mb << 20), "--tmpfs", str(work_dir),
             "--ro-bind", str(program), str(program),
             *_user_ns_flags(), "--unshare-net", "--unshare-pid", "--unshare-ipc",
             "--die-with-parent", "--new-session", "--chdir", str(work_dir)]
    return args


def command_prefix(level: str, **bwrap_kwargs: object) -> list[str]:
    if level == "bwrap":
        return bwrap_prefix(**bwrap_kwargs)  # type: ignore[arg-type]
    if level == "unshare":
        return [shutil.which("unshare") or "unshare", *unshare_flags()]
    return []

"""Which sandbox isolation this machine offers, what each level exposes, and the command prefix
that applies it.

Levels, best first:
- ``bwrap``: bubblewrap building the candidate's file system from an allow-list
  (`evaluators.view`): the interpreter, the harness package and the problem folder read-only
  (hidden files left out), a fresh size-capped work dir and /tmp, a minimal /dev, its own /proc;
  nothing else of the host. New network, PID, IPC and UTS namespaces; dies with its parent.
- ``unshare``: new network, PID and mount namespaces. The harness covers every non-system
  top-level folder and binds back only what is needed (`evaluators.mountns`). As root the
  candidate runs under a throw-away uid and cannot undo that; without root it is root of its
  own user namespace and could unmount the covers (`exposure` says so).
- ``rlimits``: resource limits only.

`exposure(level)` says exactly what a candidate can still reach at a level on this machine;
`evolve doctor` and the first lines of a run print it. The level is probed once per process (a
tiny real run of each tool) and cached.
"""

from __future__ import annotations

import ctypes
import functools
import json
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

from evaluators import mountns
from evaluators.view import View, outermost, split_around

log = logging.getLogger(__name__)

LEVELS = ("bwrap", "unshare", "rlimits")

# Top-level folders of the base system that the `unshare` level leaves visible (read-only by
# their permissions, /tmp excepted); every other top-level folder is covered.
_SYSTEM_TOP = {"usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "etc", "var", "tmp",
               "run", "proc", "sys", "dev"}
_TMP_MB = 16  # /tmp inside bubblewrap (candidates get TMPDIR = their work dir)

DESCRIPTIONS = {
    "bwrap": "bubblewrap: allow-listed read-only view (interpreter, harness, problem without its "
             "hidden files), private work dir and /tmp, no network, own PID/IPC namespaces",
    "unshare": "unshare: no network, own PID, IPC and mount namespaces, private /tmp and "
               "/dev/shm, rlimits",
    "rlimits": "WARNING rlimits only: candidates can use the network and read or write your files; "
               "install bubblewrap (apt-get install bubblewrap)",
}


class IsolationUnavailable(RuntimeError):
    """The requested isolation level cannot be used on this machine."""


def is_root() -> bool:
    return os.geteuid() == 0


def protect_this_process() -> bool:
    """Mark this process non-dumpable: a process of the same uid (a candidate at a weak level)
    can then not read its environment (API keys) or memory through /proc/<pid>/. Children get
    their own flag back at exec. Returns whether it worked."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(4, 0, 0, 0, 0) == 0  # PR_SET_DUMPABLE = 4
    except (OSError, AttributeError):
        return False


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
    # Its own IPC namespace: no SysV object or POSIX message queue of the host (or of another
    # evaluation) is reachable, and none it makes outlives it.
    return [*flags, "--mount", "--net", "--ipc", "--pid", "--fork", "--kill-child",
            "--mount-proc"]


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
    """Paths the harness needs to read: the interpreter's prefixes and the harness package."""
    from evaluators.view import harness_paths
    from evaluators.view import runtime_paths as interpreter

    return [*interpreter(), *harness_paths()]


def uid_drop_possible(level: str) -> bool:
    """As root, evaluations run under a throw-away uid (process limits apply, the candidate
    cannot signal the harness or read root's files). That needs the interpreter to be
    readable by that uid: bubblewrap and the unshare level's mount namespace arrange it; at the
    rlimits level every path must be reachable already."""
    if not is_root():
        return False
    if level in ("bwrap", "unshare"):
        return True
    return all(world_accessible(p) for p in runtime_paths())


def kernel_exposure() -> list[str]:
    """What the kernel-level defences (the seccomp filter, the evaluation's cgroup) leave open
    on this machine, at every level: nothing when both are in place."""
    from evaluators import syscall_filter, tree_limits

    lines = []
    spec, why = syscall_filter.compiled()
    if spec is None:
        lines.append(f"{why}: the kernel keyring (a channel to later candidates and runs), "
                     f"ptrace, bpf and perf events are reachable")
    if not tree_limits.support().version:
        lines.append(f"memory and process limits hold per process only "
                     f"({tree_limits.support().why}): several processes together can use "
                     f"more than memory_mb")
    if not is_root():
        lines.append("runs a judge keeps apart (`Candidate.isolated`, e.g. serving's load "
                     "levels) are processes of their own but share the candidate's work dir, "
                     "/tmp, /dev/shm, IPC and abstract sockets (their own namespaces need root)")
    return lines


def exposure(level: str) -> list[str]:
    """What a candidate can still reach at `level` on this machine, one fact a line."""
    return [*_exposure(level), *kernel_exposure()]


def _exposure(level: str) -> list[str]:
    root, drop = is_root(), uid_drop_possible(level)
    lines = []
    if level == "bwrap":
        lines.append("nothing of the host outside the interpreter, the harness package and the "
                     "problem folder (read-only, hidden files left out)")
        if not root:
            lines.append("the candidate runs as your uid inside a user namespace; files it can "
                         "see are only the allow-listed read-only ones")
        return lines
    if level == "unshare":
        if root:
            lines.append("/etc, /var and /run of the host are visible (readable where their "
                         "permissions allow; /tmp, /dev/shm and every other folder anyone may "
                         "write there are the evaluation's own, its IPC too); other top-level "
                         "folders show only the interpreter, the harness and the problem "
                         "(hidden files covered)")
            lines.append("the candidate runs as an unprivileged throw-away uid")
        else:
            lines.append("other top-level folders than /etc, /var and /run are covered "
                         "and hidden files too, but the candidate is root in its own user "
                         "namespace and can unmount the covers: count the whole host file "
                         "system as readable and writable with your permissions (your home, "
                         "other repositories, copies of hidden evaluation data, the checkout)")
            lines.append("the candidate runs as your uid (mapped to root in a user namespace); "
                         "this process is non-dumpable, and its PID namespace hides it anyway")
        return lines
    lines.append("the network is reachable")
    lines.append("the host's /tmp, /dev/shm, SysV and POSIX IPC objects and abstract unix "
                 "sockets are shared: a channel between candidates, stages and runs")
    if drop:
        lines.append("the whole host file system is visible to an unprivileged throw-away uid: "
                     "world-readable files (including copies of hidden evaluation data) can be "
                     "read, /tmp can be written")
    elif root:
        blocked = [str(p) for p in runtime_paths() if not world_accessible(p)]
        lines.append("the candidate runs as ROOT (the interpreter under "
                     f"{', '.join(blocked) or '?'} is not reachable for another uid): it can "
                     "read and write every file and read the environment of every process; "
                     "install bubblewrap or make the interpreter world-readable")
    else:
        lines.append("the candidate runs as your uid: it can read and write all your files; "
                     "this process is non-dumpable, so its environment (API keys) is not "
                     "readable through /proc")
    lines.append("the hidden evaluation data files stay readable at their paths")
    return lines


def detect_isolation(requested: str = "auto") -> tuple[str, str]:
    """(level, one-line description) of the isolation evaluations get; recorded with each run."""
    level = resolve_level(requested)
    description = f"{DESCRIPTIONS[level]}; exposed: {'; '.join(exposure(level))}"
    return level, description


def _system_args(paths: Iterable[Path]) -> list[str]:
    args: list[str] = []
    for path in paths:
        if path.is_symlink() and path.parent == Path("/"):
            args += ["--symlink", os.readlink(path), str(path)]  # /bin -> usr/bin
        else:
            args += ["--ro-bind", str(path), str(path)]
    return args


def bwrap_prefix(*, view: View, work_dir: Path, program: Path, work_dir_mb: int,
                 devices: Iterable[str] = ()) -> list[str]:
    """bubblewrap arguments: an empty root with only `view` bound in read-only, a size-capped
    /tmp and work dir (holding the read-only program), a minimal /dev and a fresh /proc."""
    bwrap = shutil.which("bwrap") or "bwrap"
    # Every writable tmpfs gets a size cap, or it could fill the machine's memory.
    args = [bwrap, "--perms", "1777", "--size", str(_TMP_MB << 20), "--tmpfs", "/tmp",
            "--dev", "/dev", "--proc", "/proc",
            "--perms", "1777", "--size", str(work_dir_mb << 20), "--tmpfs", "/dev/shm"]
    folders: list[Path] = []
    binds: list[Path] = []
    for path in outermost(view.read_paths):
        if path.exists():
            sub_folders, sub_binds = split_around(path, view.hidden)
            folders += sub_folders
            binds += sub_binds
    # Folders leading to a bind are created traversable (bubblewrap would make them 0700,
    # unreadable for the sandbox uid), parents before children.
    made = {Path("/"), Path("/tmp")}
    system = [p for p in view.system if not p.is_symlink()]
    leading = {a for p in [*binds, *folders, *system] for a in p.parents} | set(folders)
    for folder in sorted(leading - made, key=lambda q: len(q.parts)):
        if not any(b == folder or b in folder.parents for b in [*binds, *system]):
            args += ["--perms", "0755", "--dir", str(folder)]
    args += _system_args(view.system)
    for path in binds:
        args += ["--ro-bind", str(path), str(path)]
    for dev in devices:
        args += ["--dev-bind", dev, dev]
    args += ["--perms", "1777", "--size", str(work_dir_mb << 20), "--tmpfs", str(work_dir),
             "--ro-bind", str(program), str(program),
             "--remount-ro", "/",  # the root tmpfs: not a place to write (only /tmp, work dir)
             *_user_ns_flags(), "--unshare-net", "--unshare-pid", "--unshare-ipc",
             "--unshare-uts", "--hostname", "sandbox",
             "--die-with-parent", "--new-session", "--chdir", str(work_dir)]
    return args


@functools.cache
def shared_writable() -> tuple[str, ...]:
    """Folders of the base system that anyone may write (/tmp, /dev/shm, /var/tmp, /run/lock,
    ...): shared with the host, each would be a channel between candidates, so the unshare
    level mounts a fresh one of each per evaluation."""
    found = {"/tmp", "/dev/shm"}
    for top in ("/var", "/run", "/etc"):
        for folder, subfolders, _ in os.walk(top):
            depth = folder.count("/")
            subfolders[:] = [] if depth >= 3 else [
                d for d in subfolders if not os.path.islink(os.path.join(folder, d))]
            try:
                if os.stat(folder).st_mode & 0o002:
                    found.add(folder)
            except OSError:
                continue
    return tuple(sorted(found))


def mount_plan(view: View, work_dir: Path, work_dir_mb: int = 64) -> dict:
    """The unshare level's view: a fresh /tmp and /dev/shm (the work dir and what the view
    holds there bound back), which top-level folders to cover, what to bind back read-only,
    which hidden files to cover; applied by the harness (`evaluators.mountns`)."""
    work_dir = work_dir.resolve()
    keep = {work_dir.parts[1]} | _SYSTEM_TOP
    cover = sorted(str(p) for p in Path("/").iterdir()
                   if p.is_dir() and not p.is_symlink() and p.name not in keep)
    covered = [Path(c) for c in cover]
    binds = [str(p) for p in outermost(view.read_paths)
             if p.exists() and any(c in p.parents for c in covered)]
    fresh = {folder: _TMP_MB for folder in shared_writable()} | {"/dev/shm": work_dir_mb}
    keep_ro = [str(p) for p in outermost(view.read_paths)
               if p.exists() and any(Path(f) in p.parents for f in fresh)]
    return {"stage": str(work_dir / ".mounts"), "cover": cover, "binds": binds,
            "hidden": [str(h) for h in view.hidden], "fresh": fresh,
            "keep_rw": [str(work_dir)], "keep_ro": keep_ro}


def unshare_prefix(*, view: View, work_dir: Path,
                   work_dir_mb: int = 64) -> tuple[list[str], dict[str, str]]:
    """unshare arguments and the environment the harness needs to build its view."""
    args = [shutil.which("unshare") or "unshare", *unshare_flags()]
    return args, {mountns.PLAN_VAR: json.dumps(mount_plan(view, work_dir, work_dir_mb))}


def command_prefix(level: str, *, view: View, work_dir: Path, program: Path, work_dir_mb: int,
                   devices: Iterable[str] = ()) -> tuple[list[str], dict[str, str]]:
    """(arguments before the harness command, extra environment) for `level`."""
    if level == "bwrap":
        return bwrap_prefix(view=view, work_dir=work_dir, program=program,
                            work_dir_mb=work_dir_mb, devices=devices), {}
    if level == "unshare":
        return unshare_prefix(view=view, work_dir=work_dir, work_dir_mb=work_dir_mb)
    return [], {}

"""Memory and process limits over the candidate's whole process tree: a cgroup per evaluation.

Resource limits (`evaluators.limits`) are per process: four children of 1 GB each fit under a
1 GB address-space limit. Where the machine offers a cgroup we may manage (v2 with the memory
and pids controllers delegated to us, or v1's memory and pids hierarchies, as root), each
evaluation gets one: `memory_mb` for all its processes together (swap included where the kernel
accounts it), `max_processes` tasks at most, and everything in it is killed at the end. The
run process makes it (outside the sandbox, where /sys/fs/cgroup is not visible) and hands its
`cgroup.procs` files in as open descriptors (EVOLVE_CGROUP_FDS); the candidate's process is
moved in through them before any candidate code runs, so all it starts is inside. The
candidate then holds no descriptor and sees no cgroup file it could write, so it cannot
leave. Elsewhere the limits stay per process, and `status()` (shown by `evolve doctor`)
says so.

The sandbox's side (moving the process in, off the critical path where it can) is
`evaluators.cgroup_join`; a warm interpreter's evaluations are born in theirs
(`evaluators.warm_cgroups`).
"""

from __future__ import annotations

import atexit
import functools
import json
import logging
import os
import re
import secrets
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from evaluators.cgroup_join import FDS_VAR

log = logging.getLogger(__name__)

_PREFIX = "evolve-"
# An evaluation's cgroup (evolve-PID-HEX), or the leaf a v2 run moved itself into (evolve-run-PID).
_OWNED = re.compile(rf"^{_PREFIX}(?:(\d+)-[0-9a-f]+|run-(\d+))$")


@dataclass(frozen=True)
class Support:
    version: str                   # "v2", "v1" or "" (none usable)
    parents: tuple[Path, ...]      # where evaluation cgroups are made: v2 one, v1 memory + pids
    why: str = ""                  # when version is ""


def _mounts() -> list[tuple[str, str, str, str]]:
    """(mount root, mount point, fs type, super options) of every cgroup mount."""
    found = []
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                left, _, right = line.partition(" - ")
                fields, tail = left.split(), right.split()
                if tail and tail[0] in ("cgroup", "cgroup2"):
                    found.append((fields[3], fields[4], tail[0], tail[2] if len(tail) > 2 else ""))
    except OSError:
        pass
    return found


def _own_cgroups() -> dict[str, str]:
    """controller (or '' for v2) -> this process's cgroup path."""
    own = {}
    try:
        with open("/proc/self/cgroup") as f:
            for line in f:
                _, controllers, path = line.rstrip("\n").split(":", 2)
                for controller in controllers.split(",") if controllers else [""]:
                    own[controller] = path
    except OSError:
        pass
    return own


def _folder(mount_root: str, mount_point: str, path: str) -> Path | None:
    relative = os.path.relpath(path, mount_root) if path.startswith(mount_root) else None
    if relative is None:
        return None
    folder = Path(mount_point) / relative
    return folder if folder.is_dir() else None


def _writable_here(parent: Path) -> bool:
    """Whether we can make (and remove) a cgroup under `parent`: tried for real."""
    probe = parent / f"{_PREFIX}{os.getpid()}-{secrets.token_hex(4)}"
    try:
        probe.mkdir()
    except OSError:
        return False
    try:
        probe.rmdir()
    except OSError:
        pass
    return True


def _v2(mount_root: str, mount_point: str, own: dict[str, str]) -> Support | None:
    folder = _folder(mount_root, mount_point, own.get("", "/"))
    if folder is None:
        return None
    try:
        available = set((folder / "cgroup.controllers").read_text().split())
        enabled = set((folder / "cgroup.subtree_control").read_text().split())
    except OSError:
        return None
    if not {"memory", "pids"} <= available:
        return None
    if not {"memory", "pids"} <= enabled and not _enable_v2_controllers(folder):
        return None
    return Support("v2", (folder,)) if _writable_here(folder) else None


def _enable_v2_controllers(folder: Path) -> bool:
    """Let our own cgroup's children have memory and pids limits. cgroup v2 allows that only
    for a cgroup without processes of its own, so when this process is the only one in it
    (a run started in a delegated scope: systemd-run --scope -p Delegate=yes), it first moves
    itself into a leaf child. Never moves anything when other processes share the cgroup."""
    try:
        (folder / "cgroup.subtree_control").write_text("+memory +pids")
        return True
    except OSError:
        pass
    if _members(folder) != [os.getpid()]:
        return False
    leaf = folder / f"{_PREFIX}run-{os.getpid()}"
    try:
        leaf.mkdir(exist_ok=True)
        (leaf / "cgroup.procs").write_text(str(os.getpid()))
        (folder / "cgroup.subtree_control").write_text("+memory +pids")
        return True
    except OSError:
        return False


@functools.cache
def support() -> Support:
    """Which cgroup evaluations get here, probed once per process."""
    own = _own_cgroups()
    mounts = _mounts()
    for root, point, fstype, _ in mounts:
        if fstype == "cgroup2":
            found = _v2(root, point, own)
            if found:
                return found
    parents = []
    for controller in ("memory", "pids"):
        mount = next(((root, point) for root, point, fstype, options in mounts
                      if fstype == "cgroup" and controller in options.split(",")), None)
        folder = _folder(*mount, own.get(controller, "/")) if mount else None
        if folder is None or not _writable_here(folder):
            break
        parents.append(folder)
    if len(parents) == 2:
        return Support("v1", tuple(parents))
    if not mounts:
        why = "no cgroup file system is mounted"
    elif os.geteuid() != 0:
        why = "no cgroup is delegated to this user (run as root, or under a systemd scope " \
              "with Delegate=yes)"
    else:
        why = "no cgroup with the memory and pids controllers can be made here"
    return Support("", (), why)


def status() -> str:
    """One line for `evolve doctor`: how far memory and process limits reach."""
    found = support()
    if found.version:
        where = ", ".join(str(p) for p in found.parents)
        return (f"cgroup {found.version}: memory_mb and max_processes hold for the candidate's "
                f"whole process tree (under {where})")
    return (f"per process only: {found.why}; memory_mb holds for each process of a candidate, "
            f"not for all of them together")


@functools.cache
def _sweep(parents: tuple[Path, ...]) -> None:
    """Remove the cgroups of runs that died without removing theirs (once per process)."""
    for parent in parents:
        try:
            entries = list(parent.iterdir())
        except OSError:
            continue
        for path in entries:
            owned = _OWNED.match(path.name)
            if owned and not Path(f"/proc/{owned.group(1) or owned.group(2)}").exists():
                _kill_all(path)
                try:
                    path.rmdir()
                except OSError:
                    pass


def _members(folder: Path) -> list[int]:
    # os-level calls: read after every evaluation (and while a zygote waits to move on), where
    # pathlib's path objects and text decoding cost more than the read itself.
    try:
        fd = os.open(os.path.join(folder, "cgroup.procs"), os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return []
    try:
        chunks = []
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
        return [int(p) for p in b"".join(chunks).split()]
    except (OSError, ValueError):
        return []
    finally:
        os.close(fd)


def _write_value(path: str, value: int | str) -> None:
    """One write of `value` to a control file, with os calls (see `_members`)."""
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, str(value).encode())
    finally:
        os.close(fd)


def _kill_all(folder: Path) -> int:
    kill_file = folder / "cgroup.kill"  # v2 since Linux 5.14: every member at once
    if kill_file.exists():
        try:
            kill_file.write_text("1")
        except OSError:
            pass
    killed: set[int] = set()
    for _ in range(200):
        members = _members(folder)
        if not members:
            break
        for pid in members:
            try:
                os.kill(pid, signal.SIGKILL)
                killed.add(pid)
            except OSError:
                pass
        time.sleep(0.005)
    return len(killed)


# Emptied cgroups of this process, kept for the next evaluation: making and removing one costs
# milliseconds (a memory cgroup's removal above all), more than the warm path's whole budget
# allows. An empty cgroup carries nothing of the evaluation that used it but page-cache charges,
# which the kernel reclaims first.
_KEEP = 8
_free: list[TreeCgroup] = []
_free_lock = threading.Lock()


_retired: list[TreeCgroup] = []


def _remove_free() -> None:
    with _free_lock:
        kept, _free[:] = list(_free), []
        retired, _retired[:] = list(_retired), []
    for cgroup in kept:
        cgroup.remove()
    for cgroup in retired:
        for folder in cgroup.folders:
            for _ in range(100):
                try:
                    folder.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:  # its last process is still exiting
                    time.sleep(0.01)


atexit.register(_remove_free)


class TreeCgroup:
    """One evaluation's cgroup (v1: one in the memory and one in the pids hierarchy)."""

    def __init__(self, folders: list[Path], version: str):
        self.folders = folders
        self.version = version
        self.fds: list[int] = []
        self._oom_before = 0
        self._uses = 0  # evaluations it was set up for
        # The limits last written: a kept cgroup serves evaluation after evaluation with the
        # same ones, and only this process writes its control files (the sandbox holds none).
        self._written: tuple[int | None, int | None] | None = None
        # Which folder holds each control file, found once: a kept cgroup serves evaluation
        # after evaluation, and its files stay where they are while it exists.
        self._files: dict[str, str | None] = {}

    @classmethod
    def create(cls, memory_mb: int | None, max_processes: int | None, *,
               descriptors: bool = True) -> TreeCgroup | None:
        """A cgroup with these limits, or None where the machine offers none (or making one
        failed: the evaluation then runs with per-process limits, as `status()` says), with
        its `cgroup.procs` files open for the sandbox (`fds`) unless `descriptors` is False
        (a zygote's next cgroup: this process moves it in). `release()` it after the
        evaluation."""
        found = support()
        if not found.version:
            return None
        with _free_lock:
            made = _free.pop() if _free else None
        if made is not None:
            try:
                return made._prepare(memory_mb, max_processes, descriptors)
            except OSError:
                made.remove()  # a kept one that cannot take these limits: make a fresh one
        _sweep(found.parents)
        name = f"{_PREFIX}{os.getpid()}-{secrets.token_hex(6)}"
        made = cls([], found.version)
        try:
            for parent in found.parents:
                folder = parent / name
                folder.mkdir()
                made.folders.append(folder)
        except OSError as exc:
            made.remove()
            log.warning("could not make an evaluation cgroup (%s); this evaluation's limits "
                        "hold per process only", exc)
            return None
        try:
            return made._prepare(memory_mb, max_processes, descriptors)
        except OSError as exc:
            made.remove()
            log.warning("could not set up an evaluation cgroup (%s); this evaluation's limits "
                        "hold per process only", exc)
            return None

    def _prepare(self, memory_mb: int | None, max_processes: int | None,
                 descriptors: bool) -> TreeCgroup:
        if descriptors:
            self.set_limits(memory_mb, max_processes)
            self.fds = [os.open(folder / "cgroup.procs", os.O_WRONLY | os.O_CLOEXEC)
                        for folder in self.folders]
        else:  # a zygote's next cgroup: its evaluation's own counts start at `set_limits`
            self._apply(memory_mb, max_processes)
        return self

    def set_limits(self, memory_mb: int | None, max_processes: int | None) -> None:
        """This evaluation's limits (and its own count of kills for memory, its own peak)."""
        self._apply(memory_mb, max_processes)
        if self.version == "v1" and self._uses:
            self._write("memory.max_usage_in_bytes", 0)  # the peak of this evaluation only
        self._oom_before = self._oom_count()
        self._uses += 1

    def adopt(self, pid: int) -> None:
        """Move the process `pid` (all its threads) in: a kernel grace period of waiting."""
        for folder in self.folders:
            _write_value(os.path.join(folder, "cgroup.procs"), pid)

    def members(self) -> list[int]:
        return _members(self.folders[0]) if self.folders else []

    def is_empty(self) -> bool:
        """True only when every folder's `cgroup.procs` could be read and lists no process
        (a file that cannot be read says nothing, so it is not taken for empty)."""
        if not self.folders:
            return False
        for folder in self.folders:
            try:
                fd = os.open(os.path.join(folder, "cgroup.procs"), os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                return False
            try:
                if os.read(fd, 64).strip():
                    return False
            except OSError:
                return False
            finally:
                os.close(fd)
        return True

    def remove_when_empty(self) -> None:
        """Remove it at this process's exit, when whatever is in it now has ended (never
        killed: a warm interpreter closing in its own time)."""
        self.close_fds()
        with _free_lock:
            _retired.append(self)

    def _file(self, name: str) -> str | None:
        """The path of control file `name` in the first of the folders that has it."""
        if name not in self._files:
            self._files[name] = next((str(folder / name) for folder in self.folders
                                      if (folder / name).exists()), None)
        return self._files[name]

    def _apply(self, memory_mb: int | None, max_processes: int | None) -> None:
        if self._written != (memory_mb, max_processes):
            self._written = None  # unknown until every write went through
            self._limit(memory_mb, max_processes)
            self._written = (memory_mb, max_processes)

    def _write(self, name: str, value: int | str) -> bool:
        path = self._file(name)
        if path is None:
            return False
        _write_value(path, value)
        return True

    def _limit(self, memory_mb: int | None, max_processes: int | None) -> None:
        write = self._write
        if self.version == "v2":
            write("memory.max", int(memory_mb) << 20 if memory_mb else "max")
            write("memory.swap.max", 0)
        else:
            limit = int(memory_mb) << 20 if memory_mb else -1
            # memsw (where swap is accounted) may never be below the memory limit: set the
            # one that keeps that true first.
            order = ["memory.limit_in_bytes", "memory.memsw.limit_in_bytes"]
            current = self._read("memory.limit_in_bytes").strip()
            if limit == -1 or (current.isdigit() and limit > int(current)):
                order.reverse()
            for name in order:
                write(name, limit)
        write("pids.max", int(max_processes) if max_processes else "max")

    def environment(self) -> dict[str, str]:
        return {FDS_VAR: json.dumps(self.fds)} if self.fds else {}

    def close_fds(self) -> None:
        """Once the sandbox holds its copies."""
        for fd in self.fds:
            os.close(fd)
        self.fds = []

    def _read(self, name: str) -> str:
        path = self._file(name)
        if path is None:
            return ""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return ""
        try:
            return os.read(fd, 1 << 16).decode()  # a few short lines
        except OSError:
            return ""
        finally:
            os.close(fd)

    def _oom_count(self) -> int:
        text = self._read("memory.events" if self.version == "v2" else "memory.oom_control")
        match = re.search(r"^oom_kill (\d+)$", text, re.M)
        return int(match.group(1)) if match else 0

    def oom_kills(self) -> int:
        """How many of this evaluation's processes the kernel killed for memory."""
        return self._oom_count() - self._oom_before

    def peak_mb(self) -> float | None:
        if self.version == "v2" and self._uses > 1:
            return None  # memory.peak spans every evaluation the cgroup served
        text = self._read("memory.peak" if self.version == "v2" else "memory.max_usage_in_bytes")
        return int(text) / (1 << 20) if text.strip().isdigit() else None

    def release(self) -> int:
        """After the evaluation: kill what is left in it, then keep it for the next one (or
        remove it); returns how many processes were killed."""
        self.close_fds()
        # Empty (the usual end: the evaluation's PID namespace died with its first process),
        # it stays empty: nothing outside joins it but by this process's hand.
        if self.is_empty():
            killed, empty = 0, True
        else:
            killed = sum(_kill_all(folder) for folder in self.folders)
            empty = all(not _members(folder) for folder in self.folders)
        if empty:
            with _free_lock:
                if len(_free) < _KEEP:
                    _free.append(self)
                    return killed
        return killed + self.remove()

    def remove(self) -> int:
        """Kill what is left in it and remove it; returns how many processes were killed."""
        self.close_fds()
        killed = 0
        for folder in self.folders:
            killed += _kill_all(folder)
            for _ in range(50):
                try:
                    folder.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:  # members still exiting
                    time.sleep(0.01)
        return killed


def explain(result: dict | None, cgroup: TreeCgroup | None, memory_mb: int | None) -> None:
    """A tree the kernel killed for memory failed of memory, not of a crash: relabel it."""
    if cgroup is None or not result or result.get("failure") != "crash":
        return
    kills = cgroup.oom_kills()
    if kills:
        peak = cgroup.peak_mb()
        result["failure"] = "memory"
        result["reason"] = (f"the program's processes together reached the memory limit of "
                            f"{memory_mb} MB{f' (peak {peak:.0f} MB)' if peak else ''}; the "
                            f"kernel killed {kills} of them; use less memory")

"""A warm interpreter's forks (`evaluators.warm`): one evaluation's own namespaces, mounts and
PID 1, set up *before* its request arrives.

Everything an evaluation gets afresh that does not depend on its request (a fork of the zygote
born as PID 1 of a new PID namespace, in a session of its own; new mount, network and IPC
namespaces; a fresh /tmp, /dev/shm, POSIX queue mount and work-dir tmpfs; its own /proc and
fresh random state) is done ahead, while the machine waits for the next evaluation: the
zygote keeps one such *prepared* evaluation ready (`prepare`), and a request only hands it the
request and its descriptors (`dispatch`) over a socket of its own. PID 1 then writes the
program into its work dir and runs the harness (or the candidate's host) exactly as before.
Each prepared evaluation serves one request, so nothing is shared between evaluations: it is
the same fork, only earlier.

The process tree of one evaluation: PID 1 (the harness supervisor or the candidate's host,
the zygote's child) -> the worker. The zygote enters a new PID namespace for its next child
only (unshare), and returns to its own right after the fork (setns): no process in between,
so an evaluation's end reaches the zygote (and the run) one exit sooner.
"""

from __future__ import annotations

import ctypes
import fcntl
import json
import os
import signal
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evaluators import cgroup_join, mountns

_CLONE_NEWNS, _CLONE_NEWIPC = 0x00020000, 0x08000000
_CLONE_NEWPID, _CLONE_NEWNET = 0x20000000, 0x40000000
_MS_NOSUID, _MS_NODEV, _MS_NOEXEC = 2, 4, 8
_MS_REC, _MS_PRIVATE = 1 << 14, 1 << 18
_MS_RDONLY, _MS_REMOUNT, _MS_BIND = 1, 32, 4096
_PR_SET_PDEATHSIG = 1
# Exit code of an evaluation whose set-up (namespaces, mounts) failed in the zygote's fork.
SETUP_FAILED = 70 + 1
_MAX_REQUEST = 1 << 22
_READY = b"ready"
_HELD = ("mnt", "net", "ipc")

_libc = ctypes.CDLL(None, use_errno=True)
_own_pid_ns: int | None = None  # the zygote's PID namespace, to return to after each fork


def namespaces(level: str) -> int:
    """The namespaces each evaluation gets afresh. Mount and PID at every level (its own /proc
    and work dir, a clean kill of all it started); network and IPC where the level isolates
    them (the zygote already has them unshared from the host at those levels)."""
    flags = _CLONE_NEWNS | _CLONE_NEWPID
    if level in ("bwrap", "unshare"):
        flags |= _CLONE_NEWNET | _CLONE_NEWIPC
    return flags


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _mount(source: str, target: str, fstype: str | None, flags: int, data: str | None) -> None:
    _check(_libc.mount(source.encode(), target.encode(), fstype.encode() if fstype else None,
                       ctypes.c_ulong(flags), data.encode() if data else None),
           f"mount {fstype or source} on {target}")


def _die_with_parent() -> None:
    _check(_libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl(PDEATHSIG)")


def _reseed() -> None:
    """Each fork gets fresh random state (the zygote's would be shared by every candidate)."""
    import random

    random.seed()
    nprandom = sys.modules.get("numpy.random")
    if nprandom is not None:
        nprandom.seed()


@dataclass
class Prepared:
    """A prepared evaluation, as the zygote holds it: the pid of its fork, a pidfd on it and
    the socket its PID 1 waits on for the request."""

    pid: int
    pidfd: int
    sock: socket.socket
    # Its mount, network and IPC namespaces, held from its set-up on: the zygote lets them go
    # only once it has reported the evaluation's end, so their teardown (unmounting its
    # tmpfs folders, freeing its network stack) is off the run's critical path.
    held: tuple[int, ...] = ()

    def release(self) -> None:
        """Close what the zygote holds of it (its namespaces go with the last reference)."""
        for fd in self.held:
            os.close(fd)
        self.held = ()
        self.sock.close()


def prepare(settings: dict[str, Any], level: str, role: str, preloaded: Any,
            zygote_start_dir: str, close_in_child: Callable[[], None]) -> Prepared:
    """Fork one evaluation, as PID 1 of a new PID namespace, and set it up as far as it goes
    without its request. `close_in_child` closes, in the fork, everything of the zygote's
    (its control socket, other evaluations' sockets and pidfds)."""
    global _own_pid_ns
    if _own_pid_ns is None:
        _own_pid_ns = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    # The next child is born as PID 1 of a new PID namespace (the zygote stays in its own);
    # right after the fork the zygote's children are born in its own namespace again.
    try:
        _check(_libc.unshare(_CLONE_NEWPID), "unshare(CLONE_NEWPID)")
    except OSError:
        ours.close()
        theirs.close()
        raise
    try:
        pid = os.fork()
    except BaseException:
        ours.close()
        theirs.close()
        _back_to_own_pid_namespace()
        raise
    if pid == 0:
        os.close(_own_pid_ns)
        ours.close()
        close_in_child()
        _pid1(settings, theirs, level, role, preloaded, zygote_start_dir)  # never returns
    _back_to_own_pid_namespace()
    theirs.close()
    return Prepared(pid, os.pidfd_open(pid), ours)


class ZygoteBroken(RuntimeError):
    """The zygote could not return to its own PID namespace: its next fork would be born in
    an evaluation's. It must end (the run starts a fresh one)."""


def _back_to_own_pid_namespace() -> None:
    assert _own_pid_ns is not None
    if _libc.setns(_own_pid_ns, _CLONE_NEWPID) != 0:
        err = ctypes.get_errno()
        raise ZygoteBroken(f"setns(CLONE_NEWPID): {os.strerror(err)}")


def dispatch(prepared: Prepared, message: bytes, fds: list[int]) -> str:
    """Hand a request (and its descriptors but the status socket, which stays with the
    zygote) to a prepared evaluation once its set-up is done: '' when it took it, else why
    it could not (its set-up failed, or it is gone: then nothing ran)."""
    try:
        said, held, _, _ = socket.recv_fds(prepared.sock, 4096, len(_HELD))
    except OSError as exc:
        return f"the prepared evaluation is gone ({exc})"
    prepared.held = tuple(held)
    if said != _READY:
        return said.decode(errors="replace") or "the prepared evaluation is gone"
    try:
        socket.send_fds(prepared.sock, [message], fds)
        return ""
    except OSError as exc:
        return f"the prepared evaluation is gone ({exc})"


def setup_error(prepared: Prepared) -> str:
    """Why a prepared evaluation's set-up failed ('' when it did not say)."""
    try:
        said = prepared.sock.recv(4096, socket.MSG_DONTWAIT)
    except OSError:
        return ""
    return "" if said == _READY else said.decode(errors="replace")


def discard(prepared: Prepared) -> None:
    """Kill (if need be) and reap a prepared evaluation that will serve no request."""
    try:
        os.kill(prepared.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        os.waitpid(prepared.pid, 0)
    except ChildProcessError:
        pass
    os.close(prepared.pidfd)
    prepared.release()


def _set_up(settings: dict[str, Any], level: str) -> None:
    """The evaluation's own session, namespaces (its PID namespace it was born in) and mounts,
    and its own /proc and random state."""
    _die_with_parent()
    os.setsid()
    signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a fresh interpreter
    _check(_libc.unshare(namespaces(level) & ~_CLONE_NEWPID), "unshare")
    # Mounts below stay in this namespace (never propagate back to the zygote's).
    _mount("none", "/", None, _MS_REC | _MS_PRIVATE, None)
    if level in ("bwrap", "unshare"):
        _fresh_folders(settings)
    _mount("proc", "/proc", "proc", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC, None)
    _reseed()


def _setup_failed(sock: socket.socket, exc: BaseException) -> None:
    """Say why on the prepared evaluation's socket (the zygote reports it with the exit code
    of the request it gets, or of the one it had already handed over), and exit."""
    try:
        sock.send(f"{type(exc).__name__}: {exc}".encode()[:4000])
    except OSError:
        pass
    os._exit(SETUP_FAILED)


def _fresh_folders(settings: dict[str, Any]) -> None:
    """A fresh /tmp as a cold run gets (size-capped, writable by all): the zygote's would be
    shared by every evaluation. It hides the zygote's work dir mount point when that lies in
    /tmp: made again in the fresh one. Then the other folders anyone may write, a fresh tmpfs
    over the work dir's mount point (seen by this evaluation alone), /dev/shm and the POSIX
    queues of this fork's own IPC namespace."""
    _fresh_tmp(settings["tmp_keep"], int(settings["tmp_mb"]))
    for folder in settings.get("fresh", []):
        if os.path.isdir(folder) and not os.path.islink(folder):
            _fresh_tmp(settings["tmp_keep"], int(settings["tmp_mb"]), folder)
    os.makedirs(settings["mount_point"], mode=0o755, exist_ok=True)
    size_mb = int(settings["work_dir_mb"])
    _mount("tmpfs", settings["mount_point"], "tmpfs", _MS_NOSUID | _MS_NODEV,
           f"size={size_mb}m,mode=755")
    _mount("tmpfs", "/dev/shm", "tmpfs", _MS_NOSUID | _MS_NODEV, f"size={size_mb}m,mode=1777")
    mountns.fresh_mqueue()


def _fresh_tmp(keep: list[str], size_mb: int, folder: str = "/tmp") -> None:
    """Mount a fresh /tmp (or another folder anyone may write), then bind back (read-only) the
    paths of the zygote's view that lie under it (a problem folder there): as in the cold
    bubblewrap command, which binds them over its /tmp. Bound from the zygote's own view
    (recursively), so what it left out, the problem's hidden files, stays out."""
    held = []
    for path in (p for p in keep if Path(folder) in Path(p).parents):
        try:
            held.append((path, os.open(path, os.O_PATH | os.O_CLOEXEC)))
        except OSError:
            continue  # not in the zygote's view: nothing to bind back
    _mount("tmpfs", folder, "tmpfs", _MS_NOSUID | _MS_NODEV, f"size={size_mb}m,mode=1777")
    for path, fd in held:
        target = Path(path)
        for parent in reversed(target.parents):
            if not parent.exists():
                parent.mkdir(mode=0o755)
        if os.path.isdir(f"/proc/self/fd/{fd}"):
            target.mkdir(mode=0o755, exist_ok=True)
        else:
            target.touch(mode=0o644)
        _mount(f"/proc/self/fd/{fd}", path, None, _MS_BIND | _MS_REC, None)
        _mount("none", path, None, _MS_REMOUNT | _MS_BIND | _MS_RDONLY | _MS_NOSUID, None)
        os.close(fd)


def _work_dir(settings: dict[str, Any], request: dict[str, Any]) -> None:
    """The evaluation's work dir in its fresh tmpfs (a name no other evaluation had), sized
    for its limits, with its program: root's, in a sticky dir, so the candidate cannot
    replace it."""
    size_mb = int(request["work_dir_mb"])
    if size_mb != int(settings["work_dir_mb"]):  # prepared for other limits
        for target in (request["mount_point"], "/dev/shm"):
            _mount("tmpfs", target, None, _MS_REMOUNT | _MS_NOSUID | _MS_NODEV,
                   f"size={size_mb}m")
    os.mkdir(request["work_dir"])
    os.chmod(request["work_dir"], 0o1777)
    program = Path(request["program"])
    program.write_text(request["code"])
    program.chmod(0o644)


def _pid1(settings: dict[str, Any], sock: socket.socket, level: str, role: str,
          preloaded: Any, zygote_start_dir: str) -> None:
    """PID 1 of the evaluation's own PID namespace: its namespaces and mounts, then wait for
    the request, write the program, take its pipes, then run the harness exactly as `python -m evaluators.harness` would (role
    'judge'), or host the candidate on its channel (role 'candidate'). Never returns."""
    try:
        _set_up(settings, level)
        held = [os.open(f"/proc/self/ns/{name}", os.O_RDONLY | os.O_CLOEXEC) for name in _HELD]
        socket.send_fds(sock, [_READY], held)
        for fd in held:
            os.close(fd)
    except BaseException as exc:  # noqa: BLE001 - handed to the request's reporter
        _setup_failed(sock, exc)
    try:
        message, fds, _, _ = socket.recv_fds(sock, _MAX_REQUEST, 8)
    except OSError:
        message, fds = b"", []
    if not message:
        os._exit(0)  # the zygote is gone, or dropped us unused
    sock.close()
    try:
        request = json.loads(message)
        if level in ("bwrap", "unshare"):
            _work_dir(settings, request)
    except BaseException as exc:  # noqa: BLE001 - on the evaluation's stderr
        try:
            os.write(fds[1], f"warm sandbox: could not start: {type(exc).__name__}: {exc}\n"
                     .encode())
        except (OSError, IndexError):
            pass
        os._exit(SETUP_FAILED)
    code = 70
    try:
        _take_descriptors(request, fds)
        code = _run(request, preloaded, zygote_start_dir, role)
    except BaseException as exc:  # noqa: BLE001 - reported on stderr, never raised further
        try:
            os.write(2, f"warm sandbox: {type(exc).__name__}: {exc}\n".encode())
        except OSError:
            pass
    os._exit(code)


def _take_descriptors(request: dict[str, Any], fds: list[int]) -> None:
    """stdin from /dev/null; stdout, stderr, the result pipe (a candidate: its channel), [the
    judge's channel], [cgroup files] at 1, 2, 3, ...; nothing else of the zygote's stays open;
    the environment is the request's."""
    # Out of the way first, so that placing them at 1-4 never overwrites one of them.
    moved = [fcntl.fcntl(fd, fcntl.F_DUPFD, 100) for fd in fds]
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    for target, fd in enumerate(moved, start=1):
        os.dup2(fd, target)
    first_free = len(moved) + 1
    os.closerange(first_free,
                  os.sysconf("SC_OPEN_MAX") if os.sysconf("SC_OPEN_MAX") > 0 else 4096)
    for fd in range(3, first_free):
        os.set_inheritable(fd, True)
    env = dict(request["env"])
    env["EVOLVE_RESULT_FD"] = "3"
    cgroup_first = 4
    if request.get("judge_channel"):
        env["EVOLVE_CANDIDATE_FD"] = "4"
        cgroup_first = 5
    # The evaluation's cgroup (tree_limits), joined by its supervisor (harness or candidate
    # host) for the process that runs candidate code.
    if first_free > cgroup_first:
        env[cgroup_join.FDS_VAR] = json.dumps(list(range(cgroup_first, first_free)))
    os.environ.clear()
    os.environ.update(env)


def _run(request: dict[str, Any], preloaded: Any, zygote_start_dir: str, role: str) -> int:
    work_dir = request["work_dir"]
    os.chdir(work_dir)
    # `python -m` put the start directory first on sys.path; a cold harness gets its work dir.
    sys.path[:] = [work_dir if p in (zygote_start_dir, "") else p for p in sys.path]
    if role == "candidate":
        from evaluators import candidate_host

        os.environ.pop("EVOLVE_RESULT_FD", None)
        sys.argv[:] = [candidate_host.__file__, "3", request["program"]]
        code = candidate_host.run(Path(request["program"]), 3)
    else:
        from evaluators import harness

        sys.argv[:] = [harness.__file__, request["problem_dir"], request["program"],
                       request["stage"]]
        code = harness.run(Path(request["problem_dir"]), Path(request["program"]),
                           request["stage"], preloaded)
    sys.stdout.flush()
    sys.stderr.flush()
    return code

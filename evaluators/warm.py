"""A warm interpreter per run: one pre-imported Python that forks a fresh process per evaluation.

The cold path (`evaluators.sandbox.run_sandboxed`) starts `python -m evaluators.harness` for every
stage of every candidate: interpreter start, site, numpy and the evaluator's own imports, and the
guard's snapshot of the evaluator are paid each time. Here one *zygote* per (problem, level) pays
them once and then only forks.

Why isolation between candidates is not weakened
------------------------------------------------
- The zygote never runs candidate code. It imports the harness, numpy and the problem's
  evaluator (trusted code, as the cold harness does before any candidate) and takes the guard's
  snapshot; then it only receives requests and forks. Every evaluation starts from a
  copy-on-write copy of that pristine state, so module globals, `sys.modules`, environment
  variables, signal handlers, the cwd or the random state a candidate changes die with its own
  process: nothing flows back into the zygote or sideways into a later fork.
- The zygote itself runs inside the level's sandbox command (bubblewrap with the same read-only
  root, hidden home/temp folders and namespaces as a cold evaluation, built by
  `isolation.command_prefix`), and each forked evaluation then enters namespaces of its own,
  nested inside: a new mount namespace (at the bwrap and unshare levels a fresh size-capped
  tmpfs as its work dir and HOME/TMPDIR, a fresh /tmp and /dev/shm; its own /proc), a new PID
  namespace (it cannot see, signal or ptrace the zygote or another evaluation, and when its
  first process ends the kernel kills everything it left), and at the bwrap and unshare levels
  new network and IPC namespaces (no abstract socket, SysV object or POSIX queue outlives it or
  reaches a concurrent evaluation). The seccomp filter, the limits and the uid drop are applied
  after the fork, by the harness, exactly as in the cold path; the evaluation is born in its
  own cgroup (`evaluators.warm_cgroups`). So each evaluation gets the same isolation a cold one
  gets, plus a private PID namespace at every level.
- Creating those namespaces needs CAP_SYS_ADMIN in the zygote, which bubblewrap keeps only when
  run by root (and which the uid drop then removes from the candidate). Elsewhere (not root)
  `supported()` is False and the executor uses the cold path.
- The cascade's stages of one candidate are separate requests, so each stage is its own fork of
  the pristine zygote: nothing the candidate did in one stage is visible to the next stage's
  evaluator.
- The zygote's forks share its hash-randomisation seed (Python fixes it at interpreter start).
  Random streams do not repeat: `random` reseeds itself after a fork, and numpy's global
  generator (which does not) is reseeded from the OS in every fork.
- A candidate cannot reach the zygote (another PID namespace, another uid), but if the zygote
  dies anyway (killed from outside, out of memory), the evaluations it was running fail with a
  crash, it is marked dead, and the next evaluation starts a fresh one.

Two kinds of zygote (`role`): a *judge* zygote imports the problem's evaluator as above; a
*candidate* zygote imports only the candidate's host and worker (`evaluators.candidate_host`)
and never the evaluator, so a candidate's fork holds nothing of the judge's. For a problem on
the judge/candidate API each evaluation is one fork of each, under two uids, joined by one
channel the run process creates (`evaluators.judge_proxy`).

Protocol: the run process holds one end of a SOCK_SEQPACKET pair; each request is one JSON
message with four file descriptors (stdout, stderr, result pipe write ends and a status socket)
and, for a judge whose candidate runs in the other zygote, its end of the channel (a
candidate's request carries its end of the channel in the result's place; `judge_channel` in
the request says a judge's is there), then, where the machine offers cgroups, the evaluation's
`cgroup.procs` files (`tree_limits`).
The zygote forks, and reports the evaluation's exit code on the status socket; "kill" on that
socket (or closing it) makes the zygote SIGKILL the evaluation, whose PID namespace then dies.
"""

from __future__ import annotations

import ctypes
import fcntl
import gc
import json
import os
import selectors
import signal
import socket
import sys
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
SETUP_FAILED = 71

_libc = ctypes.CDLL(None, use_errno=True)


def _namespaces(level: str) -> int:
    """The namespaces each evaluation gets afresh. Mount and PID at every level (its own /proc
    and work dir, a clean kill of all it started); network and IPC where the level isolates
    them (the zygote already has them unshared from the host at those levels)."""
    flags = _CLONE_NEWNS | _CLONE_NEWPID
    if level in ("bwrap", "unshare"):
        flags |= _CLONE_NEWNET | _CLONE_NEWIPC
    return flags


def supported(level: str) -> bool:
    """Whether the warm path gives `level`'s isolation here: namespaces for each evaluation
    need root (bubblewrap keeps root's capabilities inside; as another user it drops them)."""
    return os.geteuid() == 0 and sys.platform.startswith("linux") and hasattr(os, "pidfd_open")


# ---------------------------------------------------------------------------------------------
# The zygote (inside the sandbox): `python -m evaluators.warm PROBLEM_DIR EVALUATOR_FILE LEVEL`
# ---------------------------------------------------------------------------------------------


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


def _evaluation(request: dict[str, Any], fds: list[int], preloaded: Any,
                zygote_start_dir: str, role: str = "judge") -> None:
    """PID 1 of the evaluation's own PID namespace: mount its /proc, take its pipes, run the
    harness exactly as `python -m evaluators.harness` would (role 'judge'), or host the
    candidate on its channel (role 'candidate'). Never returns."""
    code = 70
    try:
        _die_with_parent()
        _mount("proc", "/proc", "proc", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC, None)
        # Out of the way first, so that placing them at 1-4 never overwrites one of them.
        moved = [fcntl.fcntl(fd, fcntl.F_DUPFD, 100) for fd in [*fds[:3], *fds[4:]]]
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        for target, fd in enumerate(moved, start=1):
            os.dup2(fd, target)  # stdout, stderr, result (or channel), [judge's channel], cgroups
        # Nothing of the zygote's (its control socket, other evaluations' pipes) stays open.
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
        # The evaluation's cgroup (tree_limits), joined by its supervisor (harness or
        # candidate host) for the process that runs candidate code.
        if first_free > cgroup_first:
            env[cgroup_join.FDS_VAR] = json.dumps(list(range(cgroup_first, first_free)))
        os.environ.clear()
        os.environ.update(env)
        work_dir = request["work_dir"]
        os.chdir(work_dir)
        # `python -m` put the start directory first on sys.path; a cold harness gets its work dir.
        sys.path[:] = [work_dir if p in (zygote_start_dir, "") else p for p in sys.path]
        _reseed()
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
    except BaseException as exc:  # noqa: BLE001 - reported on stderr, never raised into the zygote
        try:
            os.write(2, f"warm sandbox: {type(exc).__name__}: {exc}\n".encode())
        except OSError:
            pass
    os._exit(code)


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


def _fork_evaluation(request: dict[str, Any], fds: list[int], preloaded: Any, level: str,
                     zygote_start_dir: str, role: str = "judge") -> None:
    """The zygote's fork for one evaluation: its own session, namespaces and work dir, then a
    second fork that becomes PID 1 of the new PID namespace. Exits with that process's code."""
    try:
        _die_with_parent()
        os.setsid()
        signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a fresh interpreter
        os.close(fds[3])  # the status socket stays with the zygote
        _check(_libc.unshare(_namespaces(level)), "unshare")
        # Mounts below stay in this namespace (never propagate back to the zygote's).
        _mount("none", "/", None, _MS_REC | _MS_PRIVATE, None)
        if level in ("bwrap", "unshare"):
            # A fresh /tmp as a cold run gets (size-capped, writable by all): the
            # zygote's would be shared by every evaluation. It hides the zygote's work dir
            # mount point when that lies in /tmp: made again in the fresh one.
            _fresh_tmp(request["tmp_keep"], int(request["tmp_mb"]))
            # The other folders anyone may write (/var/tmp, /run/lock) where the view has them.
            for folder in request.get("fresh", []):
                if os.path.isdir(folder) and not os.path.islink(folder):
                    _fresh_tmp(request["tmp_keep"], int(request["tmp_mb"]), folder)
            os.makedirs(request["mount_point"], mode=0o755, exist_ok=True)
            # A fresh tmpfs over the zygote's work dir, seen by this evaluation alone; its work
            # dir is a folder of its own name in it (a name no other evaluation had).
            _mount("tmpfs", request["mount_point"], "tmpfs", _MS_NOSUID | _MS_NODEV,
                   f"size={int(request['work_dir_mb'])}m,mode=755")
            os.mkdir(request["work_dir"])
            os.chmod(request["work_dir"], 0o1777)
            _mount("tmpfs", "/dev/shm", "tmpfs", _MS_NOSUID | _MS_NODEV,
                   f"size={int(request['work_dir_mb'])}m,mode=1777")
            mountns.fresh_mqueue()  # this fork's own IPC namespace's queues, where mounted
            program = Path(request["program"])
            program.write_text(request["code"])
            program.chmod(0o644)  # root's, in a sticky dir: the candidate cannot replace it
        pid = os.fork()
        if pid == 0:
            _evaluation(request, fds, preloaded, zygote_start_dir, role)
        for fd in [*fds[:3], *fds[4:]]:
            os.close(fd)
        _, status = os.waitpid(pid, 0)
        code = os.waitstatus_to_exitcode(status)
        os._exit(code if code >= 0 else 128 - code)
    except BaseException as exc:  # noqa: BLE001
        try:
            os.write(fds[1], f"warm sandbox: could not start: {type(exc).__name__}: {exc}\n"
                     .encode())
        except OSError:
            pass
        os._exit(SETUP_FAILED)


def _preload(problem_dir: Path, evaluator_file: str,
             role: str = "judge") -> tuple[Any, str]:
    """Import what every evaluation needs: the harness's Preloaded, or None and the error
    the evaluator raised when it does not import (each evaluation then reports it). A
    candidate interpreter imports the candidate's host and worker and never the problem's
    evaluator: its forks hold nothing of the judge's."""
    try:
        import numpy  # noqa: F401 - fork-safe with one BLAS thread (the thread vars are set)
    except ImportError:
        pass
    if role == "candidate":
        from evaluators import candidate_host, candidate_worker  # noqa: F401

        return None, ""
    from evaluators import harness

    try:
        return harness.Preloaded(problem_dir, evaluator_file), ""
    except BaseException as exc:  # noqa: BLE001 - the problem's code: each evaluation reports it
        return None, f"{type(exc).__name__}: {exc}"[:1500]  # the ready message is one 4 KiB read


def _threads() -> int:
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return 1


def serve(control: socket.socket, problem_dir: Path, evaluator_file: str, level: str,
          role: str = "judge") -> None:
    """The zygote's loop: fork one evaluation per request, report each exit, kill on request."""
    from evaluators import hidden

    start_dir = os.getcwd()
    had_hidden = hidden.sandboxed()  # the run process handed us hidden descriptors
    preloaded, import_error = _preload(problem_dir, evaluator_file, role)
    # The evaluator has read its hidden files while it was imported (the only time it may):
    # their descriptors are closed before the first fork, so no evaluation inherits them.
    hidden.close_all()
    if preloaded is None and had_hidden and role == "judge":
        # Each fork would import the evaluator again with the hidden files already closed and
        # report a misleading error: a fresh interpreter per stage reports the real one.
        control.send(json.dumps({"ready": False, "reason": f"the evaluator did not import: "
                                 f"{import_error}"}).encode())
        return
    if _threads() > 1:
        # A thread started by an import would be missing (holding its locks) in every fork.
        control.send(json.dumps({"ready": False, "reason": f"the evaluator's imports started "
                                 f"{_threads() - 1} thread(s): forking is not safe"}).encode())
        return
    sys.stdout.flush()
    sys.stderr.flush()
    # What the zygote imported is never collected: moved out of the collector's sight, a fork's
    # garbage collections do not touch (and so copy) every page of it.
    gc.collect()
    gc.freeze()
    control.send(json.dumps({"ready": True, "preloaded": preloaded is not None}).encode())
    sel = selectors.DefaultSelector()
    sel.register(control, selectors.EVENT_READ, ("control",))
    while True:
        for key, _ in sel.select():
            if sel.get_map().get(key.fd) is not key:
                # Handled earlier in this batch: an evaluation's exit closes its status socket
                # (whose end-of-file then came in the same batch), and a new request may have
                # been given the same descriptor number meanwhile.
                continue
            kind = key.data[0]
            if kind == "control":
                try:
                    message, fds, _, _ = socket.recv_fds(control, 1 << 22, 8)
                except OSError:
                    return
                if not message:
                    return  # the run process is gone: so are we (our forks die with us)
                if not 4 <= len(fds) <= 8:
                    for fd in fds:
                        os.close(fd)
                    continue
                pid = os.fork()
                if pid == 0:
                    # Other evaluations' status sockets and pidfds are none of this one's.
                    for other in list(sel.get_map().values()):
                        if isinstance(other.fileobj, socket.socket):
                            other.fileobj.close()
                        else:
                            os.close(other.fd)
                    sel.close()
                    _fork_evaluation(json.loads(message), fds, preloaded, level, start_dir,
                                     role)
                for fd in [*fds[:3], *fds[4:]]:
                    os.close(fd)
                status = socket.socket(fileno=fds[3])
                exit_fd = os.pidfd_open(pid)
                sel.register(exit_fd, selectors.EVENT_READ, ("exit", pid, status))
                sel.register(status, selectors.EVENT_READ, ("status", pid))
            elif kind == "exit":
                _, pid, status = key.data
                _, wait_status = os.waitpid(pid, 0)
                sel.unregister(key.fd)
                os.close(key.fd)
                if status.fileno() in sel.get_map():
                    sel.unregister(status)
                try:
                    status.send(json.dumps(
                        {"returncode": os.waitstatus_to_exitcode(wait_status)}).encode())
                except OSError:
                    pass
                status.close()
            elif kind == "status":
                try:
                    data = key.fileobj.recv(64)  # type: ignore[union-attr]
                except OSError:
                    data = b""
                if not data:
                    sel.unregister(key.fileobj)  # the run stopped listening: stop the evaluation
                try:
                    os.kill(key.data[1], signal.SIGKILL)
                except ProcessLookupError:
                    pass


def _receive_hidden(control: socket.socket) -> None:
    """The run process's first message: the problem's hidden files as descriptors, handed to
    `evaluators.hidden` to be read and closed as a cold harness's inherited ones are."""
    from evaluators import hidden

    names, fds = [], []
    try:
        message, fds, _, _ = socket.recv_fds(control, 1 << 16, 250)
        names = json.loads(message or b"[]")
    except (OSError, ValueError):
        pass
    if len(names) != len(fds):
        for fd in fds:
            os.close(fd)
        names, fds = [], []
    hidden.adopt(dict(zip(names, fds, strict=True)))


def main() -> int:
    problem_dir, evaluator_file, level = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    role = sys.argv[4] if len(sys.argv) > 4 else "judge"
    control = socket.socket(fileno=int(os.environ.pop("EVOLVE_WARM_FD")))
    # The zygote must not die of a stray SIGINT meant for the run (Ctrl-C reaches the group).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _receive_hidden(control)
    try:
        # The unshare level's file-system view, applied before the evaluator is imported as the
        # cold harness does; every fork's mount namespace is a copy of it.
        mountns.apply_from_environment()
    except OSError as exc:
        control.send(json.dumps({"ready": False,
                                 "reason": f"sandbox setup failed: {exc}"}).encode())
        return 1
    try:
        serve(control, problem_dir, evaluator_file, level, role)
    except BaseException as exc:  # noqa: BLE001
        print(f"warm interpreter: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

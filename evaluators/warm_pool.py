"""The run process's side of the warm path: start a zygote (`evaluators.warm`) per problem and
isolation level, send it one request per evaluation, supervise the evaluation's output and
exit exactly like the cold path does, and start a fresh zygote when one died.

See `evaluators.warm` for why a forked evaluation is as isolated as a cold one.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from evaluators import isolation, sandbox, syscall_filter, warm
from evaluators.candidate_sandbox import OutputReader, merge_output
from evaluators.hidden import open_for_child
from evaluators.interface import uses_judge
from evaluators.sandbox import SandboxLimits, SandboxOutcome
from evaluators.tree_limits import TreeCgroup, explain
from evaluators.view import outermost, sandbox_view
from evaluators.warm_cgroups import BornInCgroups

log = logging.getLogger(__name__)

_START_TIMEOUT_S = 120.0


class WarmUnavailable(RuntimeError):
    """This problem cannot use a warm interpreter (the cold path is used instead)."""


class ZygoteGone(RuntimeError):
    """The zygote was gone before it got the request: nothing ran, so retrying is safe."""


class _RemoteChild:
    """What `sandbox._supervise` needs of a child process, for an evaluation the zygote forked:
    its output pipes, and its exit code read from the status socket."""

    def __init__(self, out_fd: int, err_fd: int, status: socket.socket):
        self.stdout = os.fdopen(out_fd, "rb", buffering=0)
        self.stderr = os.fdopen(err_fd, "rb", buffering=0)
        self.status = status
        self.returncode: int | None = None
        self.lost = False  # the zygote died before it reported an exit code

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                data = self.status.recv(4096, socket.MSG_DONTWAIT)
            except BlockingIOError:
                return None
            except OSError:
                data = b""
            if data:
                self.returncode = int(json.loads(data)["returncode"])
            else:
                self.lost, self.returncode = True, -9
        return self.returncode

    def kill(self, _proc: Any = None) -> None:
        """The wall-clock limit: the zygote SIGKILLs the evaluation (its PID namespace with it)."""
        try:
            self.status.send(b"kill")
        except OSError:
            pass
        deadline = time.monotonic() + 10
        while self.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)

    def close(self) -> None:
        self.stdout.close()
        self.stderr.close()
        self.status.close()


class _WarmCandidate:
    """A candidate's process forked by a candidate zygote for one evaluation."""

    def __init__(self, status: socket.socket, reader: OutputReader, lease: Any,
                 host_dir: Path | None, token: str, *, release: Callable[[], int],
                 cgroup: TreeCgroup | None, memory_mb: int | None):
        self.status, self.reader, self.lease = status, reader, lease
        self.host_dir, self.token = host_dir, token
        self._release, self.cgroup, self.memory_mb = release, cgroup, memory_mb
        self._stopped = False

    def stop(self, result: dict | None = None) -> None:
        """Once the judge is done: the candidate's host ends on the closed channel; the zygote
        kills what is left of its PID namespace on our word, and reports its exit. A `result`
        that failed of a crash becomes a memory failure when the kernel killed a process of
        the candidate's cgroup for memory."""
        if self._stopped:
            return
        self._stopped = True
        try:
            self.status.send(b"kill")
            self.status.settimeout(10)
            self.status.recv(4096)  # its exit code: the PID namespace is gone
        except OSError:
            pass  # the zygote is gone, and its forks with it
        self.status.close()
        self.reader.join(5.0)
        explain(result, self.cgroup, self.memory_mb)
        self._release()
        uid = self.lease.uid if self.lease else None
        if uid is not None and _uid_has_processes(uid):
            sandbox.kill_leftovers(self.token, -1, uid)
        if self.host_dir is not None:
            shutil.rmtree(self.host_dir, ignore_errors=True)
        if self.lease:
            self.lease.release()


def _mount_point() -> Path:
    """The zygote's work dir path. At bubblewrap level only a mount point (the zygote gets a
    tmpfs there, each evaluation a fresh one over it, in namespaces of their own), so every
    zygote on the machine shares this one empty, root-owned folder and a killed run leaves
    nothing behind; a folder someone else made or can write is refused."""
    path = Path(tempfile.gettempdir()) / "evolve-warm"
    try:
        path.mkdir(mode=0o755)
    except FileExistsError:
        pass
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o022:
        raise WarmUnavailable(f"{path} is not a folder only this user can write; not used")
    return path


def _uid_has_processes(uid: int) -> bool:
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid == uid:
                    return True
            except OSError:
                continue
    return False


class WarmInterpreter:
    """One zygote: a pre-imported interpreter inside `level`'s sandbox for one problem.

    It is started exactly like a cold evaluation: the same allow-list view (`sandbox_view`, the
    problem's hidden files left out) through `isolation.command_prefix` and its environment (at
    the unshare level the mount plan, which the zygote applies before it imports the
    evaluator, so every fork inherits the view), and the hidden files as descriptors (sent over
    its control socket): the evaluator reads them while the zygote imports it, then the zygote
    closes them before its first fork."""

    def __init__(self, problem_dir: Path, evaluator_file: str, level: str,
                 hidden: tuple[str, ...] = (), role: str = "judge"):
        self.problem_dir = problem_dir.resolve()
        self.evaluator_file = evaluator_file
        self.level = level
        self.role = role
        self._lock = threading.Lock()
        self.base = _mount_point()
        self.view = sandbox_view(self.problem_dir, hidden, gpu=False)
        # The unshare level stages its bind mounts under the work dir: one of this zygote's
        # own, so zygotes starting together never share (or remove) each other's mount points.
        self._stage_dir = (Path(tempfile.mkdtemp(prefix="evolve-warm-"))
                           if level == "unshare" else None)
        plan_dir = self._stage_dir or self.base
        # What of the view lies under /tmp: each bubblewrap fork mounts a fresh /tmp and binds
        # these back (a problem folder in a temp dir; none for an installed problem).
        self._fresh = [f for f in isolation.shared_writable() if f not in ("/tmp", "/dev/shm")]
        self._tmp_keep = [str(p) for p in outermost(self.view.read_paths)
                          if any(Path(f) in p.parents for f in ["/tmp", *self._fresh])]
        self._control, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._control.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self._cgroups: BornInCgroups | None = None
        env = sandbox._environment("warm", plan_dir, SandboxLimits(timeout_s=1), -1, None,
                                   evaluator_file, None)
        for key in ("EVOLVE_RESULT_FD", "EVOLVE_SANDBOX_LIMITS", sandbox.MARKER_VAR,
                    syscall_filter.SPEC_VAR):
            env.pop(key, None)
        env["EVOLVE_WARM_FD"] = str(theirs.fileno())
        # The sandbox command binds a program into the work dir; the zygote runs none (each
        # evaluation writes its own into a fresh tmpfs over it), so any readable file will do.
        prefix, prefix_env = isolation.command_prefix(
            level, view=self.view, work_dir=plan_dir, program=Path(warm.__file__),
            work_dir_mb=64, devices=())
        env.update(prefix_env)
        self._stderr = tempfile.TemporaryFile()
        try:
            # A candidate zygote never imports the evaluator: it gets no hidden file at all.
            hidden_fds = open_for_child(self.problem_dir, hidden if role == "judge" else ())
        except OSError:
            self._control.close()
            theirs.close()
            self._remove_stage_dir()
            raise
        try:
            self.proc = subprocess.Popen(
                [*prefix, sys.executable, "-s", "-m", "evaluators.warm", str(self.problem_dir),
                 evaluator_file, level, role],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self._stderr,
                pass_fds=[theirs.fileno()], env=env, cwd=plan_dir, start_new_session=True)
            # The hidden files go over the control socket, not by inheritance: the sandbox
            # command (unshare) would otherwise hold them open for the zygote's whole life.
            # The zygote's first message read; it hands them to its evaluator as the cold
            # harness gets them (EVOLVE_HIDDEN_FDS) and closes them before its first fork.
            try:
                socket.send_fds(self._control, [json.dumps(list(hidden_fds)).encode()],
                                list(hidden_fds.values()))
            except OSError:
                pass  # the zygote is gone already: the ready check below says so
        except OSError:
            self._control.close()
            self._remove_stage_dir()
            raise
        finally:
            theirs.close()
            for fd in hidden_fds.values():  # the zygote has its own copies now
                os.close(fd)
        self._control.settimeout(_START_TIMEOUT_S)
        zygote_pid = None
        try:
            data, ancillary, _, _ = self._control.recvmsg(4096, socket.CMSG_SPACE(12))
            ready = json.loads(data or b"null")
            # The kernel names the sender (SO_PASSCRED), its pid as this process sees it.
            for level_, kind, creds in ancillary:
                if level_ == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    zygote_pid = struct.unpack("iII", creds[:12])[0]
        except (OSError, ValueError):
            ready = None
        self._control.settimeout(None)
        if not (isinstance(ready, dict) and ready.get("ready")):
            reason = ready.get("reason") if isinstance(ready, dict) else self._log_tail()
            self.close()
            raise WarmUnavailable(f"warm interpreter for {self.problem_dir.name} did not start: "
                                  f"{reason}")
        self.preloaded = bool(ready.get("preloaded"))
        # Each evaluation born in a cgroup of its own (where the machine has them).
        self._cgroups = BornInCgroups.start(zygote_pid)

    def _log_tail(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read()[-2000:].decode(errors="replace").strip() or "no output"

    def alive(self) -> bool:
        return self.proc.poll() is None

    def _prepare(self, code: str, stage: str, limits: SandboxLimits,
                 extra_env: dict[str, str] | None) -> tuple[Any, Path | None, str, dict]:
        """(uid lease, host work dir to remove, token, request) of one evaluation."""
        level, problem_dir = self.level, self.problem_dir
        # The same rule as a cold run: the problem must be readable by the throw-away uid in
        # this view (the zygote's: the unshare level's mount plan is the zygote's own).
        drop = sandbox._drops_uid(level, problem_dir, self.view, self._stage_dir or self.base)
        lease = sandbox._UidLease() if drop else None
        uid = lease.uid if lease else None
        host_dir: Path | None = None
        token = secrets.token_hex(12)
        if level in ("bwrap", "unshare"):
            # In a fresh tmpfs over `base`, mounted by the evaluation's own fork (in a fresh
            # /tmp of its own: the host's is not shared at these levels).
            work_dir = self.base / f"evaluation-{token[:16]}"
        else:
            host_dir = work_dir = Path(tempfile.mkdtemp(prefix="evolve-sbx-"))
            (work_dir / "program.py").write_text(code)
            (work_dir / "program.py").chmod(0o644)
            if uid is not None:
                os.chown(work_dir, uid, uid)
            work_dir.chmod(0o700)
        env = sandbox._environment(token, work_dir, limits, 3, uid, self.evaluator_file,
                                   extra_env)
        request = {"env": env, "stage": stage, "problem_dir": str(problem_dir),
                   "program": str(work_dir / "program.py"), "work_dir": str(work_dir),
                   "mount_point": str(self.base),
                   "code": code if level in ("bwrap", "unshare") else "",
                   "work_dir_mb": max(64, 2 * limits.max_file_mb),
                   "tmp_mb": isolation._TMP_MB, "tmp_keep": self._tmp_keep,
                   "fresh": self._fresh}
        return lease, host_dir, token, request

    def _send(self, request: dict, fds: list[int],
              limits: SandboxLimits) -> tuple[TreeCgroup | None, bool]:
        """Send one request with its descriptors and the evaluation's cgroup (tree_limits):
        the one the zygote sits in, so the fork is born in it, or one the evaluation joins.
        Returns (cgroup, born); raises ZygoteGone when the zygote is gone (nothing ran)."""
        cgroup: TreeCgroup | None = None
        born = False
        try:
            with self._lock:
                if self._cgroups is not None:
                    cgroup = self._cgroups.prepare(limits.memory_mb, limits.max_processes)
                    born = cgroup is not None
                if cgroup is None:  # it joins one of its own (a grace period's wait)
                    cgroup = TreeCgroup.create(limits.memory_mb, limits.max_processes)
                socket.send_fds(self._control, [json.dumps(request).encode()],
                                [*fds, *(cgroup.fds if cgroup and not born else ())])
                if born and self._cgroups is not None and cgroup is not None:
                    self._cgroups.sent(cgroup)
        except OSError as exc:
            if cgroup is not None and not born:
                cgroup.release()
            # (born: the zygote still sits in it, for the next request)
            raise ZygoteGone(str(exc)) from exc
        if cgroup is not None:
            cgroup.close_fds()
        return cgroup, born

    def _release(self, cgroup: TreeCgroup | None, born: bool) -> int:
        """Kill what is left in an evaluation's cgroup and remove it; the processes killed."""
        if cgroup is None:
            return 0
        if not born:
            return cgroup.release()
        if self._cgroups is not None and self._cgroups.settle(cgroup):
            return cgroup.release()
        return 0  # the zygote is still in it (it could not move on): kept, not killed

    def start_candidate(self, *, code: str, limits: SandboxLimits,
                        extra_env: dict[str, str] | None,
                        channel: socket.socket) -> _WarmCandidate:
        """Fork the candidate's process for one evaluation (a candidate zygote's job), holding
        `channel`, in a cgroup of its own (its tree's memory and process limits) and under the
        seccomp filter (in the request's environment: its host loads it before it forks the
        candidate's worker); raises ZygoteGone when the zygote is gone (nothing ran)."""
        lease, host_dir, token, request = self._prepare(code, "", limits, extra_env)
        for key in ("EVOLVE_RESULT_FD", "EVOLVE_EVALUATOR_FILE", "EVOLVE_STAGE_DEADLINE"):
            request["env"].pop(key, None)
        out, err = os.pipe(), os.pipe()
        status, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            cgroup, born = self._send(request, [out[1], err[1], channel.fileno(),
                                                theirs.fileno()], limits)
        except ZygoteGone:
            for fd in (*out, *err):
                os.close(fd)
            status.close()
            if host_dir is not None:
                shutil.rmtree(host_dir, ignore_errors=True)
            if lease:
                lease.release()
            raise
        finally:
            theirs.close()
        os.close(out[1])
        os.close(err[1])
        reader = OutputReader(out[0], err[0], limits.max_output_kb * 1024)
        return _WarmCandidate(status, reader, lease, host_dir, token,
                              release=lambda: self._release(cgroup, born), cgroup=cgroup,
                              memory_mb=limits.memory_mb)

    def run(self, *, code: str, stage: str, limits: SandboxLimits,
            extra_env: dict[str, str] | None,
            candidate: WarmInterpreter | None = None) -> SandboxOutcome:
        """One evaluation, forked by the zygote; never raises for candidate behaviour. Raises
        ZygoteGone when the zygote is gone before it got the request (safe to retry). With
        `candidate` (a candidate zygote), the judge's candidate is forked there, under a uid
        of its own, and the two are joined by one channel."""
        level, problem_dir = self.level, self.problem_dir
        problem_error = sandbox._unreadable_problem(problem_dir, self.evaluator_file, level)
        if problem_error:
            return SandboxOutcome(None, False, None, "", f"could not start the sandbox: "
                                  f"{problem_error}", 0, 0, 0.0, level)
        lease, host_dir, token, request = self._prepare(code, stage, limits, extra_env)
        uid = lease.uid if lease else None
        pipes = [os.pipe() for _ in range(3)]
        status, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        cgroup: TreeCgroup | None = None
        born = False  # the evaluation is forked into the cgroup the zygote sits in
        start = time.perf_counter()
        child = None
        started: _WarmCandidate | None = None
        judge_end: socket.socket | None = None
        try:
            if candidate is not None:
                judge_end, candidate_end = socket.socketpair(socket.AF_UNIX,
                                                             socket.SOCK_STREAM)
                try:
                    started = candidate.start_candidate(code=code, limits=limits,
                                                        extra_env=extra_env,
                                                        channel=candidate_end)
                finally:
                    candidate_end.close()
            if judge_end is not None:
                request["judge_channel"] = True
            try:
                cgroup, born = self._send(
                    request, [pipes[0][1], pipes[1][1], pipes[2][1], theirs.fileno(),
                              *([judge_end.fileno()] if judge_end else [])], limits)
            finally:
                if judge_end is not None:
                    judge_end.close()
            for _, write_end in pipes:
                os.close(write_end)
            theirs.close()
            child = _RemoteChild(pipes[0][0], pipes[1][0], status)
            outcome = sandbox._supervise(child, pipes[2][0], limits, start, level,
                                         wake_fd=status.fileno(), terminate=child.kill)
            if started is not None:
                started.stop(outcome.result)
                merge_output(outcome, started.reader)
            if child.lost:
                outcome.stderr += ("\nwarm sandbox: the warm interpreter ended during this "
                                   "evaluation; the next one starts a fresh interpreter")
                outcome.result = None
            elif child.returncode == warm.SETUP_FAILED:
                outcome.stderr = f"could not start the sandbox: {outcome.stderr.strip()}"
            explain(outcome.result, cgroup, limits.memory_mb)
            outcome.uid = uid
            if uid is not None and _uid_has_processes(uid):
                # Cannot happen: the evaluation's PID namespace ended with its first process
                # (the kernel reaps every member before that one is reaped). Belt and braces,
                # checked by the throw-away uid alone (a stat per process, not three reads).
                outcome.leftovers_killed = sandbox.kill_leftovers(token, -1, uid)
            return outcome
        finally:
            if started is not None:
                started.stop()
            if child is None:  # the request never left: close everything here
                for read_end, write_end in pipes:
                    for fd in (read_end, write_end):
                        try:
                            os.close(fd)
                        except OSError:
                            pass
                theirs.close()
                status.close()
            else:
                child.close()
                os.close(pipes[2][0])
            if host_dir is not None:
                shutil.rmtree(host_dir, ignore_errors=True)
            self._release(cgroup, born)
            if lease:
                lease.release()

    def close(self) -> None:
        self._control.close()  # the zygote exits on EOF; its evaluations die with it
        if self._cgroups is not None:
            self._cgroups.close()
        if self.proc.poll() is None:
            try:
                self.proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._stderr.close()
        self._remove_stage_dir()

    def _remove_stage_dir(self) -> None:
        if self._stage_dir is not None:
            shutil.rmtree(self._stage_dir, ignore_errors=True)


class WarmPool:
    """Zygotes by (problem, evaluator, level), started on first use and replaced when dead."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._interpreters: dict[tuple[str, ...] | tuple, WarmInterpreter] = {}
        self._unavailable: dict[tuple[str, ...] | tuple, str] = {}
        self._resolved: dict[Path, str] = {}

    def interpreter(self, problem_dir: Path, evaluator_file: str, level: str,
                    hidden: tuple[str, ...] = (), role: str = "judge") -> WarmInterpreter | None:
        with self._lock:
            # Resolved once per folder: this runs before every evaluation.
            real = self._resolved.get(problem_dir)
            if real is None:
                real = self._resolved[problem_dir] = str(problem_dir.resolve())
            key = (real, evaluator_file, level, hidden, role)
            if key in self._unavailable:
                return None
            current = self._interpreters.get(key)
            if current is not None and current.alive():
                return current
            if current is not None:
                log.warning("warm %s interpreter for %s ended (exit code %s: %s); starting a "
                            "fresh one", role, problem_dir.name, current.proc.returncode,
                            current._log_tail()[-500:])
                current.close()
            try:
                current = WarmInterpreter(problem_dir, evaluator_file, level, hidden, role)
            except (WarmUnavailable, OSError) as exc:
                log.warning("%s; evaluating with a fresh interpreter per stage instead", exc)
                self._unavailable[key] = str(exc)
                self._interpreters.pop(key, None)
                return None
            self._interpreters[key] = current
            return current

    def run(self, *, problem_dir: Path, evaluator_file: str, code: str, stage: str,
            limits: SandboxLimits, level: str, extra_env: dict[str, str] | None = None,
            gpu: bool = False, hidden: tuple[str, ...] | list[str] = ()) -> SandboxOutcome:
        """Evaluate on a warm interpreter, or cold when this problem cannot have one. Takes
        the arguments of `sandbox.run_sandboxed`. A problem on the judge/candidate API gets
        a fork of its judge zygote and one of its candidate zygote."""
        hidden = tuple(hidden)
        two = uses_judge(problem_dir, evaluator_file)
        # GPU stages always start cold: CUDA does not survive a fork, and their view binds the
        # GPU devices and /sys, which the zygote's view does not have.
        for _ in range(0 if gpu else 2):
            interp = self.interpreter(problem_dir, evaluator_file, level, hidden)
            candidate = (self.interpreter(problem_dir, evaluator_file, level, hidden,
                                          role="candidate") if two else None)
            if interp is None or (two and candidate is None):
                break
            try:
                return interp.run(code=code, stage=stage, limits=limits, extra_env=extra_env,
                                  candidate=candidate)
            except ZygoteGone:
                continue  # nothing ran: retry once on a fresh zygote
        return sandbox.run_sandboxed(problem_dir=problem_dir, evaluator_file=evaluator_file,
                                     code=code, stage=stage, limits=limits, level=level,
                                     extra_env=extra_env, gpu=gpu, hidden=hidden)

    def close(self) -> None:
        with self._lock:
            for interp in self._interpreters.values():
                interp.close()
            self._interpreters.clear()

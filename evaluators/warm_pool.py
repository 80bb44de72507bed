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
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from evaluators import isolation, sandbox, warm_launch
from evaluators.candidate_sandbox import OutputReader
from evaluators.interface import uses_judge
from evaluators.sandbox_common import (
    SandboxLimits,
    SandboxOutcome,
    drops_uid,
    environment,
    unreadable_problem,
)
from evaluators.tree_limits import TreeCgroup
from evaluators.uid_leases import UidLease
from evaluators.view import outermost, sandbox_view
from evaluators.warm_cgroups import BornInCgroups
from evaluators.warm_evaluation import RemoteChild, WarmCandidate, conclude, sweep_uids
from evaluators.warm_launch import WarmUnavailable

__all__ = ["WarmInterpreter", "WarmPool", "WarmUnavailable", "ZygoteGone"]

log = logging.getLogger(__name__)


class ZygoteGone(RuntimeError):
    """The zygote was gone before it got the request: nothing ran, so retrying is safe."""


class WarmInterpreter:
    """One zygote: a pre-imported interpreter inside `level`'s sandbox for one problem.

    It is started exactly like a cold evaluation: the same allow-list view (`sandbox_view`, the
    problem's hidden files left out) through `isolation.command_prefix` and its environment (at
    the unshare level the mount plan, which the zygote applies before it imports the
    evaluator, so every fork inherits the view), and the hidden files as descriptors (sent over
    its control socket): the evaluator reads them while the zygote imports it, then the zygote
    closes them before its first fork."""

    def __init__(self, problem_dir: Path, evaluator_file: str, level: str,
                 hidden: tuple[str, ...] = (), role: str = "judge",
                 python_path: str | None = None):
        self.problem_dir = problem_dir.resolve()
        self.evaluator_file = evaluator_file
        self.level = level
        self.role = role
        self._lock = threading.Lock()
        self.base = warm_launch.mount_point()
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
        self._stderr = tempfile.TemporaryFile()
        try:
            self.proc = warm_launch.launch(
                self._control, theirs, problem_dir=self.problem_dir,
                evaluator_file=evaluator_file, level=level, role=role, view=self.view,
                plan_dir=plan_dir, hidden=hidden, stderr=self._stderr,
                python_path=python_path)
        except OSError:
            self._control.close()
            self._stderr.close()
            self._remove_stage_dir()
            raise
        ready, zygote_pid = warm_launch.await_ready(self._control)
        if not (ready and ready.get("ready")):
            reason = ready.get("reason") if ready else self._log_tail()
            self.close()
            raise WarmUnavailable(f"warm interpreter for {self.problem_dir.name} did not start: "
                                  f"{reason}")
        self.preloaded = bool(ready.get("preloaded"))
        # Each evaluation born in a cgroup of its own (where the machine has them).
        self._cgroups = BornInCgroups.start(zygote_pid)
        self._work_dir_mb = max(64, 2 * SandboxLimits(timeout_s=1).max_file_mb)
        self._prepare_next()

    def _log_tail(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read()[-2000:].decode(errors="replace").strip() or "no output"

    def alive(self) -> bool:
        return self.proc.poll() is None

    def _prepare_next(self) -> None:
        """Ask the zygote to set up the next evaluation now (`warm_fork`), once the last one
        is over: under the dispatch lock, and only while it sits in the cgroup the next
        evaluation gets (a move still pending: the end of the evaluation that caused it asks
        again), so the set-up is born there."""
        settings = {"mount_point": str(self.base), "tmp_mb": isolation._TMP_MB,
                    "tmp_keep": self._tmp_keep, "fresh": self._fresh,
                    "work_dir_mb": self._work_dir_mb}
        with self._lock:
            if self._cgroups is not None and not self._cgroups.settled():
                return
            try:
                self._control.send(json.dumps({"prepare": settings}).encode())
            except OSError:
                pass  # the zygote is gone: the next request says so

    def _prepare(self, code: str, stage: str, limits: SandboxLimits,
                 extra_env: dict[str, str] | None) -> tuple[Any, Path | None, str, dict]:
        """(uid lease, host work dir to remove, token, request) of one evaluation."""
        level, problem_dir = self.level, self.problem_dir
        # The same rule as a cold run: the problem must be readable by the throw-away uid in
        # this view (the zygote's: the unshare level's mount plan is the zygote's own).
        drop = drops_uid(level, problem_dir, self.view, self._stage_dir or self.base)
        lease = UidLease() if drop else None
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
        env = environment(token, work_dir, limits, 3, uid, self.evaluator_file,
                                   extra_env)
        self._work_dir_mb = max(64, 2 * limits.max_file_mb)  # the next set-up's guess
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

    def _finish(self, cgroup: TreeCgroup | None, born: bool) -> None:
        """After an evaluation: kill what is left in its cgroup and free it, then have the
        zygote prepare the next evaluation; for a cgroup the evaluation was born in, once
        the zygote has left it (`BornInCgroups.finish`: never a wait here)."""
        if born and cgroup is not None and self._cgroups is not None:
            self._cgroups.finish(cgroup, self._prepare_next)
            return
        if cgroup is not None:
            cgroup.release()
        self._prepare_next()

    def start_candidate(self, *, code: str, limits: SandboxLimits,
                        extra_env: dict[str, str] | None,
                        channel: socket.socket) -> WarmCandidate:
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
        return WarmCandidate(status, reader, lease, host_dir, token,
                             finish=lambda: self._finish(cgroup, born), cgroup=cgroup,
                             memory_mb=limits.memory_mb)

    def run(self, *, code: str, stage: str, limits: SandboxLimits,
            extra_env: dict[str, str] | None,
            candidate: WarmInterpreter | None = None) -> SandboxOutcome:
        """One evaluation, forked by the zygote; never raises for candidate behaviour. Raises
        ZygoteGone when the zygote is gone before it got the request (safe to retry). With
        `candidate` (a candidate zygote), the judge's candidate is forked there, under a uid
        of its own, and the two are joined by one channel."""
        level, problem_dir = self.level, self.problem_dir
        problem_error = unreadable_problem(problem_dir, self.evaluator_file, level)
        if problem_error:
            return SandboxOutcome(None, False, None, "", f"could not start the sandbox: "
                                  f"{problem_error}", 0, 0, 0.0, level)
        lease, host_dir, token, request = self._prepare(code, stage, limits, extra_env)
        uid = lease.uid if lease else None
        pipes = [os.pipe() for _ in range(3)]
        status, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        cgroup, born = None, False  # born: forked into the cgroup the zygote sits in
        start = time.perf_counter()
        child, started, judge_end = None, None, None
        try:
            if candidate is not None:  # the candidate first: it has more to set up
                judge_end, started = self._start_candidate(candidate, code, limits, extra_env)
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
            child = RemoteChild(pipes[0][0], pipes[1][0], status)
            outcome = sandbox._supervise(child, pipes[2][0], limits, start, level,
                                         wake_fd=status.fileno(), terminate=child.kill)
            conclude(outcome, child, started, cgroup, limits)
            outcome.uid = uid
            outcome.warm = True
            sweep_uids(outcome, token, started, cgroup)
            return outcome
        finally:
            if started is not None:
                started.stop()
            if child is None:  # the request never left: close everything here
                _close_quietly([fd for pair in pipes for fd in pair])
                theirs.close()
                status.close()
            else:
                child.close()
                os.close(pipes[2][0])
            if host_dir is not None:
                shutil.rmtree(host_dir, ignore_errors=True)
            if lease:
                lease.release()
            # Last, so that the zygotes' set-up of the next evaluations waits for our end.
            if started is not None:
                started.clean_up()
                started.finish()
            self._finish(cgroup, born)

    @staticmethod
    def _start_candidate(candidate: WarmInterpreter, code: str, limits: SandboxLimits,
                         extra_env: dict[str, str] | None,
                         ) -> tuple[socket.socket, WarmCandidate]:
        """The channel's judge end, and the candidate's process forked holding the other."""
        judge_end, candidate_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            started = candidate.start_candidate(code=code, limits=limits, extra_env=extra_env,
                                                channel=candidate_end)
        except BaseException:
            judge_end.close()
            raise
        finally:
            candidate_end.close()
        return judge_end, started

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


def _close_quietly(fds: list[int]) -> None:
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass


class WarmPool:
    """Zygotes by (problem, evaluator, level), started on first use and replaced when dead."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._interpreters: dict[tuple[str, ...] | tuple, WarmInterpreter] = {}
        self._unavailable: dict[tuple[str, ...] | tuple, str] = {}
        self._resolved: dict[Path, str] = {}

    def interpreter(self, problem_dir: Path, evaluator_file: str, level: str,
                    hidden: tuple[str, ...] = (), role: str = "judge",
                    python_path: str | None = None) -> WarmInterpreter | None:
        with self._lock:
            # Resolved once per folder: this runs before every evaluation.
            real = self._resolved.get(problem_dir)
            if real is None:
                real = self._resolved[problem_dir] = str(problem_dir.resolve())
            key = (real, evaluator_file, level, hidden, role, python_path)
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
                current = WarmInterpreter(problem_dir, evaluator_file, level, hidden, role,
                                          python_path)
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
        # An import path the caller sets (a Ray node: the problem's bundle first) is fixed when
        # an interpreter starts, so it is part of which zygote serves the evaluation.
        python_path = (extra_env or {}).get("PYTHONPATH")
        # GPU stages always start cold: CUDA does not survive a fork, and their view binds the
        # GPU devices and /sys, which the zygote's view does not have.
        for _ in range(0 if gpu else 2):
            interp = self.interpreter(problem_dir, evaluator_file, level, hidden,
                                      python_path=python_path)
            candidate = (self.interpreter(problem_dir, evaluator_file, level, hidden,
                                          role="candidate", python_path=python_path)
                         if two else None)
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

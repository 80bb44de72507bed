"""Run one evaluation in a sandbox and collect what came out.

`run_sandboxed` starts `python -m evaluators.harness PROBLEM_DIR PROGRAM STAGE` in its own
session with a scrubbed environment and a fresh work dir, reads stdout/stderr incrementally with a
size cap, reads the harness's JSON result from a separate pipe, enforces the wall-clock limit
(SIGTERM, then SIGKILL to the group) and afterwards kills every process the evaluation left
behind: by PID namespace (bubblewrap/unshare), by its throw-away uid (as root), by a marker in
the environment and by session id. On the judge/candidate API the candidate's sandbox
(`evaluators.candidate_sandbox`) is started beside the judge's.
The pieces both share (limits, outcome, environment, uid rule, leftovers) live in
`evaluators.sandbox_common`, and are named here too for the modules that import them from here.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evaluators import isolation, proctree
from evaluators.candidate_sandbox import ColdCandidate, merge_output
from evaluators.hidden import FDS_VAR as HIDDEN_FDS_VAR
from evaluators.hidden import open_for_child
from evaluators.interface import uses_judge
from evaluators.oom import kills_since, oom_kills
from evaluators.sandbox_common import (
    ENV_ALLOWLIST,
    MARKER_VAR,
    Capture,
    SandboxLimits,
    SandboxOutcome,
    drops_uid,
    environment,
    kill_leftovers,
    unreadable_problem,
)
from evaluators.sandbox_dirs import work_dir_prefix
from evaluators.tree_limits import TreeCgroup, explain
from evaluators.uid_leases import UidLease
from evaluators.view import View, sandbox_view

__all__ = ["ENV_ALLOWLIST", "MARKER_VAR", "SandboxLimits", "SandboxOutcome", "kill_leftovers",
           "run_sandboxed"]

# Its name before the uid pool moved to uid_leases: the hostile tests' lease scripts use it so
# that they run unchanged against older trees too.
_UidLease = UidLease
_KILL_GRACE_S = 0.5


def _gpu_devices() -> list[str]:
    return sorted(str(p) for p in Path("/dev").glob("nvidia*"))


def _not_started(level: str, why: str) -> SandboxOutcome:
    return SandboxOutcome(None, False, None, "", f"could not start the sandbox: {why}", 0, 0,
                          0.0, level)


@dataclass
class _Spawned:
    """A cold evaluation's judge process (and its candidate's, on the judge/candidate API)."""

    proc: subprocess.Popen[bytes]
    read_fd: int
    candidate: ColdCandidate | None


def run_sandboxed(*, problem_dir: Path, evaluator_file: str, code: str, stage: str,
                  limits: SandboxLimits, level: str, extra_env: dict[str, str] | None = None,
                  gpu: bool = False, hidden: tuple[str, ...] | list[str] = ()) -> SandboxOutcome:
    """Evaluate `code` for one stage of the problem; never raises for candidate behaviour.
    `hidden`: the problem's hidden files (relative paths), handed in as open descriptors."""
    problem_dir = problem_dir.resolve()
    problem_error = unreadable_problem(problem_dir, evaluator_file, level)
    if problem_error:
        return _not_started(level, problem_error)
    with contextlib.ExitStack() as cleanup:
        # named by owner pid: see sandbox_dirs
        work_dir = Path(tempfile.mkdtemp(prefix=work_dir_prefix()))
        cleanup.callback(shutil.rmtree, work_dir, ignore_errors=True)
        program = work_dir / "program.py"
        program.write_text(code)
        program.chmod(0o644)
        view = sandbox_view(problem_dir, hidden, gpu=gpu)
        lease = UidLease() if drops_uid(level, problem_dir, view, work_dir) else None
        if lease:
            cleanup.callback(lease.release)
        uid = lease.uid if lease else None
        if uid is not None and level != "bwrap":
            os.chown(work_dir, uid, uid)
        work_dir.chmod(0o700 if uid is None or level != "bwrap" else 0o755)
        token = secrets.token_hex(12)
        cgroup = TreeCgroup.create(limits.memory_mb, limits.max_processes)
        # Released once: after the evaluation, or here when it ended early.
        unreleased = [cgroup] if cgroup is not None else []
        cleanup.callback(lambda: [c.release() for c in unreleased])
        env = environment(token, work_dir, limits, -1, uid, evaluator_file, extra_env)
        start = time.perf_counter()
        try:
            spawned = _spawn(cleanup, env, cgroup, problem_dir=problem_dir,
                             evaluator_file=evaluator_file, code=code, stage=stage,
                             limits=limits, level=level, view=view, program=program,
                             extra_env=extra_env, gpu=gpu, hidden=tuple(hidden))
        except (OSError, RuntimeError) as exc:
            return _not_started(level, str(exc))
        return _supervise_cold(cleanup, spawned, limits, start, level, token, uid, unreleased)


def _supervise_cold(cleanup: contextlib.ExitStack, spawned: _Spawned, limits: SandboxLimits,
                    start: float, level: str, token: str, uid: int | None,
                    unreleased: list[TreeCgroup]) -> SandboxOutcome:
    """Until the judge's process ends; then kill what the evaluation left and add the
    candidate's output."""
    exit_fd = _pidfd(spawned.proc.pid)
    if exit_fd is not None:
        cleanup.callback(os.close, exit_fd)
    outcome = _supervise(spawned.proc, spawned.read_fd, limits, start, level,
                         wake_fd=exit_fd)
    if unreleased:
        cgroup = unreleased.pop()
        explain(outcome.result, cgroup, limits.memory_mb)
        outcome.leftovers_killed += cgroup.release()
    outcome.leftovers_killed += kill_leftovers(token, spawned.proc.pid, uid)
    outcome.uid = uid
    if spawned.candidate is not None:
        spawned.candidate.stop(outcome.result)
        merge_output(outcome, spawned.candidate.reader)
    return outcome


def _spawn(cleanup: contextlib.ExitStack, env: dict[str, str], cgroup: TreeCgroup | None, *,
           problem_dir: Path, evaluator_file: str, code: str, stage: str,
           limits: SandboxLimits, level: str, view: View, program: Path,
           extra_env: dict[str, str] | None, gpu: bool,
           hidden: tuple[str, ...]) -> _Spawned:
    """Start the judge's sandboxed harness (and, on the judge/candidate API, the candidate's
    sandbox beside it, joined by one channel); what they hold is closed by `cleanup`."""
    work_dir = program.parent
    read_fd, write_fd = os.pipe()
    cleanup.callback(os.close, read_fd)
    env["EVOLVE_RESULT_FD"] = str(write_fd)
    inherited = [write_fd]
    hidden_fds = open_for_child(problem_dir, hidden)
    if hidden_fds:
        env[HIDDEN_FDS_VAR] = json.dumps(hidden_fds)
    if cgroup is not None:
        env.update(cgroup.environment())
        inherited += cgroup.fds
    prefix, prefix_env = isolation.command_prefix(
        level, view=view, work_dir=work_dir, program=program,
        work_dir_mb=max(64, 2 * limits.max_file_mb), devices=_gpu_devices() if gpu else ())
    env.update(prefix_env)
    candidate, judge_end = None, None
    try:
        if uses_judge(problem_dir, evaluator_file):
            # The candidate in a sandbox of its own, under its own uid.
            judge_end, candidate_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                candidate = ColdCandidate(problem_dir=problem_dir, code=code, limits=limits,
                                          level=level, view=view, evaluator_file=evaluator_file,
                                          extra_env=extra_env, channel=candidate_end)
            finally:
                candidate_end.close()
            cleanup.callback(candidate.stop)
            env["EVOLVE_CANDIDATE_FD"] = str(judge_end.fileno())
            inherited.append(judge_end.fileno())
        proc = subprocess.Popen(
            [*prefix, sys.executable, "-s", "-m", "evaluators.harness", str(problem_dir),
             str(program), stage],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            pass_fds=[*inherited, *hidden_fds.values()], env=env, cwd=work_dir,
            start_new_session=True)
    finally:
        # The child's own now (or nobody's, when it did not start).
        os.close(write_fd)
        if judge_end is not None:
            judge_end.close()
        for fd in hidden_fds.values():
            os.close(fd)
        if cgroup is not None:
            cgroup.close_fds()
    cleanup.callback(_reap, proc)
    return _Spawned(proc, read_fd, candidate)


def _reap(proc: subprocess.Popen[bytes]) -> None:
    for stream in (proc.stdout, proc.stderr):
        if stream:
            stream.close()
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def _pidfd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):  # Linux before 5.3: the 0.1 s polling below still works
        return None


def _supervise(proc: Any, result_fd: int, limits: SandboxLimits, start: float, level: str, *,
               wake_fd: int | None = None, terminate: Any = None) -> SandboxOutcome:
    """Pump the child's output until it exits or the wall-clock limit passes. `proc` is a Popen
    or anything with its stdout/stderr/poll()/returncode (the warm path's remote child);
    `wake_fd` becomes readable when the child ends (a pidfd, or the warm path's status socket),
    so the end is seen at once instead of at the next 0.1 s poll; `terminate` stops it on
    timeout (default: SIGTERM, then SIGKILL to its process group)."""
    cap = limits.max_output_kb * 1024
    out, err, result = Capture(cap), Capture(cap), Capture(4 << 20)
    streams = {proc.stdout.fileno(): out, proc.stderr.fileno(): err, result_fd: result}
    sel = selectors.DefaultSelector()
    for fd in streams:
        os.set_blocking(fd, False)
        sel.register(fd, selectors.EVENT_READ)
    if wake_fd is not None:
        sel.register(wake_fd, selectors.EVENT_READ)
    deadline, timed_out = start + limits.timeout_s, False
    oom_before = oom_kills()

    def pump(wait: float) -> None:
        for key, _ in sel.select(wait):
            if key.fd not in streams:  # the wake fd: proc.poll() reads it
                continue
            try:
                chunk = os.read(key.fd, 1 << 16)
            except BlockingIOError:
                continue
            if chunk:
                streams[key.fd].feed(chunk)
            else:
                sel.unregister(key.fd)

    while proc.poll() is None:
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            timed_out = True
            break
        pump(min(remaining, 0.1))
    wall = time.perf_counter() - start
    if wake_fd is not None:
        sel.unregister(wake_fd)
    if timed_out:
        (terminate or _terminate)(proc)
    # Drain what is already written; escaped processes may hold the pipes, so do not wait for EOF.
    drain_until = time.perf_counter() + 0.3
    while sel.get_map() and time.perf_counter() < drain_until:
        before = out.total + err.total + result.total
        pump(0.02)
        if out.total + err.total + result.total == before and proc.poll() is not None:
            break
    sel.close()
    parsed = None
    if result.head and not timed_out:
        try:
            parsed = json.loads(bytes(result.head))
        except ValueError:
            parsed = None
    return SandboxOutcome(parsed, timed_out, proc.returncode, out.text(), err.text(), out.total,
                          err.total, wall, level, result_bytes=result.total,
                          oom_kills=kills_since(oom_before))


def _terminate(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the group (the harness then kills its whole tree), give it a moment, then stop and
    kill every descendant and SIGKILL the group."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=_KILL_GRACE_S)
        return
    except subprocess.TimeoutExpired:
        pass
    proctree.kill_descendants(proc.pid)
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=10)

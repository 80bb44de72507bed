"""Run one evaluation in a sandbox and collect what came out.

`run_sandboxed` starts `python -m evaluators.harness PROBLEM_DIR PROGRAM STAGE` in its own
session with a scrubbed environment and a fresh work dir, reads stdout/stderr incrementally with a
size cap, reads the harness's JSON result from a separate pipe, enforces the wall-clock limit
(SIGTERM, then SIGKILL to the group) and afterwards kills every process the evaluation left
behind: by PID namespace (bubblewrap/unshare), by its throw-away uid (as root), by a marker in
the environment and by session id.
"""

from __future__ import annotations

import functools
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evaluators import isolation, proctree, syscall_filter
from evaluators.hidden import FDS_VAR as HIDDEN_FDS_VAR
from evaluators.hidden import open_for_child
from evaluators.interface import uses_judge
from evaluators.oom import kills_since, oom_kills
from evaluators.sandbox_dirs import work_dir_prefix
from evaluators.tree_limits import TreeCgroup, explain
from evaluators.uid_leases import UidLease
from evaluators.view import View, sandbox_view

# Environment variables a candidate may see; everything else (API keys, tokens) is dropped.
ENV_ALLOWLIST = ("PATH", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "TZ")
_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                "NUMEXPR_NUM_THREADS")
MARKER_VAR = "EVOLVE_SANDBOX_TOKEN"
_KILL_GRACE_S = 0.5


@dataclass(frozen=True)
class SandboxLimits:
    timeout_s: float
    memory_mb: int | None = 2048
    cpu_seconds: int | None = 120
    max_processes: int = 64
    max_file_mb: int = 64
    max_open_files: int = 256
    max_output_kb: int = 256

    def harness_limits(self) -> dict[str, Any]:
        return {"memory_mb": self.memory_mb, "cpu_seconds": self.cpu_seconds,
                "max_processes": self.max_processes, "max_file_mb": self.max_file_mb,
                "max_open_files": self.max_open_files}


@dataclass
class SandboxOutcome:
    result: dict[str, Any] | None       # the harness's JSON result, None if it never came
    timed_out: bool
    returncode: int | None
    stdout: str
    stderr: str
    stdout_bytes: int
    stderr_bytes: int
    wall_s: float
    isolation: str
    leftovers_killed: int = 0
    uid: int | None = None
    notes: list[str] = field(default_factory=list)
    result_bytes: int = 0               # what arrived on the result channel (0: nothing)
    oom_kills: int | None = None        # out-of-memory kills on this machine meanwhile


class _Capture:
    """Keeps the first `limit` bytes of a stream and counts the rest."""

    def __init__(self, limit: int):
        self.limit = limit
        self.head = bytearray()
        self.total = 0

    def feed(self, chunk: bytes) -> None:
        self.total += len(chunk)
        room = self.limit - len(self.head)
        if room > 0:
            self.head += chunk[:room]

    def text(self) -> str:
        text = self.head.decode("utf-8", errors="replace")
        if self.total > len(self.head):
            text += f"\n[... {self.total - len(self.head)} more bytes not kept]"
        return text


# Reserved machine-wide (not per $TMPDIR): see evaluators.uid_leases.
_UidLease = UidLease


def _proc_matches(pid: int, token: bytes, session: int, uid: int | None) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
        fields = stat[stat.rindex(b")") + 2:].split()
        if fields[0] == b"Z":
            return False
        if int(fields[3]) == session:
            return True
        if uid is not None and os.stat(f"/proc/{pid}").st_uid == uid:
            return True
        with open(f"/proc/{pid}/environ", "rb") as f:
            return token in f.read()
    except (OSError, ValueError, IndexError):
        return False


def kill_leftovers(token: str, session: int, uid: int | None) -> int:
    """SIGKILL every process of this evaluation still alive; returns how many were found."""
    marker = f"{MARKER_VAR}={token}".encode()
    me = os.getpid()
    killed: set[int] = set()
    for _ in range(100):
        victims = [int(e.name) for e in os.scandir("/proc") if e.name.isdigit()
                   and int(e.name) != me and _proc_matches(int(e.name), marker, session, uid)]
        if not victims:
            break
        if uid is not None:
            # One kill(-1) as that uid reaches every process of it at once: beats fork bombs.
            subprocess.run(["kill", "-s", "KILL", "--", "-1"], user=uid, group=uid,
                           extra_groups=[], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           check=False)
        for pid in victims:
            try:
                os.kill(pid, signal.SIGKILL)
                killed.add(pid)
            except OSError:
                pass
        time.sleep(0.02)
    return len(killed)


@functools.cache
def _code_root() -> str:
    """The folder holding the evaluators package this process imported: a worktree evaluates
    its own code."""
    import evaluators

    return str(Path(evaluators.__file__).resolve().parent.parent)


def _environment(token: str, work_dir: Path, limits: SandboxLimits, result_fd: int,
                 uid: int | None, evaluator_file: str,
                 extra_env: dict[str, str] | None) -> dict[str, str]:
    # The allowed names looked up (not every variable decoded): this runs per evaluation.
    env = {k: os.environ[k] for k in ENV_ALLOWLIST if k in os.environ}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    env.update({t: "1" for t in _THREAD_VARS})
    env.update({
        "HOME": str(work_dir), "TMPDIR": str(work_dir),
        "PYTHONPATH": _code_root(),
        "PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1", "PYTHONNOUSERSITE": "1",
        "MPLBACKEND": "Agg",
        MARKER_VAR: token,
        "EVOLVE_RESULT_FD": str(result_fd),
        "EVOLVE_SANDBOX_LIMITS": json.dumps(limits.harness_limits()),
        "EVOLVE_EVALUATOR_FILE": evaluator_file,
        # A judge keeps its calls to the candidate within the stage (judge_proxy): when the
        # stage's wall-clock limit runs out, on the system-wide monotonic clock.
        "EVOLVE_STAGE_DEADLINE": repr(time.monotonic() + float(limits.timeout_s)),
    })
    if uid is not None:
        env["EVOLVE_SANDBOX_UID"] = str(uid)
    env.update(extra_env or {})
    # After extra_env: a problem's variables cannot switch the filter off.
    env.update(syscall_filter.environment())
    return env


def _gpu_devices() -> list[str]:
    return sorted(str(p) for p in Path("/dev").glob("nvidia*"))


def _unreadable_problem(problem_dir: Path, evaluator_file: str, level: str) -> str:
    """Why the sandbox's unprivileged uid could not read the problem, or ''."""
    if not isolation.uid_drop_possible(level) or level != "bwrap":
        return ""
    for path, bits in ((problem_dir, 0o005), (problem_dir / evaluator_file, 0o004)):
        try:
            if path.stat().st_mode & bits != bits:
                return (f"{path} is not readable by the sandbox's unprivileged user; "
                        f"run: chmod -R o+rX {problem_dir}")
        except OSError as exc:
            return f"cannot read {path}: {exc}"
    return ""


def _drops_uid(level: str, problem_dir: Path, view: View, work_dir: Path) -> bool:
    """Whether the candidate runs under a throw-away uid: as root, where that uid can read the
    problem (bubblewrap and the unshare level's mount view make the interpreter readable)."""
    if not isolation.uid_drop_possible(level):
        return False
    if level == "bwrap":
        return True
    if isolation.world_accessible(problem_dir):
        return True
    covered = isolation.mount_plan(view, work_dir)["cover"] if level == "unshare" else []
    return any(Path(c) in problem_dir.parents for c in covered)


def run_sandboxed(*, problem_dir: Path, evaluator_file: str, code: str, stage: str,
                  limits: SandboxLimits, level: str, extra_env: dict[str, str] | None = None,
                  gpu: bool = False, hidden: tuple[str, ...] | list[str] = ()) -> SandboxOutcome:
    """Evaluate `code` for one stage of the problem; never raises for candidate behaviour.
    `hidden`: the problem's hidden files (relative paths), handed in as open descriptors."""
    problem_dir = problem_dir.resolve()
    work_dir = Path(tempfile.mkdtemp(prefix=work_dir_prefix()))  # named by owner pid: see sandbox_dirs
    program = work_dir / "program.py"
    program.write_text(code)
    program.chmod(0o644)
    problem_error = _unreadable_problem(problem_dir, evaluator_file, level)
    if problem_error:
        shutil.rmtree(work_dir, ignore_errors=True)
        return SandboxOutcome(None, False, None, "", f"could not start the sandbox: "
                              f"{problem_error}", 0, 0, 0.0, level)
    view = sandbox_view(problem_dir, hidden, gpu=gpu)
    lease = _UidLease() if _drops_uid(level, problem_dir, view, work_dir) else None
    uid = lease.uid if lease else None
    if uid is not None and level != "bwrap":
        os.chown(work_dir, uid, uid)
    work_dir.chmod(0o700 if uid is None or level != "bwrap" else 0o755)
    token = secrets.token_hex(12)
    read_fd, write_fd = os.pipe()
    hidden_fds = open_for_child(problem_dir, hidden)
    cgroup = TreeCgroup.create(limits.memory_mb, limits.max_processes)
    env = _environment(token, work_dir, limits, write_fd, uid, evaluator_file, extra_env)
    if cgroup is not None:
        env.update(cgroup.environment())
    prefix, prefix_env = isolation.command_prefix(
        level, view=view, work_dir=work_dir, program=program,
        work_dir_mb=max(64, 2 * limits.max_file_mb), devices=_gpu_devices() if gpu else ())
    env.update(prefix_env)
    if hidden_fds:
        env[HIDDEN_FDS_VAR] = json.dumps(hidden_fds)
    cmd = [*prefix, sys.executable, "-s", "-m", "evaluators.harness",
           str(problem_dir), str(program), stage]
    start = time.perf_counter()
    # The judge/candidate API: the candidate in a sandbox of its own, under its own uid.
    candidate, judge_end = None, None
    try:
        if uses_judge(problem_dir, evaluator_file):
            from evaluators.candidate_sandbox import ColdCandidate

            judge_end, candidate_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                candidate = ColdCandidate(problem_dir=problem_dir, code=code, limits=limits,
                                          level=level, view=view, evaluator_file=evaluator_file,
                                          extra_env=extra_env, channel=candidate_end)
            finally:
                candidate_end.close()
            env["EVOLVE_CANDIDATE_FD"] = str(judge_end.fileno())
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            pass_fds=[write_fd, *hidden_fds.values(), *(cgroup.fds if cgroup else ()),
                      *([judge_end.fileno()] if judge_end else [])],
            env=env, cwd=work_dir, start_new_session=True)
    except (OSError, RuntimeError) as exc:
        os.close(read_fd)
        os.close(write_fd)
        for fd in hidden_fds.values():
            os.close(fd)
        if judge_end is not None:
            judge_end.close()
        if candidate is not None:
            candidate.stop()
        shutil.rmtree(work_dir, ignore_errors=True)
        if cgroup is not None:
            cgroup.release()
        if lease:
            lease.release()
        return SandboxOutcome(None, False, None, "", f"could not start the sandbox: {exc}", 0, 0,
                              0.0, level)
    os.close(write_fd)
    if judge_end is not None:
        judge_end.close()  # the judge's now
    for fd in hidden_fds.values():
        os.close(fd)
    if cgroup is not None:
        cgroup.close_fds()
    exit_fd = _pidfd(proc.pid)
    try:
        outcome = _supervise(proc, read_fd, limits, start, level, wake_fd=exit_fd)
        explain(outcome.result, cgroup, limits.memory_mb)
        if cgroup is not None:
            outcome.leftovers_killed += cgroup.release()
            cgroup = None
        outcome.leftovers_killed += kill_leftovers(token, proc.pid, uid)
        outcome.uid = uid
        if candidate is not None:
            from evaluators.candidate_sandbox import merge_output

            candidate.stop(outcome.result)
            merge_output(outcome, candidate.reader)
        return outcome
    finally:
        if candidate is not None:
            candidate.stop()
        for stream in (proc.stdout, proc.stderr):
            if stream:
                stream.close()
        os.close(read_fd)
        if exit_fd is not None:
            os.close(exit_fd)
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        shutil.rmtree(work_dir, ignore_errors=True)
        if cgroup is not None:
            cgroup.release()
        if lease:
            lease.release()


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
    out, err, result = _Capture(cap), _Capture(cap), _Capture(4 << 20)
    assert proc.stdout is not None and proc.stderr is not None
    streams = {proc.stdout.fileno(): out, proc.stderr.fileno(): err, result_fd: result}
    sel = selectors.DefaultSelector()
    for fd in streams:
        os.set_blocking(fd, False)
        sel.register(fd, selectors.EVENT_READ)
    if wake_fd is not None:
        sel.register(wake_fd, selectors.EVENT_READ)
    deadline = start + limits.timeout_s
    timed_out = False
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

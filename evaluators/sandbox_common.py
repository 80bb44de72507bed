"""What every sandboxed process of an evaluation shares, the judge's and the candidate's, on
the cold and the warm path: the limits and the outcome, the scrubbed environment, the rule for
the throw-away uid (and its machine-wide lease) and the killing of leftover processes.

Kept apart from `evaluators.sandbox` (which starts the judge's process) so that the candidate's
sandbox (`evaluators.candidate_sandbox`), which `sandbox` starts beside it, builds on the same
pieces without importing `sandbox` back.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evaluators import isolation, syscall_filter
from evaluators.view import View

# Environment variables a candidate may see; everything else (API keys, tokens) is dropped.
ENV_ALLOWLIST = ("PATH", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "TZ")
_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                "NUMEXPR_NUM_THREADS")
MARKER_VAR = "EVOLVE_SANDBOX_TOKEN"


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
    warm: bool = False                  # forked from a warm interpreter (evaluators.warm)


class Capture:
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
    import evaluators  # lazy: the package's own __init__, resolved once

    return str(Path(evaluators.__file__).resolve().parent.parent)


def environment(token: str, work_dir: Path, limits: SandboxLimits, result_fd: int,
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


def unreadable_problem(problem_dir: Path, evaluator_file: str, level: str) -> str:
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


def drops_uid(level: str, problem_dir: Path, view: View, work_dir: Path) -> bool:
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

"""Turning what happened inside the sandbox into a failure kind with a short, actionable reason,
and checking the evaluator's returned dict ourselves (types, finiteness, size)."""

from __future__ import annotations

import errno
import json
import math
import os
import signal
import socket
import traceback
from pathlib import Path
from typing import Any

from evaluators.oom import oom_note

MAX_FEEDBACK_CHARS = 8_000
MAX_METRICS_BYTES = 64_000
MAX_REASON_CHARS = 300

_DENIED_ERRNOS = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENETUNREACH, errno.ECONNREFUSED,
                  errno.EHOSTUNREACH, errno.EADDRNOTAVAIL, errno.ENOSPC, errno.EFBIG,
                  errno.EDQUOT, errno.EAGAIN, errno.EMFILE, errno.ENFILE}


def _short(text: str, limit: int = MAX_REASON_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _where(exc: BaseException, program: Path) -> str:
    """' (at program.py line N in f)' for the deepest frame in the candidate, if any."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if Path(f.filename).name == program.name or f.filename == str(program)]
    if not frames:
        return ""
    f = frames[-1]
    return f" (at {program.name} line {f.lineno} in {f.name})"


def _in_candidate(exc: BaseException, program: Path) -> bool:
    return bool(_where(exc, program))


class CandidateLoadError(Exception):
    """The candidate could not be imported; `kind` is 'syntax', 'import', 'crash' or
    'sandbox-denied' (it uses an escape hatch the source check refuses). Defined here, next to
    the mapping, so that classifying never imports anything while a candidate runs (the
    harness hides its own modules then); evaluators import it from `harness_api`."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


class CandidateError(CandidateLoadError):
    """The candidate process failed a request of the judge (`evaluators.judge_proxy`): `kind`
    is its failure kind (crash, timeout, memory, import, invalid-output, ...), the message a
    reason naming the call. Kept as it is wherever it is raised."""


# Kinds that say what the candidate ran into whatever the evaluator makes of it: an evaluator
# that catches the candidate's MemoryError or PermissionError and returns "invalid" still gets
# this kind for the stage (a plain exception it catches stays the evaluator's verdict).
CAUGHT_KINDS_KEPT = frozenset({"memory", "sandbox-denied", "import", "syntax", "timeout"})


def classify_exception(exc: BaseException, program: Path) -> tuple[str, str]:
    """(failure kind, reason) for an exception of the candidate's: the one mapping, used when
    it escapes evaluate() and when the evaluator catches it (`harness_api` records those)."""
    where = _where(exc, program)
    message = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, CandidateError):
        return exc.kind, _short(str(exc))
    if isinstance(exc, CandidateLoadError):
        if exc.kind in ("sandbox-denied", "memory", "timeout"):
            return exc.kind, _short(str(exc))
        kind = exc.kind if exc.kind in ("syntax", "import") else "crash"
        return kind, _short(f"{'syntax error' if kind == 'syntax' else 'import failed'}: {exc}")
    if isinstance(exc, SystemExit):
        return "crash", (f"the program called sys.exit({exc.code!r}) during evaluation{where}; "
                         f"return a value instead of exiting")
    if isinstance(exc, KeyboardInterrupt):
        return "crash", f"the evaluation was interrupted{where}"
    if isinstance(exc, MemoryError):
        return "memory", _short(f"MemoryError: the program exceeded the memory limit{where}; "
                                f"use less memory")
    if isinstance(exc, RecursionError):
        return "crash", _short(f"RecursionError: maximum recursion depth exceeded{where}; "
                               f"use iteration or a smaller depth")
    if isinstance(exc, SyntaxError):
        return "syntax", _short(f"syntax error: line {exc.lineno}: {exc.msg}")
    if isinstance(exc, ImportError):
        return "import", _short(f"{message}{where}; only the standard library and the "
                                f"problem's listed packages are available")
    if isinstance(exc, socket.gaierror) or (isinstance(exc, OSError)
                                            and exc.errno in _DENIED_ERRNOS):
        return "sandbox-denied", _short(f"{message}{where}; the sandbox allows no network, "
                                        f"no writes outside the work dir and limited "
                                        f"processes, files and disk")
    if isinstance(exc, RuntimeError) and "new thread" in str(exc):
        return "sandbox-denied", _short(f"{message}{where}; the thread/process limit was reached")
    if _in_candidate(exc, program):
        return "crash", _short(f"{message}{where}")
    return "evaluator-error", _short(f"{message} (in the evaluator; last frame "
                                     f"{_last_frame(exc)})")


def _last_frame(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return "unknown"
    f = frames[-1]
    return f"{Path(f.filename).name}:{f.lineno} in {f.name}"


def classify_worker_exit(status: int, maxrss_mb: float, memory_mb: float | None,
                         cpu_s: float = 0.0, cpu_limit: float | None = None,
                         oom_kills: int | None = None) -> tuple[str, str]:
    """(failure kind, reason) when the worker ended without reporting a result. `oom_kills`:
    processes the kernel's out-of-memory killer ended on this machine meanwhile."""
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
        if sig == signal.SIGXCPU or (cpu_limit and cpu_s >= cpu_limit):
            return "timeout", f"CPU-time limit of {cpu_limit or '?'} s reached; make it faster"
        if sig == signal.SIGKILL and memory_mb and maxrss_mb >= 0.8 * memory_mb:
            return "memory", (f"killed at {maxrss_mb:.0f} MB resident (limit {memory_mb} MB); "
                              f"use less memory")
        if sig == signal.SIGSYS:
            return "sandbox-denied", ("killed by SIGSYS: the program made a system call the "
                                      "sandbox's seccomp filter refuses (a foreign-architecture "
                                      "call, e.g. int 0x80)")
        if sig == signal.SIGSEGV:
            return "crash", ("segmentation fault (SIGSEGV) in native code, e.g. ctypes or a C "
                             "extension; avoid raw memory access")
        if sig == signal.SIGKILL:
            # No limit of ours sends it below these figures: the program itself, or something
            # outside the sandbox, most often the out-of-memory killer of a loaded machine.
            return "crash", (f"the evaluation process was killed by SIGKILL at "
                             f"{maxrss_mb:.0f} MB resident and {cpu_s:.1f} s of CPU, below the "
                             f"sandbox's limits (memory {memory_mb or 'unlimited'} MB, CPU "
                             f"{cpu_limit or 'unlimited'} s): by the program itself or from "
                             f"outside the sandbox; {oom_note(oom_kills)}")
        return "crash", f"the evaluation process was killed by {name}"
    code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else status
    return "crash", (f"the process ended (exit code {code}) before evaluate() returned; "
                     f"do not call os._exit/exit or kill processes")


def _finite_json(value: Any) -> Any:
    """A copy with non-finite floats replaced by their text (the archive stores strict JSON)."""
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, dict):
        return {str(k): _finite_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite_json(v) for v in value]
    return value


def validate_returned(message: dict[str, Any]) -> dict[str, Any]:
    """Fields of a stage result from the worker's message, with every type checked here."""
    status = message.get("status")
    tampered = message.get("tampered") or []
    denied = message.get("denied") or []
    if denied:
        # Recorded by the harness even when the candidate or the evaluator caught the error.
        return {"failure": "sandbox-denied", "reason": _short(str(denied[0]))}
    if tampered:
        return {"failure": "invalid-output",
                "reason": _short("the program modified the evaluator or the clocks "
                                 f"({', '.join(map(str, tampered[:5]))}); programs that patch the "
                                 "harness are rejected")}
    if status == "evaluator-failed":
        return {"failure": "evaluator-error", "reason": _short(f"loading the evaluator failed: "
                                                               f"{message.get('reason', '')}")}
    if status == "raised":
        return {"failure": str(message.get("kind", "crash")),
                "reason": _short(str(message.get("reason", "")))}
    if status == "unserializable":
        return {"failure": "invalid-output", "reason": _short(
            f"evaluate() returned something that is not JSON data: {message.get('reason', '')}")}
    if status != "returned":
        return {"failure": "evaluator-error", "reason": f"unknown harness message '{status}'"}
    value = message.get("value")
    if not isinstance(value, dict):
        return {"failure": "invalid-output",
                "reason": f"evaluate() must return a dict, got {type(value).__name__}"}
    out: dict[str, Any] = {"eval_s": message.get("eval_s", 0.0)}
    score, valid = value.get("score"), value.get("valid")
    metrics, feedback = value.get("metrics", {}), value.get("feedback", "")
    problems = []
    if isinstance(score, bool) or not isinstance(score, int | float):
        problems.append(f"score must be a number, got {type(score).__name__}")
    elif not math.isfinite(score):
        problems.append(f"score must be finite, got {score!r}")
    if not isinstance(valid, bool):
        problems.append(f"valid must be true/false, got {type(valid).__name__}")
    if not isinstance(metrics, dict):
        problems.append(f"metrics must be a dict, got {type(metrics).__name__}")
    elif len(json.dumps(metrics, allow_nan=True)) > MAX_METRICS_BYTES:
        problems.append(f"metrics are larger than {MAX_METRICS_BYTES // 1000} kB")
    if not isinstance(feedback, str):
        problems.append(f"feedback must be text, got {type(feedback).__name__}")
    if problems:
        out.update(failure="invalid-output", reason=_short("; ".join(problems)))
        return out
    out.update(score=float(score), valid=valid, metrics=_finite_json(metrics),
               feedback=feedback[:MAX_FEEDBACK_CHARS])
    caught = [(k, r) for k, r in message.get("candidate_errors") or [] if k in CAUGHT_KINDS_KEPT]
    ended = message.get("candidate_ended")
    if isinstance(ended, list | tuple) and len(ended) == 2 and ended[0] == "sandbox-denied":
        # A refused system call ends the candidate, whatever the program made of the error
        # and whatever the judge concluded from its replies.
        out.update(valid=False, failure="sandbox-denied",
                   reason=_short(str(ended[1])))
    elif not valid and isinstance(ended, list | tuple) and len(ended) == 2:
        # The candidate's process ended, did not answer or broke the channel: that is what
        # happened to it, whatever verdict the judge drew from it.
        out.update(failure=str(ended[0]), reason=_short(str(ended[1])))
    elif not valid and caught:
        kind, reason = caught[0]
        out.update(failure=kind, reason=_short(str(reason)))
    elif not valid:
        first = feedback.strip().splitlines()[0] if feedback.strip() else "no feedback given"
        out.update(failure="invalid-output", reason=_short(f"the evaluator rejected the "
                                                           f"output: {first}"))
    return out

"""What a problem's `evaluate.py` uses: the judge/candidate API, and the older in-process one.

The judge/candidate API (every built-in problem moves to it): the evaluator defines
`judge(candidate, stage) -> dict`. The candidate runs in a separate sandboxed process under
another uid and never shares this process; `candidate` is a proxy
(`evaluators.judge_proxy.Candidate`): `candidate.call("pack_circles", 26)`,
`candidate.new("Policy", record(...))` and method calls on the handle it returns, and
`candidate.batch([...])` for many independent calls in one message, and
`candidate.isolated(n)` for runs that must share nothing (n more candidate processes, forked by
the trusted host; `batch` takes handles of several of them in one message). Values cross as plain data
only (`record(...)`: a map the candidate reads as attributes; `Built("module:factory", ...)`: an
object of the problem's public helper code that the candidate's process makes itself); `candidate.cpu_s` / `last_cpu_s` are the candidate's own CPU time, measured outside its
reach. A failure on the candidate's side raises `CandidateError` (its `kind` is the failure
kind). `evaluate_locally(judge, program_path, stage)` runs a judge against an unsandboxed
candidate process, for scripts and tests.

The in-process API (kept while problems move; no isolation between evaluator and candidate
beyond the guards below): `evaluate(program_path, stage)` loads the candidate into this process
with `load_candidate` and times it with `call_timed`.

The harness imports this module (and the problem's evaluator) *before* the candidate is
imported, so the references captured here are the genuine functions: a candidate that patches
`time.perf_counter`, `time.process_time` or this module's attributes later changes nothing for an
evaluator that bound `clock` at its own import time (`from evaluators.harness_api import clock`).
"""

from __future__ import annotations

import importlib.util
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any, BinaryIO

from evaluators import guard, hidden
from evaluators.channel import Built
from evaluators.judge_proxy import Candidate, Handle, local_candidate, record
from evaluators.plain import plain_array, plain_float, plain_int, plain_list
from evaluators.source_check import check_source
from evaluators.validate import CandidateError, CandidateLoadError, classify_exception

__all__ = ["Built", "Candidate", "CandidateError", "CandidateLoadError", "Handle", "call_timed",
           "candidate_errors", "clock", "configure_source_check", "cpu_clock", "check_tampering",
           "evaluate_locally", "get_function", "hidden_file", "load_candidate", "local_candidate",
           "plain_array", "plain_float", "plain_int", "plain_list", "record",
           "record_candidate_error", "refusals"]


def evaluate_locally(judge: Callable[..., Any], program_path: str | Path, stage: str,
                     **kwargs: Any) -> Any:
    """`judge(candidate, stage, **kwargs)` with the program in a local candidate process (no
    sandbox): what scripts, benchmarks and tests call where they used `evaluate(path, stage)`."""
    with local_candidate(program_path) as candidate:
        return judge(candidate, stage, **kwargs)

# Captured at import, before any candidate code runs.
_PERF_COUNTER = time.perf_counter
_PROCESS_TIME = time.process_time


_MAX_EXCLUDED_CHECK_S = 0.002


def _make_clock() -> Callable[[], float]:
    guard_seconds = 0.0  # in a closure: time spent in tamper checks, left out of readings

    def clock() -> float:
        """Monotonic high-resolution seconds from the genuine perf_counter.

        Every reading first undoes (and records, so the harness rejects the result) any patch
        candidate code made to the evaluator, builtins or clocks: evaluators read the clock
        right after each candidate call, so a patch that would undo itself once the validator
        used it is caught before validation. The time that check takes (at most 2 ms a
        reading) is left out, so intervals measure only the evaluator's and the candidate's
        work.
        """
        nonlocal guard_seconds
        start = _PERF_COUNTER()
        guard.check_active()
        # Capped: a check never takes this long unless candidate code ran inside it (a str
        # subclass key's __eq__), and that work must not be free.
        guard_seconds += min(_PERF_COUNTER() - start, _MAX_EXCLUDED_CHECK_S)
        return _PERF_COUNTER() - guard_seconds

    return clock


clock = _make_clock()


def cpu_clock() -> float:
    """CPU seconds of this process (the genuine process_time)."""
    return _PROCESS_TIME()


def hidden_file(problem_dir: str | Path, relative: str) -> BinaryIO:
    """Open one of the problem's hidden files (declared in problem.toml's `hidden` list) for
    binary reading. Call it while the evaluator module is imported: in the sandbox the path is
    not mounted, the file comes as a descriptor the harness closes before the candidate is
    imported. Outside the sandbox it is opened at `problem_dir / relative`."""
    return hidden.open_hidden(relative, Path(problem_dir))


# Exceptions the candidate raised that the evaluator caught (kind, reason): the harness gives
# the stage the same failure kind as if the exception had escaped (`validate.failure_kind`).
_candidate_errors: list[tuple[str, str]] = []


def record_candidate_error(exc: BaseException, program_path: str | Path | None = None) -> None:
    """Note an exception of the candidate's that the evaluator catches and turns into an invalid
    result, so that its failure kind (memory, sandbox-denied, ...) is the one it would get had it
    escaped. `load_candidate` and `call_timed` do this themselves."""
    program = Path(program_path) if program_path is not None else Path("program.py")
    kind, reason = classify_exception(exc, program)
    if len(_candidate_errors) < 20:
        _candidate_errors.append((kind, reason))


def candidate_errors() -> list[tuple[str, str]]:
    return list(_candidate_errors)


_counter = 0
# Set by the harness worker before the evaluator runs (see `configure_source_check`).
_source_policy: dict[str, Any] = {"enabled": False, "modules": frozenset()}
_refusals: list[str] = []


def configure_source_check(enabled: bool, evaluator_modules: set[str]) -> None:
    """Refuse candidates that use introspection escape hatches (the harness calls this, with
    the problem's `allow_introspection` setting, before the evaluator loads any candidate)."""
    _source_policy.update(enabled=enabled, modules=frozenset(evaluator_modules))


def refusals() -> list[str]:
    """Reasons of candidates refused by the source check in this process (the harness reports
    them as sandbox-denied even when the evaluator caught the error)."""
    return list(_refusals)


def load_candidate(program_path: str | Path) -> ModuleType:
    """Import the candidate file as a fresh module (never cached under a guessable name)."""
    global _counter
    _counter += 1
    path = Path(program_path)
    name = f"_evolve_candidate_{_counter}"
    try:
        # Decoded as the import will decode it (a `# coding: utf-7` line would otherwise
        # show the check one program and run another).
        source = importlib.util.decode_source(path.read_bytes())
        compile(source, str(path), "exec")
    except SyntaxError as exc:
        error = CandidateLoadError("syntax", f"line {exc.lineno}: {exc.msg}")
        record_candidate_error(error)
        raise error from exc
    if _source_policy["enabled"]:
        problem = check_source(source, _source_policy["modules"])
        if problem is not None:
            _refusals.append(problem)
            raise CandidateLoadError("sandbox-denied", problem)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise CandidateLoadError("import", f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except ImportError as exc:
        error = CandidateLoadError("import", f"{type(exc).__name__}: {exc}")
        record_candidate_error(error)
        raise error from exc
    except SyntaxError as exc:
        error = CandidateLoadError("syntax", f"line {exc.lineno}: {exc.msg}")
        record_candidate_error(error)
        raise error from exc
    except Exception as exc:
        # Noted with the kind it gets when it escapes, should the evaluator catch it.
        record_candidate_error(exc, path)
        raise
    finally:
        # Undo anything the candidate's import-time code swapped in the evaluator (its
        # validators, clocks, sys.modules entries) before the evaluator goes on; the harness
        # rejects the result of a program that did this.
        guard.check_active()
    return module


def get_function(module: ModuleType, name: str) -> Callable[..., Any]:
    fn = getattr(module, name, None)
    if not callable(fn):
        raise CandidateLoadError("import", f"the program defines no function '{name}'")
    return fn


def check_tampering() -> list[str]:
    """Undo (and record, so the harness rejects the result) anything candidate code changed in
    the evaluator's modules, builtins or clocks. Call it after the candidate's code ran and
    before validating its output: a patch that undoes itself once used is caught here, not at
    the end. `call_timed` and `load_candidate` already do this."""
    return guard.check_active()


def call_timed(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, float]:
    """Call fn and return (result, seconds spent in the call alone)."""
    start = _PERF_COUNTER()
    try:
        result = fn(*args, **kwargs)
    except Exception as exc:
        record_candidate_error(exc)
        raise
    elapsed = _PERF_COUNTER() - start
    # A patch the candidate made during the call (even one that would undo itself once the
    # validator used it) is restored before the evaluator validates; the harness rejects it.
    guard.check_active()
    return result, elapsed

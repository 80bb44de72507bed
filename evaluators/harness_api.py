"""What a problem's `evaluate.py` uses to load and time a candidate, safely.

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
from typing import Any

from evaluators import guard

# Captured at import, before any candidate code runs.
_PERF_COUNTER = time.perf_counter
_PROCESS_TIME = time.process_time


def clock() -> float:
    """Monotonic high-resolution seconds (the genuine perf_counter)."""
    return _PERF_COUNTER()


def cpu_clock() -> float:
    """CPU seconds of this process (the genuine process_time)."""
    return _PROCESS_TIME()


class CandidateLoadError(Exception):
    """The candidate could not be imported; `kind` is 'syntax' or 'import' or 'crash'."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


_counter = 0


def load_candidate(program_path: str | Path) -> ModuleType:
    """Import the candidate file as a fresh module (never cached under a guessable name)."""
    global _counter
    _counter += 1
    path = Path(program_path)
    name = f"_evolve_candidate_{_counter}"
    try:
        source = path.read_text()
        compile(source, str(path), "exec")
    except SyntaxError as exc:
        raise CandidateLoadError("syntax", f"line {exc.lineno}: {exc.msg}") from exc
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise CandidateLoadError("import", f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except ImportError as exc:
        raise CandidateLoadError("import", f"{type(exc).__name__}: {exc}") from exc
    except SyntaxError as exc:
        raise CandidateLoadError("syntax", f"line {exc.lineno}: {exc.msg}") from exc
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


def call_timed(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, float]:
    """Call fn and return (result, seconds spent in the call alone)."""
    start = _PERF_COUNTER()
    result = fn(*args, **kwargs)
    return result, _PERF_COUNTER() - start

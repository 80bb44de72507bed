"""Detect (and undo) a candidate's tampering with the evaluator inside the sandbox.

The candidate runs in the same process as the problem's evaluator, so it can reach the
evaluator's modules (`sys.modules`, frames, gc). Before the candidate is imported we snapshot
the functions, classes and modules bound in the evaluator's modules, the clocks in `time`, and
the `sys.modules` entries for those modules. After the import and again after `evaluate()`
returns we compare: any swapped binding is restored and reported, and the harness rejects the
result. Data globals (counters, caches) are not compared: evaluators may legitimately change them.
"""

from __future__ import annotations

import sys
import time
import types
from pathlib import Path
from typing import Any

_TIME_NAMES = ("perf_counter", "perf_counter_ns", "process_time", "process_time_ns", "monotonic",
               "monotonic_ns", "time", "time_ns", "thread_time", "sleep")

_GUARDED_KINDS = (types.FunctionType, types.BuiltinFunctionType, types.MethodType, type,
                  types.ModuleType, staticmethod, classmethod)


class Snapshot:
    """Bindings of the guarded modules, taken before the candidate runs."""

    def __init__(self, modules: dict[str, types.ModuleType]):
        self.modules = dict(modules)
        self.bindings: dict[str, dict[str, Any]] = {
            name: {k: v for k, v in vars(mod).items() if isinstance(v, _GUARDED_KINDS)}
            for name, mod in self.modules.items()}
        self.time_bindings = {n: getattr(time, n) for n in _TIME_NAMES if hasattr(time, n)}
        self.tampered: list[str] = []

    def check_and_restore(self) -> list[str]:
        """Names that were changed since the snapshot (restored now); accumulates over calls."""
        found: list[str] = []
        for name, module in self.modules.items():
            if sys.modules.get(name) is not module:
                found.append(f"sys.modules['{name}']")
                sys.modules[name] = module
            current = vars(module)
            for key, value in self.bindings[name].items():
                if current.get(key) is not value:
                    found.append(f"{name}.{key}")
                    current[key] = value
        for key, value in self.time_bindings.items():
            if getattr(time, key) is not value:
                found.append(f"time.{key}")
                setattr(time, key, value)
        for item in found:
            if item not in self.tampered:
                self.tampered.append(item)
        return found


# Modules the harness itself relies on after the candidate ran (to serialise and send the
# result), guarded alongside the problem's own modules.
_ALWAYS_GUARDED = ("builtins", "os", "posix", "json", "json.encoder", "__main__",
                   "evaluators.guard", "evaluators.harness", "evaluators.harness_api")


def evaluator_modules(problem_dir: Path) -> dict[str, types.ModuleType]:
    """Loaded modules that belong to the problem folder or to the harness."""
    root = problem_dir.resolve()
    found = {name: sys.modules[name] for name in _ALWAYS_GUARDED if name in sys.modules}
    for name, mod in list(sys.modules.items()):
        file = getattr(mod, "__file__", None)
        if not file:
            continue
        try:
            path = Path(file).resolve()
        except OSError:
            continue
        if root in path.parents:
            found[name] = mod
    return found


_active: Snapshot | None = None


def activate(snapshot: Snapshot) -> None:
    """Make `snapshot` the one `load_candidate` checks right after importing the candidate."""
    global _active
    _active = snapshot


def check_active() -> list[str]:
    return _active.check_and_restore() if _active is not None else []

"""Detect (and undo) a candidate's tampering with the evaluator inside the sandbox.

The candidate runs in the same process as the problem's evaluator, so it can reach the
evaluator's modules (`sys.modules`, frames, gc). Before the candidate is imported we snapshot
the functions, classes and modules bound in every module the evaluator loaded from its problem
folder or from this repository (`problems.*` shared helpers, `evaluators.*`), in the modules those
bind (numpy, math, ...), in `builtins`, the clocks in `time`, the `sys.modules` entries for all
of them, the code/defaults of their functions and the attributes of their classes. After the
import, after every timed candidate call and after `evaluate()` returns we compare: any swapped
binding is restored and reported, and the harness rejects the result. Data globals (counters,
caches) are not compared: evaluators may legitimately change them.
"""

from __future__ import annotations

import functools
import os
import sys
import time
import types
from pathlib import Path
from typing import Any

_TIME_NAMES = ("perf_counter", "perf_counter_ns", "process_time", "process_time_ns", "monotonic",
               "monotonic_ns", "time", "time_ns", "thread_time", "sleep")

_GUARDED_KINDS = (types.FunctionType, types.BuiltinFunctionType, types.MethodType, type,
                  types.ModuleType, staticmethod, classmethod, property,
                  types.WrapperDescriptorType, types.MethodDescriptorType)


def _function_state(fn: types.FunctionType) -> tuple[Any, ...]:
    kwdefaults = fn.__kwdefaults__
    return (fn.__code__, fn.__defaults__,
            tuple(kwdefaults.items()) if kwdefaults is not None else None)


def _restore_function(fn: types.FunctionType, state: tuple[Any, ...]) -> None:
    fn.__code__, fn.__defaults__ = state[0], state[1]
    fn.__kwdefaults__ = dict(state[2]) if state[2] is not None else None


def _same_function_state(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
    if a[0] is not b[0] or a[1] is not b[1]:
        return False
    if a[2] is None or b[2] is None:
        return a[2] is b[2]
    return len(a[2]) == len(b[2]) and all(
        ka == kb and va is vb for (ka, va), (kb, vb) in zip(a[2], b[2], strict=True))


# Installed code (stdlib, site-packages): its own wrappers of its functions are not tampering.
_INSTALLED = tuple(sorted({str(Path(p).resolve()) + "/" for p in
                           (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix)}))


def _library_wrapper(new: Any, old: Any) -> bool:
    """True when `new` is a library's own wrapper around `old` (torch._dynamo wraps
    `torch.manual_seed` when it is first imported): its code lives in an installed file of the
    same package, which a candidate cannot forge without compile() or code objects (both
    refused)."""
    if getattr(new, "__wrapped__", None) is not old or not isinstance(new, types.FunctionType):
        return False
    # ... and of the same library as the function it wraps.
    package = str(getattr(old, "__module__", None) or "").split(".")[0]
    filename = new.__code__.co_filename
    return bool(package) and filename.startswith(_INSTALLED) and f"/{package}/" in filename


class Snapshot:
    """Bindings of the guarded modules, taken before the candidate runs."""

    def __init__(self, modules: dict[str, types.ModuleType]):
        self.modules = dict(modules)
        self.bindings: dict[str, dict[str, Any]] = {
            name: {k: v for k, v in vars(mod).items() if isinstance(v, _GUARDED_KINDS)}
            for name, mod in self.modules.items()}
        self.time_bindings = {n: getattr(time, n) for n in _TIME_NAMES if hasattr(time, n)}
        # Functions and classes defined in the evaluator's own modules: their code, defaults
        # (spot evaluators bind helpers as defaults) and class attributes (a property like
        # RunResult.missed) are as much the validator as the module bindings.
        own = {name for name, mod in self.modules.items()
               if _is_own(mod) or name in _CLASSES_GUARDED}
        self.functions: dict[str, tuple[types.FunctionType, tuple[Any, ...]]] = {}
        self.classes: dict[str, tuple[type, dict[str, Any]]] = {}
        for name in own:
            for key, value in self.bindings[name].items():
                if getattr(value, "__module__", None) != name:
                    continue
                label = f"{name}.{key}"
                if isinstance(value, types.FunctionType):
                    self.functions[label] = (value, _function_state(value))
                elif isinstance(value, type):
                    self.classes[label] = (value, dict(vars(value)))
                    for attr, member in vars(value).items():
                        if isinstance(member, types.FunctionType):
                            self.functions[f"{label}.{attr}"] = (member, _function_state(member))
        # Taken out of sys.modules while candidate code can run (see `hide`).
        self.hidden = {name for name, mod in self.modules.items() if _is_own(mod)}
        if "__main__" in self.modules:
            self.hidden.add("__main__")
        self.hiding = False
        self.tampered: list[str] = []

    def hide(self) -> None:
        """Take the evaluator's, the `problems` and the harness's modules out of `sys.modules`
        while the candidate runs: code that reaches `sys.modules` by a route no check sees (a
        format string, a dotted-name resolver) finds neither the evaluator's data nor the
        guard. The evaluator keeps its own references; importing such a module by name gets a
        fresh copy (the evaluator's files are protected where they hold hidden data)."""
        self.hiding = True
        for name in self.hidden:
            sys.modules.pop(name, None)

    def unhide(self) -> None:
        self.hiding = False
        for name in self.hidden:
            sys.modules[name] = self.modules[name]

    def check_and_restore(self) -> list[str]:
        """Names that were changed since the snapshot (restored now); accumulates over calls."""
        found: list[str] = []
        for name, module in self.modules.items():
            if self.hiding and name in self.hidden:
                sys.modules.pop(name, None)  # a fresh copy imported meanwhile: hide it again
            elif sys.modules.get(name) is not module:
                found.append(f"sys.modules['{name}']")
                sys.modules[name] = module
            current = vars(module)
            bound = self.bindings[name]
            for key, value in bound.items():
                now = current.get(key)
                if now is not value:
                    if _library_wrapper(now, value):
                        bound[key] = now
                        continue
                    found.append(f"{name}.{key}")
                    current[key] = value
        for label, (cls, attrs) in self.classes.items():
            current = vars(cls)
            changed = [k for k in set(current) | set(attrs)
                       if k != "__weakref__" and current.get(k) is not attrs.get(k)]
            for key in sorted(changed):
                found.append(f"{label}.{key}")
                if key in attrs:
                    setattr(cls, key, attrs[key])
                else:
                    delattr(cls, key)
        for label, (fn, state) in self.functions.items():
            if not _same_function_state(_function_state(fn), state):
                found.append(f"{label} (code or defaults)")
                _restore_function(fn, state)
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
_ALWAYS_GUARDED = ("builtins", "os", "posix", "json", "json.encoder", "__main__", "math",
                   "operator", "functools", "itertools", "statistics", "time",
                   "evaluators.guard", "evaluators.harness", "evaluators.harness_api",
                   "evaluators.audit_guard", "evaluators.source_check")

# Stdlib modules whose classes the harness uses to send the result (JSONEncoder.encode).
_CLASSES_GUARDED = ("json", "json.encoder", "json.decoder")

_REPO = Path(__file__).resolve().parent.parent
_REPO_PACKAGES = tuple(_REPO / name for name in ("problems", "evaluators"))
_own_roots: list[Path] = []


@functools.lru_cache(maxsize=4096)
def _real_dir(directory: str) -> str:
    return os.path.realpath(directory)


def _real_file(file: str) -> str:
    """`os.path.realpath(file)`, resolving each folder once: hundreds of modules share a few
    dozen folders, and resolving every path in full cost tens of ms per evaluation."""
    directory, name = os.path.split(os.path.abspath(file))
    path = os.path.join(_real_dir(directory), name)
    return os.path.realpath(path) if os.path.islink(path) else path


def _under(path: str, root: Path) -> bool:
    prefix = str(root).rstrip(os.sep) + os.sep
    return path.startswith(prefix)


def _is_own(module: types.ModuleType) -> bool:
    file = getattr(module, "__file__", None)
    if not isinstance(file, str) or not file:
        return False
    try:
        path = _real_file(file)
    except (OSError, ValueError):
        return False
    return any(_under(path, root) for root in _own_roots)


def evaluator_modules(problem_dir: Path) -> dict[str, types.ModuleType]:
    """Loaded modules of the problem folder, of this repository's `problems` and `evaluators`
    packages, the modules those bind as globals (numpy, math, ...) and a few the harness uses."""
    problem_dir = problem_dir.resolve()
    # A problem inside a package (a shipped bundle's `problems/`) imports that package's
    # helpers: they are the evaluator's code as much as the repository's own are.
    # So is the `problems` package actually imported (a shipped bundle's, not the checkout's).
    package = [problem_dir.parent] if (problem_dir.parent / "__init__.py").is_file() else []
    shipped = [Path(p).resolve() for p in getattr(sys.modules.get("problems"), "__path__", ())]
    _own_roots[:] = [problem_dir, *package, *shipped, *_REPO_PACKAGES]
    found = {name: sys.modules[name] for name in _ALWAYS_GUARDED if name in sys.modules}
    own = {name: mod for name, mod in list(sys.modules.items())
           if isinstance(mod, types.ModuleType) and _is_own(mod)}
    found.update(own)
    for mod in own.values():
        for value in list(vars(mod).values()):
            if isinstance(value, types.ModuleType):
                name = getattr(value, "__name__", None)
                if isinstance(name, str) and sys.modules.get(name) is value:
                    found[name] = value
    return found


def problem_module_names(problem_dir: Path) -> set[str]:
    """Top-level names of loaded modules that live in the problem folder (e.g. `evaluate`)."""
    root = problem_dir.resolve()
    names = set()
    for name, mod in list(sys.modules.items()):
        file = getattr(mod, "__file__", None)
        try:
            if isinstance(file, str) and file and _under(_real_file(file), root):
                names.add(name.split(".")[0])
        except (OSError, ValueError):
            continue
    return names


_active: Snapshot | None = None


def _record_write(module: types.ModuleType, name: str, value: Any) -> None:
    snapshot = _active
    if snapshot is None:
        return
    bound = snapshot.bindings.get(module.__name__, {})
    if name in bound and value is not bound[name]:
        if _library_wrapper(value, bound[name]):
            bound[name] = value
            return
        label = f"{module.__name__}.{name}"
        if label not in snapshot.tampered:
            snapshot.tampered.append(label)


class _WatchedModule(types.ModuleType):
    """A guarded module that records every rebinding of a guarded name as it happens, so a
    patch that is undone before the next check (after the validator used it) is still seen."""

    def __setattr__(self, name: str, value: Any) -> None:
        _record_write(self, name, value)
        super().__setattr__(name, value)

    def __delattr__(self, name: str) -> None:
        _record_write(self, name, None)
        super().__delattr__(name)


def watch(snapshot: Snapshot) -> None:
    """Record writes to the snapshot's modules from now on (plain modules only: a module that
    already has its own class, e.g. a lazy loader, keeps it and is checked as before)."""
    for module in snapshot.modules.values():
        if type(module) is types.ModuleType:
            try:
                module.__class__ = _WatchedModule
            except TypeError:
                continue


def activate(snapshot: Snapshot) -> None:
    """Make `snapshot` the one `load_candidate` and `call_timed` check after candidate code."""
    global _active
    _active = snapshot


def check_active() -> list[str]:
    return _active.check_and_restore() if _active is not None else []

"""Run-time denial of introspection by candidate code (PEP 578 audit hooks), behind the static
check of `evaluators.source_check`.

CPython raises audit events when code takes a frame (`sys._getframe`, `sys._current_frames`,
reading `tb_frame`/`gi_frame`/`cr_frame`), walks the garbage collector (`gc.get_objects`,
`gc.get_referrers`, `gc.get_referents`), installs a tracer (`sys.settrace`/`setprofile`, whose
callbacks receive frames), builds code objects, or touches raw memory (`ctypes.*`). An audit
hook cannot tell who called, so it looks at the Python stack itself: an event is denied when a
frame of the candidate's file (or of code the candidate compiled) is on the stack, unless the
operation comes from a short list of standard-library callers that only read a module name
(namedtuple, typing, enum, warnings, logging's caller lookup). The evaluator and libraries
doing the same outside a candidate call are unaffected. Every denial is recorded, so a
candidate that catches the PermissionError still has its result rejected (`denials()`).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

_FRAME_EVENTS = {
    "sys._getframe": "sys._getframe reads the evaluator's frames",
    "sys._current_frames": "sys._current_frames reads the evaluator's frames",
    "sys.settrace": "sys.settrace hands the evaluator's frames to a tracer",
    "sys.setprofile": "sys.setprofile hands the evaluator's frames to a profiler",
    "gc.get_objects": "gc.get_objects finds the evaluator's data",
    "gc.get_referrers": "gc.get_referrers finds the evaluator's data",
    "gc.get_referents": "gc.get_referents finds the evaluator's data",
    "code.__new__": "building code objects hides code from the checks",
    "sys.addaudithook": "audit hooks see the evaluator's operations",
}
_FRAME_ATTRS = {"tb_frame", "gi_frame", "cr_frame", "ag_frame"}
# Unpickling may only build data: modules whose objects a pickle can name while a candidate runs
# (anything else, e.g. `sys._getframe` or `sys.modules`, would bypass the source check).
_PICKLE_MODULES = ("numpy", "collections", "datetime", "decimal", "fractions", "array",
                   "_codecs", "copyreg", "_evolve_candidate_")
_PICKLE_BUILTINS = {"set", "frozenset", "bytearray", "complex", "range", "slice", "list", "dict",
                    "tuple", "int", "float", "str", "bytes", "bool", "object"}

# Standard-library callers that take a frame only to read a module name or warning registry,
# never handing it back: (file name relative to the stdlib, function names or None for any).
_STDLIB = Path(os.__file__).resolve().parent
_SAFE_CALLERS = {
    str(_STDLIB / "collections" / "__init__.py"): {"namedtuple"},
    str(_STDLIB / "typing.py"): {"_caller"},
    str(_STDLIB / "enum.py"): None,
    str(_STDLIB / "warnings.py"): {"warn", "_is_internal_frame", "_next_external_frame"},
    str(_STDLIB / "logging" / "__init__.py"): {"findCaller"},
}
_LOGGING = str(_STDLIB / "logging" / "__init__.py")
# Installed code (stdlib, site-packages): a library importing itself may use frames and ctypes.
_INSTALLED = tuple(sorted({str(Path(p).resolve()) + os.sep for p in
                           (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix)}))


_MEMORY_FILES = {"mem", "pagemap", "maps", "smaps", "syscall", "stack", "map_files"}


def _is_process_memory(path: object) -> bool:
    """/proc/<pid>/mem and friends, or a /proc/<pid> directory itself (an `os.open(...,
    dir_fd=)` base for them): the candidate's own memory holds the evaluator's data."""
    if not isinstance(path, str | bytes):
        return False
    parts = os.path.normpath(os.path.join(os.getcwd(), os.fsdecode(path))).split(os.sep)
    if len(parts) < 3 or parts[1] != "proc":
        return False
    process = parts[2] in ("self", "thread-self") or parts[2].isdigit()
    return process and (len(parts) == 3 or parts[-1] in _MEMORY_FILES
                        or (len(parts) == 5 and parts[3] == "task"))


def install(program_path: str | Path) -> Callable[[], list[str]]:
    """Install the hook for the candidate at `program_path`; returns `denials()`.

    Audit hooks cannot be removed: call this once per worker, after the evaluator and trusted
    modules are imported and before the candidate is.
    """
    program = str(Path(program_path).resolve())
    candidate_files = {program, str(program_path)}
    denied: list[str] = []
    busy: set[int] = set()
    getframe = sys._getframe
    get_ident = __import__("_thread").get_ident

    def frames_above_candidate(frame) -> list | None:
        """The frames between the operation and the innermost candidate frame (innermost
        first), or None when no candidate code is on the stack."""
        chain = []
        while frame is not None:
            if frame.f_code.co_filename in candidate_files:
                return chain
            chain.append(frame)
            frame = frame.f_back
        return None

    def installed_library_import(chain: list) -> bool:
        """An installed library's module code running under `import` (torch loading its
        shared objects with ctypes, typing building classes); not code from the work dir."""
        files = [f.f_code.co_filename for f in chain]
        importing = any(name.startswith("<frozen importlib") for name in files)
        return importing and all(name.startswith(("<frozen ", *_INSTALLED)) for name in files)

    def safe_caller(frame) -> bool:
        code = frame.f_code
        names = _SAFE_CALLERS.get(code.co_filename, ())
        if names is None or (names and code.co_name in names):
            return code.co_filename not in candidate_files
        # logging's `currentframe` is a lambda called from findCaller (never from a candidate).
        back = frame.f_back
        return (code.co_filename == _LOGGING and code.co_name == "<lambda>" and back is not None
                and back.f_code.co_filename == _LOGGING and back.f_code.co_name == "findCaller")

    def hook(event: str, args: tuple) -> None:
        if event == "compile":
            reason = None
        elif event in _FRAME_EVENTS:
            reason = _FRAME_EVENTS[event]
        elif event == "object.__getattr__" and len(args) > 1 and args[1] in _FRAME_ATTRS:
            reason = f"reading .{args[1]} reaches the evaluator's frames"
        elif event.startswith("ctypes."):
            reason = f"{event} touches raw memory"
        elif event == "pickle.find_class" and len(args) > 1:
            if str(args[0]).startswith(_PICKLE_MODULES) or (
                    args[0] == "builtins" and args[1] in _PICKLE_BUILTINS):
                return
            reason = f"unpickling {args[0]}.{args[1]} reaches code or state beyond data"
        elif event == "open" and args and _is_process_memory(args[0]):
            reason = f"opening {os.fsdecode(args[0])} reads the evaluator's memory"
        elif event == "os.symlink" and args and "proc" in os.fsdecode(args[0]):
            reason = f"a link to {os.fsdecode(args[0])} reaches the evaluator's memory"
        elif event == "marshal.loads":
            reason = "marshal.loads builds code objects"
        else:
            return
        me = get_ident()
        if me in busy:  # our own frame walk below raises sys._getframe again
            return
        busy.add(me)
        try:
            caller = getframe(1)
            chain = frames_above_candidate(caller)
            if chain is None:
                return
            if event == "compile":
                # Code the candidate compiles itself counts as the candidate's, whatever its
                # file name says (a name like collections/__init__.py would look trusted).
                if not chain and len(args) > 1 and isinstance(args[1], str | bytes):
                    candidate_files.add(os.fsdecode(args[1]))
                return
            if chain and (safe_caller(caller) or installed_library_import(chain)):
                return
            message = (f"{reason}; a candidate may not inspect or patch the evaluator "
                       f"(set allow_introspection = true in the problem's [resources] if the "
                       f"problem needs it)")
            if message not in denied:
                denied.append(message)
        finally:
            busy.discard(me)
        raise PermissionError(message)

    sys.addaudithook(hook)
    return lambda: list(denied)

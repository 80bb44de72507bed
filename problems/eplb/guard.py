"""A static check that a candidate does not reach into the evaluator.

The placement is scored on a window the candidate has not been given. In one process, nothing
stops code from walking up the call stack or the garbage collector to find that window, or from
importing the workload generator to recompute it; the sandbox cannot tell those apart from honest
work. So before the candidate is imported, its source is parsed and rejected when it imports
this project's packages or uses the introspection that reaches other frames' data.
"""

from __future__ import annotations

import ast
from pathlib import Path

FORBIDDEN_MODULES = ("problems", "evaluators", "evolve", "inspect", "gc", "ctypes")
FORBIDDEN_NAMES = {"_getframe", "f_back", "f_locals", "f_globals", "gi_frame", "tb_frame",
                   "currentframe", "get_objects", "get_referrers", "__import__", "import_module",
                   "settrace", "setprofile", "modules"}


def reach_violation(source: str) -> str | None:
    """A reason to reject the source, or None. Syntax errors are left to the loader."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    for node in ast.walk(tree):
        modules: list[str] = []
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules = [node.module]
        for module in modules:
            if module.split(".")[0] in FORBIDDEN_MODULES:
                return (f"line {node.lineno}: imports '{module}'; a balancer may use torch, numpy "
                        f"and the standard library, but not the evaluator or introspection "
                        f"modules ({', '.join(FORBIDDEN_MODULES)})")
        name = (node.attr if isinstance(node, ast.Attribute)
                else node.id if isinstance(node, ast.Name) else None)
        if name in FORBIDDEN_NAMES:
            return (f"line {node.lineno}: uses '{name}', which reaches the evaluator's data; "
                    f"compute the placement from the arguments alone")
    return None


def check_file(path: str | Path) -> str | None:
    try:
        return reach_violation(Path(path).read_text())
    except (OSError, UnicodeDecodeError):
        return None

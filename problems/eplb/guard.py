"""A static check that a candidate does not reach into the evaluator.

The placement is scored on a window the candidate has not been given. In one process, nothing
stops code from walking up the call stack or the garbage collector to find that window, or from
importing the workload generator to recompute it; the sandbox cannot tell those apart from honest
work. So before the candidate is imported, its source is parsed and rejected when it imports
this project's packages, uses the introspection that reaches other frames' data, or patches an
imported module (which would change the kernels timed after the candidate ran).
"""

from __future__ import annotations

import ast
from pathlib import Path

FORBIDDEN_MODULES = ("problems", "evaluators", "evolve", "inspect", "gc", "ctypes")
FORBIDDEN_NAMES = {"_getframe", "f_back", "f_locals", "f_globals", "gi_frame", "tb_frame",
                   "currentframe", "get_objects", "get_referrers", "__import__", "import_module",
                   "settrace", "setprofile"}
# Only as an attribute (sys.modules): a local variable may well be called `modules`.
FORBIDDEN_ATTRIBUTES = FORBIDDEN_NAMES | {"modules"}


def _imported_modules(tree: ast.AST) -> set[str]:
    """Names under which the source binds modules (`import torch.nn.functional as F` -> F)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            # `from torch.nn import functional as F` binds a module as well as plain names;
            # treating every imported name as a possible module errs on the safe side.
            names.update(a.asname or a.name for a in node.names)
    return names


def _root_name(node: ast.expr) -> str | None:
    while isinstance(node, ast.Attribute | ast.Subscript):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def reach_violation(source: str) -> str | None:
    """A reason to reject the source, or None. Syntax errors are left to the loader."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    imported = _imported_modules(tree)
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
        if isinstance(node, ast.Attribute) and node.attr in FORBIDDEN_ATTRIBUTES:
            name: str | None = node.attr
        elif isinstance(node, ast.Name) and node.id in FORBIDDEN_NAMES:
            name = node.id
        else:
            name = None
        if name:
            return (f"line {node.lineno}: uses '{name}', which reaches the evaluator's data; "
                    f"compute the placement from the arguments alone")
        # Monkey-patching a library (torch.nn.functional.silu = ...) would change the kernels
        # the evaluator times after the candidate has run.
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AugAssign | ast.AnnAssign | ast.Delete):
            targets = node.targets if isinstance(node, ast.Delete) else [node.target]
        for target in targets:
            if isinstance(target, ast.Attribute) and _root_name(target) in imported:
                return (f"line {node.lineno}: changes '{ast.unparse(target)}'; do not "
                        f"modify imported modules")
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id in ("setattr", "delattr") and node.args
                and _root_name(node.args[0]) in imported):
            return (f"line {node.lineno}: calls {node.func.id} on '{ast.unparse(node.args[0])}'; "
                    f"do not modify imported modules")
    return None


def check_source(source: str) -> str | None:
    """The reason this program source is refused, or None."""
    return reach_violation(source)


def check_file(path: str | Path) -> str | None:
    try:
        return reach_violation(Path(path).read_text())
    except (OSError, UnicodeDecodeError):
        return None

"""A static check of a candidate's source, before it is imported: refuse the escape hatches that
read or rewrite the evaluator's state from inside the same process.

A candidate runs in the evaluator's process, so frames (`sys._getframe(1).f_locals`), the
garbage collector (`gc.get_objects()`), `sys.modules['evaluate']` and function internals
(`__globals__`, `__kwdefaults__`) lead straight to the hidden data (a spot trace's future) or to
the validator. Ordinary optimisation code never needs them. Dynamic spellings
(`getattr(sys, "_get" + "frame")`, `__import__`, `eval`) are refused too, because they would
defeat a check by name; `evaluators.audit_guard` denies the same operations at run time.
Problems whose candidates need introspection set `allow_introspection = true` in `[resources]`.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable

# Modules whose only use in a candidate would be reading or patching the evaluator.
_FORBIDDEN_MODULES = {
    "gc": "it finds the evaluator's objects",
    "inspect": "it reads the evaluator's frames",
    "ctypes": "it reads and writes raw memory",
    "_ctypes": "it reads and writes raw memory",
    "importlib": "it re-imports the evaluator's modules",
    "imp": "it re-imports the evaluator's modules",
    "builtins": "patching builtins changes what the evaluator computes",
    "__builtin__": "patching builtins changes what the evaluator computes",
    "_thread": "raw threads bypass the harness's checks; use threading",
    "evaluators": "it is the evaluation harness",
    "evolve": "it is the framework running the evaluation",
    "problems": "it holds the evaluator's code and data",
    "tests": "it is not part of the problem",
    # Standard-library modules that compile and run code given as a string, or resolve dotted
    # names to objects (`pkgutil.resolve_name("sys:modules")`): they would run code this check
    # never saw.
    **{name: "it runs or resolves code given as a string, which the check cannot see"
       for name in ("timeit", "code", "codeop", "doctest", "runpy", "pdb", "bdb", "profile",
                    "cProfile", "trace", "pydoc", "pkgutil", "zipimport", "unittest",
                    "pkg_resources", "site", "rlcompleter")},
}

_READS_STATE = "it reads the evaluator's state"
_PATCHES = "it rewrites the evaluator's code"
# Attribute names that lead to frames, globals or code of the caller.
_FORBIDDEN_ATTRS = {
    "_getframe": _READS_STATE, "_current_frames": _READS_STATE,
    "_getframemodulename": _READS_STATE, "f_back": _READS_STATE, "f_locals": _READS_STATE,
    "f_globals": _READS_STATE, "f_builtins": _READS_STATE, "f_code": _READS_STATE,
    "f_trace": _READS_STATE, "tb_frame": _READS_STATE, "tb_next": _READS_STATE,
    "gi_frame": _READS_STATE, "cr_frame": _READS_STATE, "ag_frame": _READS_STATE,
    "gi_code": _READS_STATE, "__traceback__": _READS_STATE, "__globals__": _READS_STATE,
    "__closure__": _READS_STATE, "__code__": _PATCHES, "__defaults__": _PATCHES,
    "__kwdefaults__": _PATCHES, "__builtins__": _PATCHES, "__subclasses__": _READS_STATE,
    "__getattribute__": _READS_STATE, "__setattr__": _PATCHES, "__delattr__": _PATCHES, "settrace": _READS_STATE, "setprofile": _READS_STATE,
    "addaudithook": _PATCHES, "meta_path": _PATCHES, "path_hooks": _PATCHES,
    "get_objects": _READS_STATE, "get_referrers": _READS_STATE, "get_referents": _READS_STATE,
    "walk_stack": _READS_STATE, "walk_tb": _READS_STATE, "capture_locals": _READS_STATE,
    "__dict__": "it reaches module internals by computed name; use attribute access",
    "find_class": _PATCHES, "__loader__": _PATCHES, "__spec__": _PATCHES,
    "ForwardRef": "it evaluates strings as code", "get_type_hints": "it evaluates strings as code",
    "_eval_type": "it evaluates strings as code", "__annotations__": _PATCHES,
}
# `sys.<name>` only: these words are ordinary elsewhere (torch's `module.modules()`).
_FORBIDDEN_SYS_ATTRS = {"modules": "it reaches the evaluator's modules",
                        "exc_info": _READS_STATE, "exception": _READS_STATE,
                        "last_traceback": _READS_STATE}
# Builtins that turn a computed string into code or an attribute lookup.
_FORBIDDEN_NAMES = {
    "__builtins__": _PATCHES, "__import__": "it imports modules by computed name",
    "eval": "it runs code the check cannot see", "exec": "it runs code the check cannot see",
    "compile": "it makes code the check cannot see", "breakpoint": _READS_STATE,
    "vars": "it reaches module internals by computed name; use attribute access",
}
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# "{0.modules[evaluate].DATA}".format(sys): a format field that walks into sys.modules.
_FORMAT_FIELD = re.compile(r"\{[^{}]*[.\[][^{}]*\b(modules|__\w+__)\b[^{}]*\}")
# Allowed only when called with literal attribute names (checked against the lists above).
_NAME_TAKERS = {"getattr": 1, "setattr": 1, "delattr": 1, "hasattr": 1,
                "attrgetter": 0, "methodcaller": 0}


_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)


def _local_names(function: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> set[str]:
    """Names local to a function (parameters and names bound directly in its body, without
    `global`/`nonlocal`): loading one can never fall back to the builtin of that name."""
    args = function.args
    names = {a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)}
    names.update(a.arg for a in (args.vararg, args.kwarg) if a is not None)
    declared: set[str] = set()
    todo = list(function.body) if isinstance(function.body, list) else [function.body]
    while todo:
        node = todo.pop()
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store | ast.Del):
            names.add(node.id)
        elif isinstance(node, ast.Global | ast.Nonlocal):
            declared.update(node.names)
        elif isinstance(node, ast.alias):
            names.add((node.asname or node.name).split(".")[0])
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
        if isinstance(node, _SCOPES):
            if not isinstance(node, ast.Lambda):
                names.add(node.name)
            continue  # a nested scope's own names are not this function's
        if isinstance(node, ast.ListComp | ast.SetComp | ast.DictComp | ast.GeneratorExp):
            continue  # comprehension variables live in their own scope
        todo.extend(ast.iter_child_nodes(node))
    return names - declared


class _Checker(ast.NodeVisitor):
    def __init__(self, extra_modules: dict[str, str]):
        self.modules = {**_FORBIDDEN_MODULES, **extra_modules}
        self.sys_aliases = {"sys"}
        self.problem: str | None = None
        self.position = (1 << 30, 0)
        self.allowed_name_nodes: set[int] = set()
        self.function_locals: list[set[str]] = []   # enclosing functions' local names

    def _scope(self, node: ast.AST, local: set[str] | None) -> None:
        self.function_locals.append(local if local is not None else set())
        self.generic_visit(node)
        self.function_locals.pop()

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self._scope(node, _local_names(node))

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]

    def visit_Lambda(self, node: ast.Lambda) -> None:
        self._scope(node, _local_names(node))

    def _is_local(self, name: str) -> bool:
        """A variable of an enclosing function (e.g. `vars = model.addVars(...)` in solve())
        rather than the builtin of that name."""
        return any(name in names for names in self.function_locals)

    def refuse(self, node: ast.AST, what: str, why: str) -> None:
        # Report the first in reading order (the inner `sys._getframe` of `..._getframe(1).f_back`).
        position = (getattr(node, "lineno", 0), getattr(node, "end_col_offset", 0) or 0)
        if position < self.position:
            self.position = position
            self.problem = (f"line {getattr(node, 'lineno', '?')}: {what} is not allowed in a "
                            f"candidate: {why}")

    def _module(self, node: ast.AST, name: str) -> None:
        top = name.split(".")[0]
        if top in self.modules:
            self.refuse(node, f"import {name}", self.modules[top])
        elif name.startswith("logging.config"):
            self.refuse(node, f"import {name}", "it resolves dotted names and evaluates strings")

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._module(node, alias.name)
            if alias.name == "sys":
                self.sys_aliases.add(alias.asname or "sys")
        self.generic_visit(node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            self.refuse(node, "a relative import", "the candidate is a single file")
        module = node.module or ""
        self._module(node, module)
        for alias in node.names:
            if module == "logging" and alias.name == "config":
                self._module(node, "logging.config")
            if module == "sys" and alias.name in _FORBIDDEN_SYS_ATTRS:
                self.refuse(node, f"sys.{alias.name}", _FORBIDDEN_SYS_ATTRS[alias.name])
            self._attr_name(node, alias.name, module)
        self.generic_visit(node)

    def _attr_name(self, node: ast.AST, name: str, owner: str = "") -> None:
        if name in _FORBIDDEN_ATTRS:
            self.refuse(node, f"{owner + '.' if owner else ''}{name}", _FORBIDDEN_ATTRS[name])

    def visit_Attribute(self, node: ast.Attribute) -> None:
        owner = node.value.id if isinstance(node.value, ast.Name) else ""
        self._attr_name(node, node.attr, owner)
        if owner in self.sys_aliases and node.attr in _FORBIDDEN_SYS_ATTRS:
            self.refuse(node, f"sys.{node.attr}", _FORBIDDEN_SYS_ATTRS[node.attr])
        self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        if not isinstance(node.ctx, ast.Load) or self._is_local(node.id):
            return
        if node.id in _FORBIDDEN_NAMES:
            self.refuse(node, node.id, _FORBIDDEN_NAMES[node.id])
        elif node.id in _NAME_TAKERS and id(node) not in self.allowed_name_nodes:
            self.refuse(node, f"{node.id} used as a value",
                        f"call {node.id} directly with a literal attribute name")

    def visit_Constant(self, node: ast.Constant) -> None:
        # Names spelled as strings reach the same places through getattr/vars/dicts.
        if isinstance(node.value, str):
            # Attribute-like words only: "compile" or "eval" in a docstring is prose.
            for part in _WORD.findall(node.value):
                if part in _FORBIDDEN_ATTRS or part in ("__import__", "__builtins__"):
                    self.refuse(node, f"the string {node.value[:40]!r}",
                                _FORBIDDEN_ATTRS.get(part) or _FORBIDDEN_NAMES[part])
            if _FORMAT_FIELD.search(node.value):
                self.refuse(node, f"the format string {node.value[:40]!r}",
                            "format fields that walk into modules reach the evaluator's state")

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        name = func.id if isinstance(func, ast.Name) else (
            func.attr if isinstance(func, ast.Attribute) else "")
        if name in _NAME_TAKERS:
            if isinstance(func, ast.Name):
                self.allowed_name_nodes.add(id(func))
            first = _NAME_TAKERS[name]
            names = node.args[first:first + 1] if first else node.args
            for arg in names:
                if not (isinstance(arg, ast.Constant) and isinstance(arg.value, str)):
                    self.refuse(node, f"{name}() with a computed attribute name",
                                "write the attribute name as a literal string")
                elif arg.value in _FORBIDDEN_SYS_ATTRS:
                    self.refuse(node, f"{name}(..., {arg.value!r})",
                                _FORBIDDEN_SYS_ATTRS[arg.value])
        self.generic_visit(node)


def check_source(source: str, evaluator_modules: Iterable[str] = ()) -> str | None:
    """None if `source` uses no escape hatch, else 'line N: X is not allowed ...: why'.

    `evaluator_modules`: top-level names of modules the evaluator loaded from its own folder
    (e.g. `evaluate`), which the candidate may not import either. A syntax error returns None:
    the import reports it with its own failure kind.
    """
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return None
    checker = _Checker({name: "it is the evaluator's own module" for name in evaluator_modules})
    checker.visit(tree)
    return checker.problem

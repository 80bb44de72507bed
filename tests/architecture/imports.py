"""The project's import graph, read from the source with `ast` (nothing is imported): which
module imports which, where (at module level or inside a function), and the folder each
module belongs to. Used by test_architecture.py; the rules themselves are in docs/architecture.md.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("evolve", "db", "evaluators", "problems")
# A project import inside a function is allowed when this marker says why on its line or the
# line above (an optional extra such as ray, or a module that is slow to import).
LAZY_MARKER = "# lazy:"


@dataclass(frozen=True)
class Import:
    source: str          # the importing module, dotted
    target: str          # the imported module, dotted (a project module)
    path: Path
    line: int
    in_function: bool
    marked_lazy: bool


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules(roots: tuple[str, ...] = ("evolve", "db", "evaluators")) -> dict[str, Path]:
    return {module_name(p): p for root in roots for p in sorted((ROOT / root).rglob("*.py"))}


def folder(module: str) -> str:
    """The unit the dependency rules speak of: evolve.<subpackage or module>, else the
    top-level package (db, evaluators, problems)."""
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "evolve" and len(parts) > 1 else parts[0]


def imports(known: dict[str, Path]) -> Iterator[Import]:
    """Every import of a project module, resolved to the module itself when `from package
    import name` names a submodule."""
    for source, path in known.items():
        text = path.read_text()
        lines = text.splitlines()
        tree = ast.parse(text)
        in_function = {id(node) for fn in ast.walk(tree)
                       if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef))
                       for node in ast.walk(fn)}
        for node in ast.walk(tree):
            for target in _targets(node, known):
                here = lines[node.lineno - 1]
                above = lines[node.lineno - 2] if node.lineno >= 2 else ""
                yield Import(source, target, path, node.lineno, id(node) in in_function,
                             LAZY_MARKER in here or above.strip().startswith(LAZY_MARKER))


def _targets(node: ast.AST, known: dict[str, Path]) -> list[str]:
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
        names = [f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in known
                 else node.module for alias in node.names]
    else:
        return []
    return sorted({n for n in names if n.split(".")[0] in PACKAGES})


def cycles(edges: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(sorted(edges.get(start, ()))))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(component)
    return found

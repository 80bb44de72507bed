"""What a problem imports from outside its own folder, found by reading its source (no import).

A problem inside a package (the built-in `problems/`) imports itself and its package's shared
helpers under their real names (`problems.txn.workload`, `problems._spot_sim.evaluation`). To run
it on a machine without that package, the bundle must carry exactly those files under the same
names. This module reads the import statements of every Python file that would travel (the
problem folder, then each helper it pulls in, transitively) and says which files that is.

Imports are resolved against one *import root* per top-level package: the folder above the
problem's outermost package, and, for `problems.*` only, the folder holding the built-in
`problems` package of this installation (a problem elsewhere may use `problems._spot_sim`).
Anything else (the standard library, installed packages, `evaluators`) is the node's own.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SKIP_DIRS = frozenset({"__pycache__", ".git", ".pytest_cache"})


@dataclass(frozen=True)
class Layout:
    """Where a problem sits in the bundle: `problem_path` relative to the bundle's root (for a
    packaged problem, its dotted location as a path, e.g. `problems/txn`), and every file
    (absolute source path -> path inside the bundle)."""

    problem_path: str
    files: dict[Path, str]


def files_under(root: Path) -> list[Path]:
    """Plain files of a folder, sorted, caches left out."""
    found = []
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).parts
        if any(part in SKIP_DIRS for part in relative) or path.suffix == ".pyc":
            continue
        if path.is_file() and not path.is_symlink():
            found.append(path)
    return found


def package_chain(problem_dir: Path) -> list[Path]:
    """The packages the problem folder sits in, innermost first (empty: a stand-alone one)."""
    chain = []
    folder = problem_dir.parent
    while (folder / "__init__.py").is_file():
        chain.append(folder)
        folder = folder.parent
    return chain


def builtin_root() -> Path:
    """The folder holding this installation's `problems` package."""
    import evaluators

    return Path(evaluators.__file__).resolve().parent.parent


def imported_modules(path: Path, module: str) -> Iterator[str]:
    """Absolute dotted names a Python file imports (relative imports resolved against
    `module`, the file's own dotted name; `from a import b` yields both `a` and `a.b`)."""
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except (SyntaxError, ValueError):
        return  # not our business to judge: the evaluator reports it when it is imported
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".") if package else []
                if node.level - 1 > len(parts):
                    continue
                parts = parts[:len(parts) - (node.level - 1)]
                base = ".".join([*parts, base] if base else parts)
            if not base:
                continue
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names if alias.name != "*")


def _resolve(name: str, root: Path) -> tuple[list[Path], Path | None]:
    """The package `__init__.py` files on the way to `name` under `root`, and the module's own
    file or folder (None when `name` is not there)."""
    parts = name.split(".")
    inits: list[Path] = []
    folder = root
    for i, part in enumerate(parts):
        candidate = folder / part
        last = i == len(parts) - 1
        if (candidate / "__init__.py").is_file():
            if last:
                return inits, candidate
            inits.append(candidate / "__init__.py")
            folder = candidate
            continue
        if candidate.with_suffix(".py").is_file():
            return inits, candidate.with_suffix(".py")
        # `from pkg import name` where name is an attribute, not a module: the package is it.
        return inits, (folder if i else None)
    return inits, None


def _holds_problems(folder: Path) -> bool:
    return any(path.name == "problem.toml" for path in files_under(folder))


def layout(problem_dir: Path) -> Layout:
    """Every file the problem needs, placed as it is imported: the problem folder under its
    dotted location, plus the package files and shared helpers its source imports."""
    problem_dir = problem_dir.resolve()
    chain = package_chain(problem_dir)
    roots: dict[str, Path] = {}
    if chain:
        own_root = chain[-1].parent
        roots[chain[-1].name] = own_root
        problem_path = problem_dir.relative_to(own_root).as_posix()
    else:
        # Its folder's name is no import name: a fixed one keeps the digest content-only.
        problem_path = "problem"
    builtin = builtin_root()
    if (builtin / "problems" / "__init__.py").is_file():
        roots.setdefault("problems", builtin)

    files: dict[Path, str] = {}
    to_scan: list[tuple[Path, str]] = []   # (python file, its dotted module name)

    def add_folder(folder: Path, at: str, module: str | None) -> None:
        for path in files_under(folder):
            rel = path.relative_to(folder)
            if path in files:
                continue
            files[path] = f"{at}/{rel.as_posix()}" if at else rel.as_posix()
            if path.suffix == ".py" and module is not None:
                dotted = ".".join([module, *rel.with_suffix("").parts])
                to_scan.append((path, dotted.removesuffix(".__init__")))

    def add_file(path: Path, at: str, module: str) -> None:
        if path not in files:
            files[path] = at
            to_scan.append((path, module))

    own_module = problem_path.replace("/", ".") if chain else ""
    if chain:
        add_folder(problem_dir, problem_path, own_module)
        for package in chain:  # the package `__init__.py` files the problem's name goes through
            init = package / "__init__.py"
            add_file(init, (init.relative_to(roots[chain[-1].name])).as_posix(),
                     ".".join(package.relative_to(roots[chain[-1].name]).parts))
    else:
        # A stand-alone problem's own modules are imported by their plain names (the harness
        # puts its folder first on the path), so they are scanned as top-level modules.
        for path in files_under(problem_dir):
            files[path] = f"{problem_path}/{path.relative_to(problem_dir).as_posix()}"
            if path.suffix == ".py":
                to_scan.append((path, ".".join(path.relative_to(problem_dir)
                                               .with_suffix("").parts)))

    scanned: set[Path] = set()
    while to_scan:
        path, module = to_scan.pop()
        if path in scanned:
            continue
        scanned.add(path)
        for name in imported_modules(path, module):
            root = roots.get(name.split(".")[0])
            if root is None:
                continue
            inits, target = _resolve(name, root)
            for init in inits:
                add_file(init, init.relative_to(root).as_posix(),
                         ".".join(init.parent.relative_to(root).parts))
            if target is None or target == root:
                continue
            at = target.relative_to(root).as_posix()
            dotted = ".".join(target.relative_to(root).with_suffix("").parts)
            if target.is_dir() and _holds_problems(target):
                # A package of problems (`import problems`): its own `__init__.py` only.
                add_file(target / "__init__.py", f"{at}/__init__.py", dotted)
            elif target.is_dir():
                add_folder(target, at, dotted)
            else:
                add_file(target, at, dotted)
    return Layout(problem_path, files)

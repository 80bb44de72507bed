"""Finding problems: built in (`problems/NAME/`), any folder path, or an installed package that
registers its problem folder under the entry-point group `evolve.problems`.

An entry point's value is either a module (`my_pkg.problem`: the folder holding that module, or
the package folder itself, holds problem.toml; found without importing it) or `module:attr`,
where attr is a path, or a function returning one, to the problem folder.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from types import ModuleType

import problems
from evolve.problem.spec import ProblemError, ProblemSpec, Source, load_problem

ENTRY_POINT_GROUP = "evolve.problems"
# The built-in problems are the folders of the `problems` package (problems only, no framework code).
BUILTIN_DIR = Path(problems.__file__).resolve().parent


@dataclass(frozen=True)
class ProblemEntry:
    """One problem found during a scan, loadable or not (a broken one still shows up)."""

    name: str
    source: Source
    location: str  # the folder, or for an entry point "name = value (package)"
    spec: ProblemSpec | None
    error: str | None = None

    @property
    def usable(self) -> bool:
        return self.spec is not None and self.spec.usable

    @property
    def reason(self) -> str | None:
        """Why it cannot be used, or None."""
        if self.error is not None:
            return self.error
        return self.spec.unusable_reason if self.spec is not None else None


def _builtin_folders(builtin_dir: Path) -> list[Path]:
    if not builtin_dir.is_dir():
        return []
    # `_shared` style helper folders and caches are not problems.
    return [p for p in sorted(builtin_dir.iterdir())
            if p.is_dir() and not p.name.startswith(("_", ".")) and (p / "problem.toml").is_file()]


def _problem_entry_points() -> list[EntryPoint]:
    return sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name)


def _describe(ep: EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    owner = f" (package {dist.name})" if dist is not None and dist.name else ""
    return f"entry point '{ep.name} = {ep.value}' in group '{ENTRY_POINT_GROUP}'{owner}"


def _module_folder(module: ModuleType) -> Path:
    locations = list(getattr(module, "__path__", []) or [])
    if locations:
        return Path(locations[0])
    if getattr(module, "__file__", None):
        return Path(module.__file__).parent
    raise ProblemError(f"module {module.__name__} has no folder on disk")


def entry_point_root(ep: EntryPoint) -> Path:
    """The problem folder an entry point names; raise ProblemError saying which and why."""
    where = _describe(ep)
    try:
        if not ep.attr:
            spec = importlib.util.find_spec(ep.module)
            if spec is None:
                raise ProblemError(f"{where}: module '{ep.module}' is not installed")
            if spec.submodule_search_locations:
                return Path(list(spec.submodule_search_locations)[0])
            if spec.origin and spec.origin not in ("built-in", "frozen"):
                return Path(spec.origin).parent
            raise ProblemError(f"{where}: module '{ep.module}' has no folder on disk")
        target = ep.load()
        if isinstance(target, ModuleType):
            return _module_folder(target)
        if callable(target):
            target = target()
        path = Path(os.fspath(target))
        if not path.is_absolute():
            # Relative to the module that named it, not to wherever evolve was started.
            path = _module_folder(importlib.import_module(ep.module)) / path
        return path
    except ProblemError:
        raise
    except Exception as exc:  # an import error or a bad attribute in someone else's package
        raise ProblemError(f"{where}: cannot resolve the problem folder: "
                           f"{type(exc).__name__}: {exc}") from exc


def _load_entry_point(ep: EntryPoint) -> ProblemSpec:
    root = entry_point_root(ep)
    try:
        return load_problem(root, source="entry-point")
    except ProblemError as exc:
        raise ProblemError(f"{exc} (registered by {_describe(ep)})") from exc


def _looks_like_path(text: str) -> bool:
    return (os.sep in text or (os.altsep or os.sep) in text or text.startswith((".", "~"))
            or text.endswith("problem.toml"))


def _load_path(text: str) -> ProblemSpec:
    path = Path(text).expanduser()
    if path.name == "problem.toml":
        path = path.parent
    if not path.is_dir():
        raise ProblemError(f"problem folder {path} does not exist; give a folder that holds "
                           f"problem.toml, or a problem name from `evolve problems list`")
    return load_problem(path, source="path")


def find_problem(name_or_path: str | Path, *, builtin_dir: Path = BUILTIN_DIR) -> ProblemSpec:
    """A folder path, else a built-in `problems/NAME/`, else an installed entry point NAME."""
    text = os.fspath(name_or_path)
    if isinstance(name_or_path, Path) or _looks_like_path(text):
        return _load_path(text)
    if (Path(text) / "problem.toml").is_file():
        return load_problem(text, source="path")
    builtin = builtin_dir / text
    if not text.startswith(("_", ".")) and (builtin / "problem.toml").is_file():
        return load_problem(builtin, source="builtin")
    matches = [ep for ep in _problem_entry_points() if ep.name == text]
    if matches:
        return _load_entry_point(matches[0])
    known = sorted({e.name for e in scan_problems(builtin_dir=builtin_dir)})
    raise ProblemError(
        f"no problem named '{text}': no such folder, no built-in problems/{text}/, and no "
        f"installed package registers it under the entry-point group '{ENTRY_POINT_GROUP}'. "
        f"Known problems: {', '.join(known) or 'none'} (see `evolve problems list`).")


def scan_problems(*, builtin_dir: Path = BUILTIN_DIR) -> list[ProblemEntry]:
    """Every built-in and entry-point problem, including broken ones (with their error)."""
    found: list[ProblemEntry] = []
    for folder in _builtin_folders(builtin_dir):
        try:
            spec = load_problem(folder, source="builtin")
            found.append(ProblemEntry(spec.name, "builtin", str(folder), spec))
        except ProblemError as exc:
            found.append(ProblemEntry(folder.name, "builtin", str(folder), None, str(exc)))
    for ep in _problem_entry_points():
        try:
            spec = _load_entry_point(ep)
            found.append(ProblemEntry(ep.name, "entry-point", str(spec.root), spec))
        except ProblemError as exc:
            found.append(ProblemEntry(ep.name, "entry-point", _describe(ep), None, str(exc)))
    return found


def list_problems(*, builtin_dir: Path = BUILTIN_DIR) -> list[ProblemSpec]:
    """Every problem that loads (usable or not: see `ProblemSpec.unusable_reason`)."""
    return [e.spec for e in scan_problems(builtin_dir=builtin_dir) if e.spec is not None]

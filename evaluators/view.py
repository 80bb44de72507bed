"""What of the host a candidate may see: the allow-list the sandbox mounts, read-only.

Only what the harness and the problem need: the interpreter (its install prefixes and the
virtual environment with the installed packages), the `evaluators` package, the problem folder
without its hidden files and, for a problem inside a package (the built-in `problems/`), that
package's shared helper modules but not its other problems. Everything else of the host (other
repositories, /etc, /home, /root, /srv, /opt, the checkout's .git) stays out.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

# Folders of the base system that hold shared libraries and the tools a program may start.
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
# From /etc only what the dynamic linker and the time functions read.
SYSTEM_FILES = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime")
# CPU topology for numeric libraries (torch's cpuinfo, OpenBLAS); nothing else of /sys.
CPU_INFO = "/sys/devices/system/cpu"


@dataclass(frozen=True)
class View:
    """Host paths mounted read-only at the same place, and host paths left out of them."""

    read_paths: tuple[Path, ...]
    hidden: tuple[Path, ...] = ()
    system: tuple[Path, ...] = ()     # base-system paths (symlinks stay symlinks)


def runtime_paths() -> list[Path]:
    """The interpreter: its prefixes (standard library, virtual environment, site-packages)."""
    paths = {Path(sys.prefix), Path(sys.base_prefix), Path(sys.exec_prefix),
             Path(sys.base_exec_prefix), Path(os.path.realpath(sys.executable)).parent}
    return sorted(p.resolve() for p in paths)


def package_root() -> Path:
    """The folder holding the `evaluators` package this process imported (the checkout)."""
    import evaluators

    return Path(evaluators.__file__).resolve().parent.parent


def harness_paths() -> list[Path]:
    """Our code the harness imports: the `evaluators` package, nothing else of the checkout."""
    return [package_root() / "evaluators"]


def package_helpers(package: Path, exclude: Path | None = None) -> list[Path]:
    """A problems package's `__init__.py` and shared helper modules (Python files, and folders
    without a problem.toml), not its problems."""
    paths = []
    if not (package / "__init__.py").is_file():
        return paths
    for entry in sorted(package.iterdir()):
        if entry == exclude or entry.name.startswith(".") or entry.name == "__pycache__":
            continue
        if entry.is_file() and entry.suffix == ".py":
            paths.append(entry)
        elif entry.is_dir() and not (entry / "problem.toml").exists() \
                and (entry / "__init__.py").is_file():
            paths.append(entry)
    return paths


def problem_paths(problem_dir: Path) -> list[Path]:
    """The problem folder, the helpers of the package it sits in, and the helpers of the
    built-in `problems` package (importable through the harness's PYTHONPATH: an outside
    problem may use `problems._spot_sim`), but no other problem."""
    problem_dir = problem_dir.resolve()
    builtin = package_root() / "problems"
    paths = [problem_dir, *package_helpers(problem_dir.parent, exclude=problem_dir)]
    if builtin != problem_dir.parent:
        paths += package_helpers(builtin)
    return paths


def system_paths(*, gpu: bool = False) -> list[Path]:
    paths = [Path(p) for p in (*SYSTEM_DIRS, *SYSTEM_FILES, CPU_INFO)]
    if gpu:
        paths.append(Path("/sys"))  # the CUDA driver reads the PCI topology
    return [p for p in paths if os.path.lexists(p)]


def hidden_paths(problem_dir: Path, hidden: Sequence[str]) -> list[Path]:
    return [(problem_dir / rel).resolve() for rel in hidden]


def sandbox_view(problem_dir: Path, hidden: Sequence[str] = (), *, gpu: bool = False) -> View:
    """Everything a sandboxed evaluation of this problem may read."""
    reads = [*runtime_paths(), *harness_paths(), *problem_paths(problem_dir)]
    return View(read_paths=tuple(outermost(reads)),
                hidden=tuple(hidden_paths(problem_dir.resolve(), hidden)),
                system=tuple(system_paths(gpu=gpu)))


def outermost(paths: Iterable[Path]) -> list[Path]:
    """Drop paths nested in another path of the list (binding the parent covers them)."""
    result: list[Path] = []
    for p in sorted(set(paths), key=lambda q: len(q.parts)):
        if not any(p == q or q in p.parents for q in result):
            result.append(p)
    return sorted(result)


def split_around(path: Path, hidden: Sequence[Path]) -> tuple[list[Path], list[Path]]:
    """(folders to create, paths to bind) that show `path` without any of `hidden`: a folder
    holding a hidden path is recreated empty and its other entries bound one by one."""
    inside = [h for h in hidden if h == path or path in h.parents]
    if not inside:
        return [], [path]
    if path in inside or not path.is_dir() or path.is_symlink():
        return [], []
    folders, binds = [path], []
    for entry in sorted(path.iterdir()):
        sub_folders, sub_binds = split_around(entry, inside)
        folders += sub_folders
        binds += sub_binds
    return folders, binds

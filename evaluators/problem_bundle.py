"""A problem as one self-contained, content-addressed archive, for shipping it to other machines.

The bundle holds the problem folder under its real import location (`problems/txn/...` for a
built-in problem) together with what its source imports from outside it: the package
`__init__.py` files and shared helpers such as `problems/_spot_sim` (`problem_imports.layout`).
A node unpacks it once into `<tmp>/evolve-problems/<digest>/`, and that folder goes first on the
sandbox's Python path (`python_path`), so the problem imports the same modules on the driver's
node and on any worker, whatever (if anything) the worker's own installation holds under
`problems`. The digest covers every file's path, mode and bytes, so an edited problem or helper
gets a new folder and a stale one is never used.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from evaluators.problem_imports import builtin_root, layout


@dataclass(frozen=True)
class ProblemBundle:
    digest: str        # sha256 of `data`: the folder's name on every node
    data: bytes        # an uncompressed tar, members sorted, times zeroed
    problem_path: str  # the problem folder inside the unpacked bundle, e.g. `problems/txn`


def bundle_problem(root: Path) -> ProblemBundle:
    """Pack the problem and what it imports deterministically: the same contents always give
    the same digest."""
    found = layout(root)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path, arcname in sorted(found.files.items(), key=lambda item: item[1]):
            info = tar.gettarinfo(str(path), arcname=arcname)
            if not info.isfile():
                continue  # links and devices do not travel; a problem holds plain files
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            with path.open("rb") as handle:
                tar.addfile(info, handle)
    data = buffer.getvalue()
    return ProblemBundle(hashlib.sha256(data).hexdigest(), data, found.problem_path)


def python_path(bundle_root: Path) -> str:
    """The sandbox's PYTHONPATH for a problem unpacked at `bundle_root`: the bundle first (its
    `problems` package wins over any the node has), then the `evaluators` package's folder."""
    return os.pathsep.join([str(bundle_root), str(builtin_root())])


def cache_root() -> Path:
    return Path(tempfile.gettempdir()) / "evolve-problems"


def unpacked_dir(digest: str) -> Path:
    return cache_root() / digest


def unpack(bundle_data: bytes, digest: str) -> Path:
    """The bundle's folder on this machine, unpacked now unless an earlier task did it.

    Unpacked beside its final place and renamed into it, so a concurrent task never sees half a
    folder. Folders are world-readable: the sandbox's unprivileged user reads the problem."""
    target = unpacked_dir(digest)
    if target.is_dir():
        return target
    if hashlib.sha256(bundle_data).hexdigest() != digest:
        raise ValueError(f"problem bundle corrupted in transit (digest {digest[:12]} differs)")
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o755)
    staging = Path(tempfile.mkdtemp(prefix=f".{digest[:12]}-", dir=root))
    try:
        with tarfile.open(fileobj=io.BytesIO(bundle_data), mode="r") as tar:
            tar.extractall(staging, filter="data")
        for folder, _dirs, files in os.walk(staging):
            os.chmod(folder, 0o755)
            for name in files:
                path = Path(folder) / name
                path.chmod(path.stat().st_mode | 0o444)
        try:
            staging.rename(target)
        except OSError:
            if not target.is_dir():  # not "another task won the race"
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target

"""A problem folder as one content-addressed archive, for shipping it to other machines.

The Ray executor puts a problem's bundle into the object store once per run; a worker node
unpacks it once into `<tmp>/evolve-problems/<digest>/` and every later evaluation on that node
reuses the folder. The digest covers every file's path, mode and bytes, so an edited problem
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

_SKIP_DIRS = {"__pycache__", ".git", ".pytest_cache"}


@dataclass(frozen=True)
class ProblemBundle:
    digest: str      # sha256 of `data`: the folder's name on every node
    data: bytes      # an uncompressed tar of the folder, members sorted, times zeroed


def _files(root: Path) -> list[Path]:
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS)
        found += [Path(folder) / name for name in sorted(files) if not name.endswith(".pyc")]
    return found


def bundle_problem(root: Path) -> ProblemBundle:
    """Pack the folder deterministically: the same contents always give the same digest."""
    root = root.resolve()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in _files(root):
            info = tar.gettarinfo(str(path), arcname=str(path.relative_to(root)))
            if not info.isfile():
                continue  # links and devices do not travel; a problem holds plain files
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            with path.open("rb") as handle:
                tar.addfile(info, handle)
    data = buffer.getvalue()
    return ProblemBundle(hashlib.sha256(data).hexdigest(), data)


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

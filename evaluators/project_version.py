"""The version of this project a process runs, as compared between a Ray driver and its workers.

The release number alone cannot tell two checkouts apart (every development install says 0.1.0),
so the version carries a digest of the code a worker actually runs for the driver: the
`evaluators` package (sandbox, harness, executors) and the problem-loading code it imports.
Two nodes with the same version string run the same evaluation code.
"""

from __future__ import annotations

import functools
import hashlib
from importlib import metadata
from pathlib import Path

DISTRIBUTION = "adrs-evolve"
# What runs on a worker: the harness and sandbox, and the problem spec its task receives.
_PACKAGES = ("evaluators", "evolve/problem")


def _release() -> str:
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "unknown"


@functools.cache
def project_version() -> str:
    """`RELEASE+DIGEST`, e.g. `0.1.0+3f2a9c1e04b7`."""
    import evaluators

    root = Path(evaluators.__file__).resolve().parent.parent
    digest = hashlib.sha256()
    for package in _PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            if "__pycache__" in path.parts:
                continue
            digest.update(path.relative_to(root).as_posix().encode() + b"\0")
            digest.update(path.read_bytes() + b"\0")
    return f"{_release()}+{digest.hexdigest()[:12]}"

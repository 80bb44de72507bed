"""The sandboxes' throw-away work folders: `TMPDIR/evolve-sbx-PID-XXXX`, named after the
process that owns them so that a later run can tell which are stale.

A process killed with SIGKILL cannot remove its folders; `sweep_stale_sandboxes()` (called when
a run starts, and reported by `evolve doctor RUN_DIR`) removes those whose owner process is
gone, and never one whose owner still runs. Folders of the older unnamed form
(`evolve-sbx-XXXX`) have no owner to ask: they are removed once older than a day.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from pathlib import Path

from evaluators.proctree import pid_alive

PREFIX = "evolve-sbx-"
_OWNED = re.compile(rf"^{PREFIX}(\d+)-")
UNOWNED_MAX_AGE_S = 24 * 3600


def work_dir_prefix() -> str:
    """The mkdtemp prefix of a sandbox folder owned by this process."""
    return f"{PREFIX}{os.getpid()}-"



def stale_sandbox_dirs(tmp: Path | None = None, now: float | None = None) -> list[Path]:
    """Sandbox folders whose owner process is gone (or, unnamed, older than a day)."""
    tmp = Path(tmp or tempfile.gettempdir())
    now = time.time() if now is None else now
    stale = []
    try:
        entries = list(tmp.iterdir())
    except OSError:
        return []
    for path in entries:
        if not path.name.startswith(PREFIX) or not path.is_dir() or path.is_symlink():
            continue
        owned = _OWNED.match(path.name)
        if owned:
            if not pid_alive(int(owned.group(1))):
                stale.append(path)
            continue
        try:
            if now - path.stat().st_mtime > UNOWNED_MAX_AGE_S:
                stale.append(path)
        except OSError:
            continue
    return sorted(stale)


def sweep_stale_sandboxes(tmp: Path | None = None) -> int:
    """Remove the stale sandbox folders; returns how many were removed."""
    removed = 0
    for path in stale_sandbox_dirs(tmp):
        shutil.rmtree(path, ignore_errors=True)
        removed += not path.exists()
    return removed

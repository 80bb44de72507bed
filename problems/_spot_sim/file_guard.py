"""Keep a policy from reading the evaluation's traces (the future) while it is evaluated.

A policy runs in the evaluator's process, so it could open the trace files and look ahead. An
audit hook (installed when the evaluator is imported, before any candidate; audit hooks
cannot be removed) refuses, while an evaluation is active, to open any file that is one of the
protected files (same inode, whatever the name or link) or carries one of their names, and
refuses to start processes. Outside an evaluation (the evaluator loading its own data, tests)
nothing is refused.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from contextlib import contextmanager
from pathlib import Path

_names: set[str] = set()
_inodes: set[tuple[int, int]] = set()
_active = [False]
_installed = [False]
_PROCESS_EVENTS = frozenset({"subprocess.Popen", "os.system", "os.exec", "os.posix_spawn",
                             "os.spawn", "os.fork", "os.forkpty", "pty.spawn"})


def _audit(event: str, args: tuple) -> None:
    if not _active[0]:
        return
    if event == "open":
        target = args[0] if args else None
        if isinstance(target, (str, bytes, os.PathLike)):
            name = os.path.basename(os.fsdecode(target))
            hit = name in _names
            if not hit:
                try:
                    st = os.stat(target)
                    hit = (st.st_dev, st.st_ino) in _inodes
                except OSError:
                    pass
            if hit:
                raise PermissionError(f"{name}: a policy may not read the evaluation's traces")
    elif event in _PROCESS_EVENTS:
        raise PermissionError(f"{event}: a policy may not start processes during evaluation")


def protect(paths: Iterable[str | Path]) -> None:
    for path in paths:
        path = Path(path)
        _names.add(path.name)
        try:
            st = path.stat()
            _inodes.add((st.st_dev, st.st_ino))
        except OSError:
            pass
    if not _installed[0]:
        sys.addaudithook(_audit)
        _installed[0] = True


@contextmanager
def guarding():
    """Refuse protected reads and process starts inside the block."""
    previous = _active[0]
    _active[0] = True
    try:
        yield
    finally:
        _active[0] = previous

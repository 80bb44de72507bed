"""Hidden evaluation data: files a problem declares in problem.toml (`hidden = [...]`) that the
candidate must never read (test traces, held-out inputs, optimum tables).

The executor opens them outside the sandbox and passes the open descriptors in (EVOLVE_HIDDEN_FDS,
a JSON map from the declared relative path to the descriptor); their paths are not mounted. The
evaluator reads them while it is imported, through `harness_api.hidden_file`; the harness closes
every descriptor before the candidate is imported (and in the supervisor right after the fork),
so the candidate finds neither a path nor a descriptor.

Outside the sandbox (tests, scripts importing evaluate.py) no descriptors are passed and
`hidden_file` opens the file at its path next to the evaluator.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

FDS_VAR = "EVOLVE_HIDDEN_FDS"

_fds: dict[str, int] = {}
_closed = [False]


def _load() -> None:
    raw = os.environ.pop(FDS_VAR, None)
    if raw:
        _fds.update({str(k): int(v) for k, v in json.loads(raw).items()})


_load()


def adopt(fds: dict[str, int]) -> None:
    """Take descriptors received another way than by inheritance (a warm interpreter gets them
    over its control socket), to be read and closed like inherited ones."""
    _fds.update({Path(k).as_posix(): int(v) for k, v in fds.items()})


def sandboxed() -> bool:
    """Whether this process was handed hidden descriptors (it runs in the sandbox)."""
    return bool(_fds) or _closed[0]


def open_hidden(relative: str, problem_dir: Path | None) -> io.BufferedReader:
    """The hidden file `relative` (as declared in problem.toml), opened for binary reading."""
    key = Path(relative).as_posix()
    if key in _fds:
        fd = _fds.pop(key)
        os.lseek(fd, 0, os.SEEK_SET)
        return os.fdopen(fd, "rb")
    if _closed[0]:
        raise RuntimeError(f"hidden file {relative!r} can only be read while the evaluator is "
                           f"imported (load it at module level)")
    if sandboxed():
        raise FileNotFoundError(f"{relative!r} is not declared in problem.toml's `hidden` list")
    if problem_dir is None:
        raise FileNotFoundError(f"{relative!r}: no problem folder to read it from")
    return open(problem_dir / relative, "rb")


def close_all() -> None:
    """Close every hidden descriptor not yet read (before any candidate code runs)."""
    for fd in _fds.values():
        try:
            os.close(fd)
        except OSError:
            pass
    _fds.clear()
    _closed[0] = True


def open_for_child(problem_dir: Path, hidden: list[str] | tuple[str, ...]) -> dict[str, int]:
    """Executor side: open each hidden file read-only; {relative path: descriptor}."""
    fds: dict[str, int] = {}
    try:
        for rel in hidden:
            fds[Path(rel).as_posix()] = os.open(problem_dir / rel, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        for fd in fds.values():
            os.close(fd)
        raise
    return fds

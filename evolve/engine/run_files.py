"""Files of a run directory besides the archive: the effective config and `best/`.

`best/` always holds the best valid program so far (`program<suffix>`) and `result.json`; both
are replaced atomically, so a reader (or a crash) never sees half a file.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evaluators.proctree import pid_alive
from evolve.config import ConfigError

ARCHIVE_NAME = "archive.sqlite"
CONFIG_NAME = "config.toml"
BEST_DIR = "best"
LOCK_NAME = ".lock"
RUN_ID_NAME = "run.json"


@contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """Hold RUN_DIR/.lock for the whole run: the controller must be the archive's only writer,
    so a second `evolve run`/`resume` on the same directory is refused. The OS drops the lock
    when the process dies (kill -9 included), so a crashed run can always be resumed."""
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = path.read_text().strip() or "?"
        os.close(fd)
        raise ConfigError(f"{run_dir} is in use by another evolve process (pid {holder}); wait "
                          f"for it to finish or stop it (Ctrl-C) before resuming") from None
    try:
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def write_run_id(run_dir: Path, run_id: int, archive_where: str) -> None:
    """Record which run of the archive this directory holds: a database shared by several
    runs has many, and `evolve resume RUN_DIR` must continue exactly this one."""
    atomic_write(run_dir / RUN_ID_NAME, json.dumps({"run_id": run_id, "archive": archive_where},
                                                   indent=2) + "\n")


def read_run_id(run_dir: Path) -> int | None:
    """The run id RUN_DIR/run.json records; None for a directory written before it existed."""
    path = run_dir / RUN_ID_NAME
    if not path.is_file():
        return None
    try:
        return int(json.loads(path.read_text())["run_id"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path} is damaged ({exc}); pass the run with --run-id N") from exc


def run_is_live(run_dir: Path) -> bool:
    """Whether an evolve process holds RUN_DIR's lock now. The lock file names the last
    holder's pid: a dead pid means no holder, with no need to touch the lock (so a run starting
    at this moment is never disturbed); a live one is confirmed by a shared-lock probe (the pid
    may have been reused)."""
    path = run_dir / LOCK_NAME
    try:
        text = path.read_text().strip()
    except OSError:
        return False
    if text.isdigit() and not pid_alive(int(text)):
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)



def shown_status(status: str, run_dir: Path | None) -> str:
    """A run's status as users see it: `running` whose lock nobody holds is `crashed` (killed
    without a chance to record its end; `evolve resume` continues it)."""
    if status == "running" and run_dir is not None and not run_is_live(run_dir):
        return "crashed"
    return status


def atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_best(run_dir: Path, suffix: str, code: str, result: dict[str, Any]) -> Path:
    best = run_dir / BEST_DIR
    program = best / f"program{suffix}"
    atomic_write(program, code)
    atomic_write(best / "result.json", json.dumps(result, indent=2, sort_keys=True, default=str))
    return program


@dataclass
class ProgressSnapshot:
    """What the controller publishes after each committed program (and at start and stop).

    The dashboard and the CLI's log lines are built from it; it holds plain data only.
    """

    event: str                    # "start" | "program" | "stop"
    run_id: int
    run_dir: str
    problem: str
    programs_done: int            # candidate programs committed (the initial one excluded)
    programs_budget: int | None
    best_score: float | None
    best_program_id: int | None
    initial_score: float | None
    cost_usd: float
    elapsed_s: float
    proposing: int                # proposals waiting for an operator
    evaluating: int               # programs in the sandbox
    islands: list[dict[str, Any]] = field(default_factory=list)
    last: dict[str, Any] | None = None   # the program just committed (key, score, status...)
    status: str = "running"
    stop_reason: str | None = None
    isolation: str = ""
    # Evaluations in flight per node (the Ray executor's `placement()`; empty when local).
    placement: dict[str, int] = field(default_factory=dict)
    unknown_cost_calls: int = 0   # LLM calls whose price is unknown (never counted as $0)

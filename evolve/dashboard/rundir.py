"""Finding the archive of a run: a run folder, an archive file, or a database URL.

A run folder holds `archive.sqlite` (the default archive) or, for a shared database, a
`config.toml` whose `[archive] url` names it. Commands that take a program id search the current
folder first, then the newest run under `./runs/` (the default place runs are written).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ARCHIVE_FILE = "archive.sqlite"
CONFIG_FILE = "config.toml"
RUN_ID_FILE = "run.json"
DEFAULT_RUNS_FOLDER = "runs"


class RunDirError(ValueError):
    """The place given does not hold a run; the message says what to pass instead."""


@dataclass(frozen=True)
class RunLocation:
    """Where a run's archive lives: a SQLite path or a SQLAlchemy URL, and the folder shown."""

    archive: str
    folder: Path | None
    run_id: int | None = None   # the run the folder records (RUN_DIR/run.json), if any


def _url_from_config(folder: Path) -> str | None:
    config = folder / CONFIG_FILE
    if not config.is_file():
        return None
    try:
        data = tomllib.loads(config.read_text())
    except (tomllib.TOMLDecodeError, OSError):
        return None
    url = data.get("archive", {}).get("url")
    return url if isinstance(url, str) and url else None


def is_run_folder(folder: Path) -> bool:
    return (folder / ARCHIVE_FILE).is_file() or _url_from_config(folder) is not None


def locate(target: str | Path) -> RunLocation:
    """The archive behind a run folder, an archive file or a database URL."""
    text = str(target)
    if "://" in text:
        return RunLocation(archive=text, folder=None)
    path = Path(target).expanduser()
    if path.is_file():
        return RunLocation(archive=str(path), folder=path.parent)
    if path.is_dir():
        if (path / ARCHIVE_FILE).is_file():
            return RunLocation(archive=str(path / ARCHIVE_FILE), folder=path,
                               run_id=_recorded_run_id(path))
        url = _url_from_config(path)
        if url is not None:
            return RunLocation(archive=url, folder=path, run_id=_recorded_run_id(path))
        raise RunDirError(f"{path} holds no run (no {ARCHIVE_FILE} and no [archive] url in "
                          f"{CONFIG_FILE}); pass a run folder, e.g. `evolve runs` lists them")
    raise RunDirError(f"{path} does not exist; pass a run folder (`evolve runs` lists them)")


def _recorded_run_id(folder: Path) -> int | None:
    """Which run of a (maybe shared) database the folder holds: RUN_DIR/run.json."""
    import json

    try:
        return int(json.loads((folder / RUN_ID_FILE).read_text())["run_id"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def find_runs(folder: Path) -> list[Path]:
    """Run folders directly in `folder` (and the folder itself if it is one), newest first."""
    found = [folder] if is_run_folder(folder) else []
    if folder.is_dir():
        found += [child for child in folder.iterdir() if child.is_dir() and is_run_folder(child)]
    return sorted(found, key=_modified, reverse=True)


def _modified(folder: Path) -> float:
    archive = folder / ARCHIVE_FILE
    return (archive if archive.exists() else folder).stat().st_mtime


def default_location(run_dir: str | Path | None) -> RunLocation:
    """`run_dir` if given; else the current folder if it is a run; else the newest under ./runs."""
    if run_dir is not None:
        return locate(run_dir)
    cwd = Path.cwd()
    if is_run_folder(cwd):
        return locate(cwd)
    runs = find_runs(cwd / DEFAULT_RUNS_FOLDER)
    if runs:
        return locate(runs[0])
    raise RunDirError("no run here: pass --run-dir RUN_DIR (or run this inside a run folder; "
                      "`evolve runs FOLDER` lists runs)")


def open_archive(location: RunLocation) -> Any:
    """Open the archive read-side; the controller stays the only writer."""
    from db import Archive  # lazy: the CLI's --help must not pay for SQLAlchemy

    try:
        return Archive.open(location.archive, create=False)
    except Exception as exc:  # ArchiveError, version mismatch, unreachable database
        raise RunDirError(f"cannot open the archive at {location.archive}: {exc}") from exc


def pick_run(archive: Any, run_id: int | None = None) -> int:
    """`run_id` if the archive has it, else the newest run in it."""
    ids = sorted(int(_field(r, "id")) for r in archive.runs())
    if not ids:
        raise RunDirError("the archive holds no run yet; start one with `evolve run`")
    if run_id is None:
        return ids[-1]
    if run_id not in ids:
        raise RunDirError(f"run {run_id} is not in this archive (it has runs "
                          f"{', '.join(map(str, ids))})")
    return run_id


def _field(record: Any, name: str) -> Any:
    return record[name] if isinstance(record, dict) else getattr(record, name)

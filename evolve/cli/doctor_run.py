"""`evolve doctor RUN_DIR`: checks of one run directory — archive integrity, the run lock, the
isolation the run used (against what this machine offers now), and stale sandbox folders."""

from __future__ import annotations

import fcntl
import os
import sqlite3
from pathlib import Path
from typing import Any

from evaluators.isolation import detect_isolation
from evaluators.sandbox_dirs import stale_sandbox_dirs
from evolve.cli.doctor_check import Check
from evolve.dashboard.rundir import RunDirError, locate, open_archive
from evolve.engine.run_files import LOCK_NAME

ISOLATION_STRENGTH = {"rlimits": 0, "unshare": 1, "bwrap": 2}


def check_archive_file(archive: str) -> Check:
    """SQLite's own integrity check (quick_check reads every page, and is much faster than
    integrity_check on a large archive); a database URL is checked by opening it."""
    if "://" in archive:
        return Check("archive", "ok", f"database URL {archive.split('@')[-1]} (opened below)")
    try:
        with sqlite3.connect(f"file:{archive}?mode=ro", uri=True, timeout=5) as db:
            rows = [r[0] for r in db.execute("PRAGMA quick_check").fetchall()]
    except sqlite3.Error as exc:
        return Check("archive", "fail", f"{archive}: {exc}",
                     "the file is damaged or not an archive; restore it from a copy")
    if rows != ["ok"]:
        return Check("archive", "fail", f"{archive}: " + "; ".join(rows[:3]),
                     "the archive is damaged: copy out what `evolve best` can still read")
    return Check("archive", "ok", f"{archive}: integrity ok")


def check_runs(archive: Any) -> tuple[list[Check], str | None]:
    """What the archive holds; the isolation the last run used."""
    runs = archive.runs()
    if not runs:
        return [Check("runs", "warn", "the archive holds no run",
                      "a run killed before its first write; `evolve run` may reuse the folder")], None
    run = runs[-1]
    programs = archive.programs(run.id)
    # The budget counts evaluated programs; duplicates and rejected proposals are kept too.
    evaluated = sum(1 for p in programs if p.status == "evaluated")
    return [Check("runs", "ok", f"{len(runs)} run(s); the last, run {run.id} on {run.problem}, "
                  f"is {run.status} with {evaluated} evaluated programs "
                  f"({len(programs)} proposals recorded)")], run.isolation


def check_lock(folder: Path) -> Check:
    """Whether a live process holds RUN_DIR/.lock (flock: the OS drops it when that dies)."""
    path = folder / LOCK_NAME
    if not path.exists():
        return Check("lock", "ok", "no lock file: no process has this run open")
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        return Check("lock", "warn", f"cannot open {path}: {exc}")
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = path.read_text().strip() or "?"
        return Check("lock", "ok", f"held by a running evolve process (pid {holder})",
                     "`evolve resume` waits for it to end (Ctrl-C stops it)")
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
    return Check("lock", "ok", "free: no process has this run open (`evolve resume` can continue it)")


def check_isolation_used(used: str | None) -> Check:
    if not used:
        return Check("isolation used", "warn", "not recorded")
    try:
        here, _ = detect_isolation()
    except Exception as exc:   # a probe failure is a finding
        return Check("isolation used", "warn", f"{used}; this machine could not be probed: {exc}")
    if ISOLATION_STRENGTH.get(here, 0) < ISOLATION_STRENGTH.get(used, 0):
        return Check("isolation used", "warn", f"{used}, but this machine offers only {here}",
                     "a resume here evaluates with weaker isolation; install bubblewrap")
    level = "warn" if used == "rlimits" else "ok"
    return Check("isolation used", level, f"{used} (this machine: {here})",
                 "limits only: candidates had network and file-system access" if level == "warn"
                 else "")


def check_stale_sandboxes() -> Check:
    stale = stale_sandbox_dirs()
    if not stale:
        return Check("stale sandboxes", "ok", "none")
    return Check("stale sandboxes", "warn",
                 f"{len(stale)} folder(s) of processes that no longer run, e.g. {stale[0]}",
                 "the next `evolve run` or `evolve resume` removes them")


def run_dir_checks(target: str) -> list[Check]:
    """Every check of a run directory (an archive file or a database URL works too); raises
    RunDirError when `target` holds no run."""
    location = locate(target)
    checks = [check_archive_file(location.archive)]
    if checks[0].level == "fail":
        return checks
    archive = open_archive(location)
    try:
        run_checks, isolation_used = check_runs(archive)
    finally:
        archive.close()
    checks += run_checks
    if location.folder is not None:
        checks.append(check_lock(location.folder))
    checks += [check_isolation_used(isolation_used), check_stale_sandboxes()]
    return checks


__all__ = ["RunDirError", "run_dir_checks"]

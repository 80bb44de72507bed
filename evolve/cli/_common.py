"""Helpers shared by the inspection commands: opening a run, errors with exit codes, output.

Exit codes: 0 success, 1 the run failed, 2 usage or configuration error. Output goes through a
rich Console, which writes plain text when it is piped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, NoReturn

import typer
from rich.console import Console

from evolve.dashboard.rundir import (
    RunDirError,
    RunLocation,
    default_location,
    open_archive,
    pick_run,
)

EXIT_OK, EXIT_RUN_FAILED, EXIT_USAGE = 0, 1, 2
FAILED_STATUSES = frozenset({"failed", "error", "crashed"})

RUN_DIR_HELP = "run folder, archive file or database URL (default: this folder, else the newest run under ./runs)"


def out(wide: bool = False) -> Console:
    """Console for results. `wide`: when piped, tables get 200 columns instead of rich's 80 so
    rows stay on one line for grep and awk."""
    console = Console(highlight=False, soft_wrap=False)
    if wide and not console.is_terminal:
        console = Console(highlight=False, soft_wrap=False, width=200)
    return console


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


@dataclass
class OpenRun:
    location: RunLocation
    archive: Any
    run_id: int


def open_run(run_dir: str | None, *, run_id: int | None = None) -> OpenRun:
    """Open the run a command is about, or exit 2 saying what to pass."""
    try:
        location = default_location(run_dir)
        archive = open_archive(location)
        chosen = run_id if run_id is not None else location.run_id
        return OpenRun(location, archive, pick_run(archive, chosen))
    except RunDirError as exc:
        fail(str(exc))


def examples(*lines: str) -> str:
    """A typer epilog listing example invocations, one per line."""
    return "Examples:\n\n" + "\n\n".join(f"  {line}" for line in lines)

"""Helpers shared by the inspection commands: opening a run, errors with exit codes, output.

Exit codes: 0 success, 1 the run failed, 2 usage or configuration error. Output goes through a
rich Console, which writes plain text when it is piped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Any, NoReturn

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

# Every command that is about a run takes it the same way: `--run-dir/-r DIR` (and, where no
# other argument comes first, as the positional RUN_DIR too).
RunDirOption = Annotated[str | None, typer.Option(
    "--run-dir", "-r", help=RUN_DIR_HELP + "; the same as the RUN_DIR argument",
    show_default=False)]

# A run directory as `evolve run` names it by default (runs/PROBLEM-YYYYMMDD-HHMMSS), for the
# examples in every --help.
EXAMPLE_RUN = "runs/circle_packing-20261206-142233"


def run_dir_of(argument: str | None, option: str | None) -> str | None:
    """The run named by the positional RUN_DIR or by --run-dir (both, and different: exit 2)."""
    if argument is not None and option is not None and argument != option:
        fail(f"the run is named twice, as {argument} and as --run-dir {option}; give one")
    return option if option is not None else argument


# Piped output is never cut or wrapped to a terminal's width (rich would assume 80 columns):
# lines are as long as their content, so grep and awk see whole items.
PIPE_WIDTH = 10_000


def out() -> Console:
    """Console for results: the terminal's width on a terminal; piped, wide enough that
    nothing wraps (tables keep each row on one line)."""
    console = Console(highlight=False, soft_wrap=False)
    if not console.is_terminal:
        console = Console(highlight=False, soft_wrap=False, width=PIPE_WIDTH)
    return console


def section(console: Console, title: str) -> None:
    """A titled divider: a rule on a terminal, a plain `--- title ---` line when piped."""
    if console.is_terminal:
        console.rule(title)
    else:
        console.print(f"--- {title} ---", markup=False)


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

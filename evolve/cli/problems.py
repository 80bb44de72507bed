"""`evolve problems ...`: the command group for problem plugins.

Commands are added to `problems_app` by this module (`list`, `new`) and by others (e.g. `check`
lives with the evaluation code in `evolve/cli/check.py`)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from evolve.problem.discovery import ProblemEntry, scan_problems
from evolve.problem.scaffold import write_skeleton
from evolve.problem.spec import ProblemError

problems_app = typer.Typer(help="List, create and check problem plugins.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(problems_app, name="problems")


def _summary(text: str, width: int = 70) -> str:
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 3].rstrip() + "..."


def _entry_json(entry: ProblemEntry) -> dict[str, object]:
    spec = entry.spec
    return {
        "name": entry.name,
        "source": entry.source,
        "location": entry.location,
        "description": spec.description.strip() if spec else None,
        "gpu": spec.gpu.value if spec else None,
        "requires": list(spec.config.problem.requires) if spec else [],
        "stages": [s.name for s in spec.stages] if spec else [],
        "usable": entry.usable,
        "reason": entry.reason,
    }


def _rows(entries: list[ProblemEntry]) -> list[tuple[str, str, str, str, str]]:
    rows = []
    for e in entries:
        gpu = e.spec.gpu.value if e.spec else "?"
        status = "ok" if e.usable else f"unusable: {e.reason}"
        about = _summary(e.spec.description) if e.spec else ""
        rows.append((e.name, e.source, gpu, about, status))
    return rows


@problems_app.command("list", epilog="Examples:\n\n  evolve problems list\n\n"
                      "  evolve problems list --json")
def list_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """List built-in and installed problems: name, source, description, GPU need, usability."""
    entries = scan_problems()
    if as_json:
        typer.echo(json.dumps([_entry_json(e) for e in entries], indent=2))
        return
    if not entries:
        typer.echo("No problems found. Create one with `evolve problems new NAME`.")
        return
    rows = _rows(entries)
    header = ("NAME", "SOURCE", "GPU", "DESCRIPTION", "STATUS")
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text

        table = Table(*header, show_lines=False)
        for row in rows:
            # Text cells: descriptions come from problems and are not markup.
            table.add_row(*(Text(cell) for cell in row),
                          style=None if row[4] == "ok" else "yellow")
        Console().print(table)
        return
    # Piped: plain aligned text, no colours or box drawing (easy to grep and cut).
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    for row in [header, *rows]:
        cells = [row[i].ljust(widths[i]) for i in range(4)]
        typer.echo("  ".join([*cells, row[4]]).rstrip())


@problems_app.command("new", epilog="Examples:\n\n  evolve problems new my_sched\n\n"
                      "  evolve problems new my_sched --dir ~/problems")
def new_command(
    name: Annotated[str, typer.Argument(help="Name of the new problem (a Python identifier).")],
    directory: Annotated[Path, typer.Option("--dir", help="Folder to create it in.")] = Path("."),
) -> None:
    """Write a working problem skeleton (problem.toml, initial.py, evaluate.py, baselines/,
    README.md) into DIR/NAME."""
    try:
        spec = write_skeleton(name, directory)
    except ProblemError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(f"Created problem '{spec.name}' in {spec.root}")
    typer.echo("Next: edit problem.toml, initial.py and evaluate.py for your task, then")
    typer.echo(f"  evolve problems check {spec.root}    # validate and score initial + baselines")
    typer.echo(f"  evolve run {spec.root}               # evolve it")

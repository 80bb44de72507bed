"""`evolve problems ...`: the command group for problem plugins.

Commands are added to `problems_app` by this module and by others (e.g. `check` lives with the
evaluation code in `evolve/cli/check.py`)."""

from __future__ import annotations

import typer

problems_app = typer.Typer(help="List, create and check problem plugins.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(problems_app, name="problems")

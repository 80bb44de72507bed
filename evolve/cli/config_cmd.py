"""`evolve config show`: print the effective configuration (defaults < file < --set) as TOML."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from evolve.cli.config_doc import documented_toml
from evolve.config import ConfigError, load_config

config_app = typer.Typer(help="Inspect the run configuration.", no_args_is_help=True)

ConfigOption = Annotated[
    Path | None, typer.Option("--config", "-c", help="TOML file with configuration.")]
SetOption = Annotated[
    list[str] | None,
    typer.Option("--set", "-s", metavar="KEY=VALUE",
                 help="Override one key, e.g. --set budget.max_programs=50 (repeatable)."),
]


def register(app: typer.Typer) -> None:
    app.add_typer(config_app, name="config")


@config_app.command("show", epilog=(
    "Examples:\n\n  evolve config show\n\n  evolve config show -c my-run.toml\n\n"
    "  evolve config show -s budget.max_programs=50 -s seed=3"))
def show_command(config: ConfigOption = None, overrides: SetOption = None) -> None:
    """Print the effective configuration as TOML, every key (unset ones as comments saying
    what unset means); an invalid one exits with code 2."""
    try:
        cfg = load_config(config, overrides or [])
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(documented_toml(cfg), nl=False)

"""The `evolve` command. Each command group lives in its own module under `evolve/cli/` and
registers itself through `register(app)`; this file only assembles them.

Exit codes: 0 success, 1 the run (or the checked thing) failed, 2 usage or configuration error.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import Annotated

import typer
from typer.core import TyperOption

from evaluators.isolation import protect_this_process

app = typer.Typer(
    name="evolve",
    help="ADRS Evolve: evolve programs with LLMs, evaluate them in a sandbox, keep everything "
         "in an archive.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Modules that add commands; each defines register(app: typer.Typer) -> None.
COMMAND_MODULES: list[str] = [
    "problems",
    "config_cmd",
    "evaluate",
    "check",
    "models",
    "run_cmd",
    "inspect",
    "plot_cmd",
    "doctor",
    "dashboard_cmd",
]

def _package_version() -> str:
    try:
        return version("adrs-evolve")
    except PackageNotFoundError:   # run from a checkout that was never installed
        return "unknown (not installed)"


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"evolve (adrs-evolve) {_package_version()}")
        raise typer.Exit(0)


@app.callback()
def _main_options(
    show_version: Annotated[bool, typer.Option(
        "--version", help="Print the version and exit.", callback=_print_version,
        is_eager=True)] = False,
) -> None:
    """ADRS Evolve: evolve programs with LLMs, evaluate them in a sandbox, keep everything in
    an archive. Exit codes of every command: 0 success, 1 the run (or the checked thing) did
    not complete or failed, 2 usage or configuration error."""


# typer shows a value placeholder for every option, "<bool>" for on/off flags too, which reads
# as if `--no-live <bool>` wanted a value. Flags take none: show no placeholder for them.
_typer_display_type = TyperOption.display_type_rich


def _display_type_without_flag_placeholder(self: TyperOption, ctx: object) -> str | None:
    if self.is_flag and self.metavar is None:
        return None
    return _typer_display_type(self, ctx)  # type: ignore[arg-type]


TyperOption.display_type_rich = _display_type_without_flag_placeholder  # type: ignore[method-assign]

for _name in COMMAND_MODULES:
    importlib.import_module(f"evolve.cli.{_name}").register(app)


def main() -> None:
    # Non-dumpable: a candidate running as our uid cannot read our environment (API keys) or
    # memory through /proc/<pid>/ (evaluators.isolation.exposure says where this matters).
    protect_this_process()
    try:
        app()
    except Exception as exc:
        # An unreachable server, a wrong password, a missing database: one line, exit 2
        # (a configuration error), whichever command met it. (db is imported only here: the
        # CLI's --help must not pay for SQLAlchemy.)
        from db.errors import ArchiveUnreachable  # lazy: db pulls in SQLAlchemy

        if not isinstance(exc, ArchiveUnreachable):
            raise
        typer.echo(f"error: {exc}", err=True)
        raise SystemExit(2) from None

"""The `evolve` command. Each command group lives in its own module under `evolve/cli/` and
registers itself through `register(app)`; this file only assembles them.

Exit codes: 0 success, 1 the run (or the checked thing) failed, 2 usage or configuration error.
"""

from __future__ import annotations

import importlib

import typer

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

for _name in COMMAND_MODULES:
    importlib.import_module(f"evolve.cli.{_name}").register(app)


def main() -> None:
    from evaluators.isolation import protect_this_process

    # Non-dumpable: a candidate running as our uid cannot read our environment (API keys) or
    # memory through /proc/<pid>/ (evaluators.isolation.exposure says where this matters).
    protect_this_process()
    app()

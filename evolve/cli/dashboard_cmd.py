"""`evolve dashboard [RUN_DIR]`: the read-only terminal dashboard (Textual)."""

from __future__ import annotations

from typing import Annotated

import typer

from evolve.cli._common import (
    EXAMPLE_RUN,
    RUN_DIR_HELP,
    RunDirOption,
    examples,
    open_run,
    run_dir_of,
)


def dashboard(
    run_dir: Annotated[str | None, typer.Argument(help=RUN_DIR_HELP, show_default=False)] = None,
    run_dir_option: RunDirOption = None,
    run_id: Annotated[int | None, typer.Option(help="run id inside a shared archive")] = None,
    refresh: Annotated[float, typer.Option(min=0.2, help="seconds between archive reloads")] = 2.0,
) -> None:
    """Browse a run in the terminal: programs, lineage, code, diffs, prompts, arms, failures.

    Read-only; it reloads the archive on a timer, so it can watch a run that is still going.
    Keys are listed in the footer; q quits."""
    opened = open_run(run_dir_of(run_dir, run_dir_option), run_id=run_id)
    from evolve.dashboard.app import DashboardApp  # Textual loads only when it is needed

    DashboardApp(opened.archive, opened.run_id, refresh_s=refresh).run()


def register(app: typer.Typer) -> None:
    app.command(epilog=examples(f"evolve dashboard {EXAMPLE_RUN}",
                                "evolve dashboard            # newest run under ./runs",
                                f"evolve dashboard -r {EXAMPLE_RUN} --refresh 5"))(dashboard)

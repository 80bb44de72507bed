"""`evolve plot`: best score against programs evaluated and against dollars, one line per
operator, written as a PNG with matplotlib (headless Agg backend)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from evolve.cli._common import (
    EXAMPLE_RUN,
    RUN_DIR_HELP,
    RunDirOption,
    examples,
    fail,
    open_run,
    run_dir_of,
)
from evolve.dashboard.data import RunData, load_run
from evolve.dashboard.stats import best_history, best_vs_dollars, operator_series


def draw(data: RunData, path: Path, *, width_in: float = 11.0, height_in: float = 4.5,
         dpi: int = 100) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = operator_series(data.programs)
    total_spent = sum(p.cost_usd for p in data.programs)
    for points in series.values():    # carry each operator's best to the end of the run
        if points[-1][0] < len(data.programs):
            points.append((len(data.programs), total_spent, points[-1][2]))
    overall = best_history(data.programs)
    dollars = best_vs_dollars(data.programs)
    figure, (by_count, by_cost) = plt.subplots(1, 2, figsize=(width_in, height_in), dpi=dpi)
    try:
        offset = len(data.programs) - len(overall)
        by_count.step(range(offset + 1, len(data.programs) + 1), overall, where="post",
                      color="black", linewidth=2.2, label="best overall")
        for name, points in sorted(series.items()):
            by_count.step([n for n, _, _ in points], [s for _, _, s in points], where="post",
                          marker="o", markersize=3, label=name)
        by_count.set_xlabel("programs evaluated")
        by_count.set_ylabel("best score so far")
        by_count.set_title("score vs programs")
        by_count.grid(alpha=0.3)
        by_count.legend(fontsize="small", loc="lower right")

        if dollars and dollars[-1][0] > 0:
            by_cost.step([x for x, _ in dollars], [y for _, y in dollars], where="post",
                         color="black", linewidth=2.2, label="best overall")
            for name, points in sorted(series.items()):
                by_cost.step([d for _, d, _ in points], [s for _, _, s in points], where="post",
                             marker="o", markersize=3, label=name)
            by_cost.legend(fontsize="small", loc="lower right")
        else:
            by_cost.text(0.5, 0.5, "no LLM spend recorded\n(offline operators or unknown prices)",
                         ha="center", va="center", transform=by_cost.transAxes)
        by_cost.set_xlabel("dollars spent (USD)")
        by_cost.set_ylabel("best score so far")
        by_cost.set_title("score vs dollars")
        by_cost.grid(alpha=0.3)
        figure.suptitle(f"{data.run.problem} — {data.run.label} ({data.evaluated} evaluated)")
        figure.tight_layout()
        figure.savefig(path, format="png")
    finally:
        plt.close(figure)


PLOT_NAME = "plot.png"


def plot(
    run_dir: Annotated[str | None, typer.Argument(help=RUN_DIR_HELP, show_default=False)] = None,
    run_dir_option: RunDirOption = None,
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help=f"PNG file to write (default: RUN_DIR/{PLOT_NAME}, next to the "
                               f"run's archive)", show_default=False)] = None,
    run_id: Annotated[int | None, typer.Option(help="run id inside a shared archive")] = None,
) -> None:
    """Plot the best score against programs evaluated and against dollars spent, into the run
    directory (or -o FILE.png); prints where it wrote."""
    if output is not None and output.suffix.lower() != ".png":
        fail(f"--output must end in .png (got {output})")
    opened = open_run(run_dir_of(run_dir, run_dir_option), run_id=run_id)
    data = load_run(opened.archive, opened.run_id)
    if not best_history(data.programs):
        fail(f"run {data.run.id} has no valid program to plot yet", 1)
    if output is None:
        # A run kept in a database has no folder: the plot goes to the current one.
        folder = opened.location.folder
        output = (Path(folder) if folder else Path(".")) / (
            PLOT_NAME if folder else f"plot-run-{data.run.id}.png")
    output.parent.mkdir(parents=True, exist_ok=True)
    draw(data, output)
    typer.echo(f"wrote {output}")


def register(app: typer.Typer) -> None:
    app.command(epilog=examples(f"evolve plot {EXAMPLE_RUN}            # writes "
                                f"{EXAMPLE_RUN}/{PLOT_NAME}",
                                f"evolve plot {EXAMPLE_RUN} -o progress.png"))(plot)

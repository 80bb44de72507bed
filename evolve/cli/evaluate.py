"""`evolve eval PROBLEM PROGRAM_FILE [--stage S] [--json]`: evaluate one program exactly as a run
would (same sandbox, same cascade) and print the result. Exit 0 when the program is valid, 1
when it is not (the checked thing failed), 2 for usage errors (unknown problem, missing file,
unknown stage).

On a terminal the stages are a table; piped (or narrower than a table needs) they are plain
lines, one metric per line, so nothing is squeezed into a column a few characters wide."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from evaluators.executors import LocalExecutor
from evaluators.isolation import IsolationUnavailable
from evaluators.result import EvalResult
from evolve.problem.spec import ProblemError, ProblemSpec, load_problem

# soft_wrap: a line is never broken at the terminal's (or a pipe's assumed 80) width; the
# terminal wraps what is too long for it, a pipe gets the whole line.
console = Console(soft_wrap=True)


def resolve_problem(name_or_path: str) -> ProblemSpec:
    """A problem by path, or by name once discovery is available; exits 2 when not found."""
    try:
        try:
            from evolve.problem.discovery import find_problem  # type: ignore[import-not-found]
        except ImportError:
            if not Path(name_or_path).is_dir():
                raise ProblemError(f"problem '{name_or_path}' not found: give the path of a "
                                   f"problem folder (one holding problem.toml)") from None
            return load_problem(name_or_path)
        return find_problem(name_or_path)
    except (ProblemError, LookupError) as exc:
        console.print(Text.assemble(("error:", "red"), f" {exc}"))
        raise typer.Exit(2) from exc


def make_local_executor(isolation: str, max_parallel: int | None = None) -> LocalExecutor:
    try:
        return LocalExecutor(max_parallel=max_parallel, isolation=isolation)
    except IsolationUnavailable as exc:
        console.print(Text.assemble(("error:", "red"), f" {exc}"))
        raise typer.Exit(2) from exc


def result_dict(result: EvalResult) -> dict[str, Any]:
    """The JSON form: summary fields first, then every stage."""
    return {"score": result.score, "valid": result.valid,
            "failure": result.failure.value if result.failure else None,
            "reason": result.reason if result.failure else "",
            "stage_reached": result.stage_reached, "wall_s": result.wall_s,
            "metrics": result.metrics,
            "isolation": result.last.isolation if result.last else "",
            "stages": [s.model_dump(mode="json") for s in result.stages]}


def _metrics_text(metrics: dict[str, Any], shown: Sequence[str] = (), width: int = 160) -> str:
    """The problem's `[metrics] shown` first, in its order, then the rest alphabetically, so the
    metrics that matter survive the cut to `width`."""
    def show(value: Any) -> str:
        return f"{value:.4g}" if isinstance(value, float) else json.dumps(value, default=str)

    order = [k for k in shown if k in metrics] + sorted(k for k in metrics if k not in shown)
    text = ", ".join(f"{key}={show(metrics[key])}" for key in order)
    return text if len(text) <= width else text[: width - 3] + "..."


def _show(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else json.dumps(value, default=str)


def stage_lines(title: str, results: dict[str, EvalResult],
                shown: Sequence[str] = ()) -> list[str]:
    """The stages as plain lines (for pipes and narrow terminals): one line per stage, then
    one line per metric, the problem's `[metrics] shown` first."""
    lines = [title]
    for program, result in results.items():
        for stage in result.stages:
            score = "-" if stage.score is None else f"{stage.score:.6g}"
            lines.append(f"{program} stage {stage.stage}: score {score}, "
                         f"{'valid' if stage.valid else 'not valid'}, {stage.wall_s:.2f}s")
            if stage.failure:
                lines.append(f"  failure: {stage.failure.value}: {stage.reason}")
            order = [k for k in shown if k in stage.metrics] + sorted(
                k for k in stage.metrics if k not in shown)
            lines += [f"  {key} = {_show(stage.metrics[key])}" for key in order]
    return lines


def print_stages(title: str, results: dict[str, EvalResult], shown: Sequence[str] = ()) -> None:
    """A table on a terminal wide enough for one; plain lines otherwise."""
    if console.is_terminal and console.width >= 100:
        console.print(stage_table(title, results, shown), soft_wrap=False)
        return
    for line in stage_lines(title, results, shown):
        console.print(line, markup=False, highlight=False, soft_wrap=True)


def stage_table(title: str, results: dict[str, EvalResult], shown: Sequence[str] = ()) -> Table:
    table = Table(title=Text(title))
    for column in ("program", "stage", "score", "valid"):
        table.add_column(column, no_wrap=True)
    for column in ("metrics", "time (s)", "failure / reason"):
        table.add_column(column, overflow="fold")
    for program, result in results.items():
        for stage in result.stages:
            score = "-" if stage.score is None else f"{stage.score:.6g}"
            failure = f"{stage.failure.value}: {stage.reason}" if stage.failure else ""
            # Text, not str: metric names and reasons come from the problem and the candidate,
            # and rich would read "[us-west-2a_k80_1]" in them as markup and drop it.
            table.add_row(Text(program), Text(stage.stage), score, "yes" if stage.valid else "no",
                          Text(_metrics_text(stage.metrics, shown)), f"{stage.wall_s:.2f}",
                          Text(failure))
    return table


def eval_command(
    problem: Annotated[str, typer.Argument(help="problem name or folder")],
    program_file: Annotated[Path, typer.Argument(help="the program to evaluate")],
    stage: Annotated[list[str] | None, typer.Option("--stage",
                     help="run only these stages (repeatable); default: the whole cascade")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the result as JSON")] = False,
    isolation: Annotated[str, typer.Option(help="auto, bwrap, unshare or rlimits")] = "auto",
) -> None:
    """Evaluate one program exactly as a run would and print the result."""
    spec = resolve_problem(problem)
    if not program_file.is_file():
        console.print(Text.assemble(("error:", "red"), f" program file {program_file} not found"))
        raise typer.Exit(2)
    executor = make_local_executor(isolation, max_parallel=1)

    async def run() -> EvalResult:
        try:
            return await executor.evaluate(spec, program_file.read_text(), stages=stage)
        finally:
            await executor.aclose()

    try:
        result = asyncio.run(run())
    except ValueError as exc:  # an unknown --stage
        console.print(Text.assemble(("error:", "red"), f" {exc}"))
        raise typer.Exit(2) from exc
    if as_json:
        print(json.dumps(result_dict(result), indent=2))
        if not result.valid:
            raise typer.Exit(1)
        return
    print_stages(f"{spec.name}: {program_file}", {program_file.name: result},
                 spec.config.metrics.shown)
    last = result.last
    if last is not None:
        if result.feedback:
            console.print(f"feedback: {result.feedback}", markup=False, highlight=False)
        if last.stderr.strip():
            console.print(f"stderr (last lines):\n{_tail(last.stderr)}", markup=False)
    verdict = (f"[green]valid[/], score {result.score:.6g}" if result.valid
               else f"[red]not valid[/] ({result.failure.value if result.failure else 'no result'})")
    console.print(f"{verdict}; isolation: {executor.isolation_description}")
    if not result.valid:
        raise typer.Exit(1)


def _tail(text: str, lines: int = 8) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def register(app: typer.Typer) -> None:
    app.command("eval", epilog=(
        "Examples:\n\n  evolve eval circle_packing problems/circle_packing/initial.py\n\n"
        "  evolve eval circle_packing mine.py --stage quick --json\n\n"
        "  evolve best runs/circle_packing-20261206-142233 --export p.py && "
        "evolve eval circle_packing p.py"))(eval_command)

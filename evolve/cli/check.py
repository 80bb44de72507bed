"""`evolve problems check PATH [--json]`: validate a problem folder, then score its initial
program and every baseline through the real sandboxed executor and print every stage.

Exit 0 when the initial program and all baselines are valid, 1 when one is not (the problem
needs fixing), 2 when the folder itself is not a valid problem."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

import typer
from rich.text import Text

from evaluators.result import EvalResult
from evolve.cli.evaluate import (
    console,
    make_local_executor,
    print_stages,
    resolve_problem,
    result_dict,
)
from evolve.cli.problems import problems_app
from evolve.problem.spec import EVOLVE_BLOCK_END, EVOLVE_BLOCK_START, ProblemSpec


def _warnings(spec: ProblemSpec) -> list[str]:
    notes = []
    code = spec.initial_code()
    if EVOLVE_BLOCK_START not in code or EVOLVE_BLOCK_END not in code:
        notes.append(f"{spec.initial_path.name} has no {EVOLVE_BLOCK_START}/{EVOLVE_BLOCK_END} "
                     f"markers: the whole file will be evolved")
    if not (spec.root / "README.md").is_file():
        notes.append("no README.md: say what the problem is and the baselines' scores")
    if not spec.baselines():
        notes.append("no baselines/: add the human reference programs to compare against")
    return notes


async def check_problem(spec: ProblemSpec, isolation: str = "auto") -> dict[str, EvalResult]:
    """Evaluate the initial program and every baseline (concurrently) through the executor."""
    programs = {"initial": spec.initial_code()}
    programs.update({f"baseline:{name}": path.read_text()
                     for name, path in spec.baselines().items()})
    executor = make_local_executor(isolation)
    try:
        results = await asyncio.gather(*(executor.evaluate(spec, code)
                                         for code in programs.values()))
    finally:
        await executor.aclose()
    return dict(zip(programs, results, strict=True))


def check_command(
    path: Annotated[str, typer.Argument(help="problem folder (or name)")],
    as_json: Annotated[bool, typer.Option("--json", help="print the results as JSON")] = False,
    isolation: Annotated[str, typer.Option(help="auto, bwrap, unshare or rlimits")] = "auto",
) -> None:
    """Validate a problem and score its initial program and baselines in the sandbox."""
    spec = resolve_problem(path)
    warnings = _warnings(spec)
    if not as_json:
        console.print(f"checking problem '{spec.name}' at {spec.root} "
                      f"({len(spec.baselines()) + 1} programs, {len(spec.stages)} stages)...",
                      markup=False, highlight=False)
    results = asyncio.run(check_problem(spec, isolation))
    failed = [name for name, result in results.items() if not result.valid]
    if as_json:
        print(json.dumps({"problem": spec.name, "root": str(spec.root), "ok": not failed,
                          "warnings": warnings,
                          "programs": {n: result_dict(r) for n, r in results.items()}}, indent=2))
    else:
        print_stages(f"problem {spec.name}", results, spec.config.metrics.shown)
        for note in warnings:
            console.print(Text.assemble(("warning:", "yellow"), f" {note}"))
        if failed:
            console.print(f"[red]not valid:[/] {', '.join(failed)}; fix the evaluator or these "
                          f"programs (see the reasons above)")
        else:
            console.print("[green]ok:[/] every program is valid")
    if failed:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    problems_app.command("check")(check_command)

"""`evolve problems check PATH [--json] [--repeat K]`: validate a problem folder, then score its
initial program and every baseline through the real sandboxed executor and print every stage.

Exit 0 when the initial program and all baselines are valid, reach the last stage and carry the
`[metrics]` names; 1 when one does not (the problem needs fixing), 2 when the folder itself is
not a valid problem. `--repeat K` evaluates every program K times and reports its score's
spread (the problem's noise)."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

import typer
from rich.text import Text

from evaluators.result import EvalResult
from evolve.cli.check_findings import missing_metrics, spread, stopped_at_gate
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
    repeated = await check_problem_repeated(spec, isolation, repeat=1)
    return {name: results[0] for name, results in repeated.items()}


async def check_problem_repeated(spec: ProblemSpec, isolation: str = "auto",
                                 repeat: int = 1) -> dict[str, list[EvalResult]]:
    """Evaluate the initial program and every baseline `repeat` times each (concurrently)."""
    programs = {"initial": spec.initial_code()}
    programs.update({f"baseline:{name}": path.read_text()
                     for name, path in spec.baselines().items()})
    executor = make_local_executor(isolation)
    try:
        results = await asyncio.gather(*(executor.evaluate(spec, code)
                                         for code in programs.values() for _ in range(repeat)))
    finally:
        await executor.aclose()
    return {name: list(results[i * repeat:(i + 1) * repeat])
            for i, name in enumerate(programs)}


def check_command(
    path: Annotated[str, typer.Argument(help="problem folder (or name)")],
    as_json: Annotated[bool, typer.Option("--json", help="print the results as JSON")] = False,
    isolation: Annotated[str, typer.Option(help="auto, bwrap, unshare or rlimits")] = "auto",
    repeat: Annotated[int, typer.Option(
        "--repeat", min=1, help="evaluate every program K times and report its score's spread "
                                "(the problem's noise)")] = 1,
) -> None:
    """Validate a problem and score its initial program and baselines in the sandbox."""
    spec = resolve_problem(path)
    warnings = _warnings(spec)
    if not as_json:
        console.print(f"checking problem '{spec.name}' at {spec.root} "
                      f"({len(spec.baselines()) + 1} programs x {repeat}, "
                      f"{len(spec.stages)} stages)...", markup=False, highlight=False)
    repeated = asyncio.run(check_problem_repeated(spec, isolation, repeat))
    # Every repeat counts: a program is shown by its first invalid evaluation, if any.
    results = {name: next((r for r in runs if not r.valid), runs[0])
               for name, runs in repeated.items()}
    invalid = {name: [(i, r) for i, r in enumerate(runs, 1) if not r.valid]
               for name, runs in repeated.items()}
    failed = [name for name, found in invalid.items() if found]
    problems = list(dict.fromkeys(
        line for i in range(repeat) for line in
        missing_metrics(spec, {n: runs[i] for n, runs in repeated.items()})
        + stopped_at_gate(spec, {n: runs[i] for n, runs in repeated.items()})))
    spreads = {name: spread(runs) for name, runs in repeated.items()} if repeat > 1 else {}
    if as_json:
        print(json.dumps({"problem": spec.name, "root": str(spec.root),
                          "ok": not failed and not problems, "warnings": warnings,
                          "problems": problems,
                          "spread": {n: s.as_dict() for n, s in spreads.items()},
                          "invalid_repeats": {n: [_invalid_repeat(i, r) for i, r in found]
                                              for n, found in invalid.items() if found},
                          "programs": {n: result_dict(r) for n, r in results.items()}}, indent=2))
    else:
        print_stages(f"problem {spec.name}", results, spec.config.metrics.shown)
        if spreads:
            console.print(f"score over {repeat} evaluations of each program:")
            for name, found in spreads.items():
                console.print(f"  {found.line(name)}", markup=False, soft_wrap=True)
        if repeat > 1:
            for name, found in invalid.items():
                for i, result in found:
                    console.print(f"{name}: evaluation {i} of {repeat} not valid: "
                                  f"{_cause(result)}", markup=False, soft_wrap=True)
        for note in warnings:
            console.print(Text.assemble(("warning:", "yellow"), f" {note}"))
        for line in problems:
            console.print(f"problem: {line}", markup=False, soft_wrap=True)
        if failed:
            console.print(f"[red]not valid:[/] {', '.join(failed)}; fix the evaluator or these "
                          f"programs (see the reasons above)")
        elif not problems:
            console.print("[green]ok:[/] every program is valid")
    if failed or problems:
        raise typer.Exit(1)


def _cause(result: EvalResult) -> str:
    last = result.last
    where = f"stage '{last.stage}', " if last is not None else ""
    kind = result.failure.value if result.failure else "invalid"
    return f"{where}{kind}: {result.reason}"


def _invalid_repeat(index: int, result: EvalResult) -> dict[str, object]:
    return {"evaluation": index, "stage": result.stage_reached,
            "failure": result.failure.value if result.failure else None,
            "reason": result.reason}


def register(app: typer.Typer) -> None:
    problems_app.command("check", epilog=(
        "Examples:\n\n  evolve problems check circle_packing\n\n"
        "  evolve problems check ./my_sched --repeat 5      # the score's spread\n\n"
        "  evolve problems check problems/txn --json"))(check_command)

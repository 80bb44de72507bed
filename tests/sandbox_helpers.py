"""Shared helpers for the sandbox tests: fixture problems and running one candidate."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from evaluators.executors import LocalExecutor
from evaluators.isolation import available_levels
from evaluators.result import EvalResult
from evolve.problem.spec import ProblemSpec, load_problem

FIXTURES = Path(__file__).parent / "fixtures"
HOSTILE = Path(__file__).parent / "hostile" / "candidates"
BEST_LEVEL = available_levels()[0]


def sort_problem() -> ProblemSpec:
    return load_problem(FIXTURES / "sort_problem")


def trusting_problem() -> ProblemSpec:
    return load_problem(FIXTURES / "trusting_problem")


def candidate(name: str, **subs: object) -> str:
    code = (HOSTILE / f"{name}.py").read_text()
    for key, value in subs.items():
        code = code.replace(f"__{key.upper()}__", str(value))
    return code


def evaluate(code: str, problem: ProblemSpec | None = None, *, isolation: str = "auto",
             stages: list[str] | None = None, max_parallel: int = 2) -> EvalResult:
    async def go() -> EvalResult:
        executor = LocalExecutor(max_parallel=max_parallel, isolation=isolation)
        try:
            return await executor.evaluate(problem or sort_problem(), code, stages=stages)
        finally:
            await executor.aclose()

    return asyncio.run(go())


def processes_with(marker: str) -> list[int]:
    """Live (non-zombie) processes whose command line contains `marker`."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/cmdline", "rb") as f:
                cmdline = f.read()
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        state = stat[stat.rindex(b")") + 2:].split()[0]
        if marker.encode() in cmdline and state != b"Z":
            found.append(int(entry.name))
    return found

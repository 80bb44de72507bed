"""sandbox.gpu (never | auto | always) decides once per run whether a GPU-optional problem's
evaluations take a GPU: all of them or none, never a mix on a mixed cluster unless asked."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from evaluators.executors import LocalExecutor
from evaluators.gpu_policy import plan
from evaluators.result import FailureKind
from evolve.problem.spec import load_problem

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
CODE = "def solve():\n    return 1\n"


def problem_with(tmp_path: Path, need: str):
    root = tmp_path / f"probe_{need}"
    shutil.copytree(FIXTURES / "probe_problem", root)
    toml = root / "problem.toml"
    toml.write_text(toml.read_text().replace('gpu = "optional"', f'gpu = "{need}"'))
    return load_problem(root)


@pytest.mark.parametrize("policy, nodes, gpus, words", [
    ("auto", [1, 1], 1, "2 of 2 node(s)"),
    ("auto", [1, 0, 0], 0, "only 1 of 3 node(s)"),       # mixed cluster: CPU everywhere
    ("auto", [0], 0, "0 of 1 node(s)"),
    ("always", [1, 0, 0], 1, "sandbox.gpu=always"),       # on purpose: GPU nodes only
    ("never", [1, 1], 0, "sandbox.gpu=never"),
])
def test_an_optional_problem_follows_the_policy(tmp_path, policy, nodes, gpus, words):
    found = plan(problem_with(tmp_path, "optional"), policy, nodes)
    assert (found.gpus, found.error) == (gpus, "")
    assert words in found.reason
    assert found.line("probe").startswith("gpu: probe uses ")


def test_impossible_combinations_are_errors(tmp_path):
    required = problem_with(tmp_path, "required")
    assert "sandbox.gpu=never" in plan(required, "never", [1]).error
    assert "needs 1 GPU" in plan(required, "auto", [0, 0]).error
    assert plan(required, "auto", [0, 1]).gpus == 1   # needs one: waits for the GPU node
    assert "sandbox.gpu=always" in plan(problem_with(tmp_path, "optional"), "always", [0]).error
    assert plan(problem_with(tmp_path, "none"), "always", [0]).gpus == 0


def evaluate(executor: LocalExecutor, problem):
    async def go():
        try:
            return await executor.evaluate(problem, CODE, stages=["first"])
        finally:
            await executor.aclose()
    return asyncio.run(go())


def test_the_local_executor_gives_the_gpu_only_when_the_policy_says_so(tmp_path):
    problem = problem_with(tmp_path, "optional")
    used = evaluate(LocalExecutor(max_parallel=1, gpus=("0",), gpu_policy="auto"), problem)
    assert used.valid and used.metrics["cuda"] == "0", used.reason
    none = evaluate(LocalExecutor(max_parallel=1, gpus=("0",), gpu_policy="never"), problem)
    assert none.valid and none.metrics["cuda"] == "", none.reason
    refused = evaluate(LocalExecutor(max_parallel=1, gpus=(), gpu_policy="always"), problem)
    assert refused.failure == FailureKind.EVALUATOR_ERROR
    assert "sandbox.gpu=always" in refused.reason

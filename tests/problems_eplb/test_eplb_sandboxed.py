"""The whole cascade through the real sandbox (slow: about a minute on 2 busy cores)."""

from __future__ import annotations

import asyncio

import pytest

pytest.importorskip("torch")

from evaluators.executors import LocalExecutor  # noqa: E402
from evolve.problem.spec import load_problem  # noqa: E402
from problems.eplb.evaluate import combined_score  # noqa: E402


async def _cascade(problem, code):
    executor = LocalExecutor(max_parallel=1, gpus=())
    try:
        return await executor.evaluate(problem, code)
    finally:
        await executor.aclose()


@pytest.mark.slow
def test_sandboxed_cascade_scores_the_baselines_sensibly(problem_dir):
    problem = load_problem(problem_dir)
    results = {name: asyncio.run(_cascade(problem, path.read_text()))
               for name, path in {"deepseek": problem.initial_path,
                                  "round_robin": problem.baselines()["round_robin"]}.items()}
    for name, result in results.items():
        assert [s.stage for s in result.stages] == ["quick", "balance", "kernel"], name
        assert all(s.ok for s in result.stages), [(s.stage, s.reason) for s in result.stages]
    deepseek = {s.stage: s.metrics for s in results["deepseek"].stages}
    round_robin = {s.stage: s.metrics for s in results["round_robin"].stages}
    assert deepseek["balance"]["balancedness_gpu"] == pytest.approx(0.655, abs=0.01)
    assert deepseek["balance"]["runtime_cpu_ms"] > 1.0      # a precise clock, not 4 ms ticks
    # The kernel ratio follows the imbalance: both above 1, the load-oblivious layout worse.
    assert 1.05 < deepseek["kernel"]["kernel_step_ratio"] < round_robin["kernel"]["kernel_step_ratio"]
    assert round_robin["kernel"]["kernel_step_ratio"] < 4.0
    # The program's score is the balance objective (problem.toml [score]), not the kernel ratio,
    # and the final metrics carry both stages' figures, so MAP-Elites' features are there.
    for name, result in results.items():
        balance = result.stages[1]
        assert result.score == balance.score == pytest.approx(
            combined_score(balance.metrics["balancedness_gpu"],
                           balance.metrics["runtime_ms"] / 1e3)), name
        assert result.score != result.stages[2].score
        for key in (*problem.config.metrics.features, *problem.config.metrics.shown):
            assert key in result.metrics, (name, key)
        assert result.metrics["runtime_ms"] == balance.metrics["runtime_ms"]

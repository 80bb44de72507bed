"""LocalExecutor: concurrency bound, GPU slots, configuration, errors become results."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from evaluators.executors import LocalExecutor, make_executor
from evaluators.result import FailureKind
from evolve.config import load_config
from evolve.problem.spec import load_problem
from tests.sandbox_helpers import FIXTURES, sort_problem

SLEEPY = "import time\n\ndef solve():\n    time.sleep(0.8)\n    return 1\n"


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    running = best = 0
    for _, delta in events:
        running += delta
        best = max(best, running)
    return best


async def run_many(executor: LocalExecutor, problem, codes, stages=None):
    try:
        return await asyncio.gather(*(executor.evaluate(problem, c, stages=stages)
                                      for c in codes))
    finally:
        await executor.aclose()


def test_at_most_max_parallel_sandboxes_run_at_once():
    problem = load_problem(FIXTURES / "probe_problem")
    executor = LocalExecutor(max_parallel=2, gpus=())
    results = asyncio.run(run_many(executor, problem, [SLEEPY] * 4, stages=["first"]))
    assert all(r.valid for r in results), [r.reason for r in results]
    intervals = [(r.metrics["start"], r.metrics["end"]) for r in results]
    assert max_overlap(intervals) == 2
    assert all(r.metrics["cuda"] == "" for r in results)  # optional GPU, none visible


def test_gpu_slots_give_each_job_its_own_device():
    problem = load_problem(FIXTURES / "probe_problem")
    executor = LocalExecutor(max_parallel=4, gpus=("0", "1"))
    results = asyncio.run(run_many(executor, problem, [SLEEPY] * 4, stages=["first"]))
    assert all(r.valid for r in results), [r.reason for r in results]
    assert sorted(r.metrics["cuda"] for r in results) == ["0", "0", "1", "1"]
    # Two devices: never more than two jobs at once, and overlapping jobs differ in device.
    spans = [(r.metrics["start"], r.metrics["end"], r.metrics["cuda"]) for r in results]
    assert max_overlap([(s, e) for s, e, _ in spans]) <= 2
    for i, (s1, e1, g1) in enumerate(spans):
        for s2, e2, g2 in spans[i + 1:]:
            if s1 < e2 and s2 < e1:
                assert g1 != g2


def test_required_gpu_without_one_is_a_result_not_an_exception(tmp_path: Path):
    root = tmp_path / "needs_gpu"
    shutil.copytree(FIXTURES / "probe_problem", root)
    toml = root / "problem.toml"
    toml.write_text(toml.read_text().replace('gpu = "optional"', 'gpu = "required"'))
    executor = LocalExecutor(max_parallel=1, gpus=())
    (result,) = asyncio.run(run_many(executor, load_problem(root), ["def solve():\n  return 1\n"]))
    assert result.failure == FailureKind.EVALUATOR_ERROR
    assert "GPU" in result.reason


def test_broken_evaluator_is_an_evaluator_error(tmp_path: Path):
    root = tmp_path / "broken"
    shutil.copytree(FIXTURES / "sort_problem", root)
    (root / "evaluate.py").write_text("import no_such_helper_module\n")
    root.chmod(0o755)
    executor = LocalExecutor(max_parallel=1)
    (result,) = asyncio.run(run_many(executor, load_problem(root), [sort_problem().initial_code()]))
    assert result.failure == FailureKind.EVALUATOR_ERROR
    assert "no_such_helper_module" in result.reason


def test_unreadable_problem_folder_says_how_to_fix_it(tmp_path: Path):
    executor = LocalExecutor(max_parallel=1)
    if executor.isolation != "bwrap" or not hasattr(__import__("os"), "geteuid") \
            or __import__("os").geteuid() != 0:
        pytest.skip("only root drops to an unprivileged uid")
    root = tmp_path / "private"
    shutil.copytree(FIXTURES / "sort_problem", root)
    root.chmod(0o700)
    (result,) = asyncio.run(run_many(executor, load_problem(root), [sort_problem().initial_code()]))
    assert result.failure == FailureKind.EVALUATOR_ERROR
    assert "chmod -R o+rX" in result.reason


def test_make_executor_follows_the_configuration():
    config = load_config(overrides=["sandbox.isolation=rlimits", "sandbox.timeout_factor=0.5",
                                    "sandbox.memory_mb=300", "concurrency.evaluations=3"])
    executor = make_executor(config.sandbox, config.concurrency)
    try:
        assert executor.isolation == "rlimits"
        assert executor.max_parallel == 3
        problem = sort_problem()
        limits = executor.limits_for(problem, problem.stages[0], gpu=False)
        assert limits.timeout_s == problem.stages[0].timeout_s * 0.5
        assert limits.memory_mb == 300
        assert executor.limits_for(problem, problem.stages[0], gpu=True).memory_mb is None
    finally:
        asyncio.run(executor.aclose())


def test_default_parallelism_is_the_core_count():
    import os

    executor = LocalExecutor()
    assert executor.max_parallel == (os.cpu_count() or 1)
    asyncio.run(executor.aclose())


def test_cpu_time_limit_is_a_timeout_with_its_own_reason(tmp_path: Path):
    root = tmp_path / "cpu_capped"
    shutil.copytree(FIXTURES / "sort_problem", root)
    root.chmod(0o755)
    toml = root / "problem.toml"
    toml.write_text(toml.read_text().replace("cpu_seconds = 10", "cpu_seconds = 1"))
    executor = LocalExecutor(max_parallel=1)
    spin = "def solve(xs):\n    while True:\n        pass\n"
    (result,) = asyncio.run(run_many(executor, load_problem(root), [spin]))
    assert result.failure == FailureKind.TIMEOUT
    assert "CPU-time limit of 1 s" in result.reason
    assert result.wall_s < 6  # stopped by the CPU limit, before the 6 s wall-clock limit

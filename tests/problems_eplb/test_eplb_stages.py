"""The evaluator's stages end to end on the CPU, and the guard against reaching into it."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")

from problems.eplb.evaluate import combined_score, evaluate, speed_score  # noqa: E402
from problems.eplb.guard import reach_violation  # noqa: E402


def test_balance_stage_ranks_deepseek_above_round_robin(problem_dir):
    deepseek = evaluate(str(problem_dir / "initial.py"), "quick")
    round_robin = evaluate(str(problem_dir / "baselines" / "round_robin.py"), "quick")
    json.dumps([deepseek, round_robin])
    for result in (deepseek, round_robin):
        m = result["metrics"]
        assert result["valid"] is True
        assert 0 < m["balancedness_gpu"] <= m["balancedness_bound"] <= 1
        assert m["layers"] == 8 and m["timed_calls"] == 5 and m["runtime_ms"] > 0
        assert result["score"] == pytest.approx(combined_score(m["balancedness_gpu"],
                                                               m["runtime_ms"] / 1e3))
    assert deepseek["metrics"]["balancedness_gpu"] > round_robin["metrics"]["balancedness_gpu"] + 0.05
    # DeepSeek fits the window it is given much better than the next one.
    assert deepseek["metrics"]["balancedness_gpu_on_input"] > deepseek["metrics"]["balancedness_gpu"]


def test_speed_score_rewards_each_tenfold_speed_up_equally():
    assert speed_score(2.0) == 0.0 and speed_score(1e-4) == 1.0
    assert speed_score(0.1) == pytest.approx(1 / 3) and speed_score(0.01) == pytest.approx(2 / 3)
    assert combined_score(0.6, 0.01) == pytest.approx(0.9 * 0.6 + 0.1 * 2 / 3)


def test_kernel_stage_runs_on_the_cpu(problem_dir):
    result = evaluate(str(problem_dir / "initial.py"), "kernel")
    m = result["metrics"]
    assert result["valid"] is True, result["feedback"]
    assert m["kernel_device"] == "cpu" and m["kernel_layers"] == [0, 19, 38, 57]
    assert m["kernel_max_rank_rows"] > m["kernel_mean_rank_rows"] == 4096 * 8 / 32
    assert m["kernel_step_ms"] > 0 and m["kernel_even_ms"] > 0
    assert result["score"] == pytest.approx(1 / m["kernel_step_ratio"])


def test_a_recorded_trace_can_replace_the_synthetic_workload(problem_dir, monkeypatch):
    monkeypatch.setenv("EVOLVE_EPLB_TRACE", str(problem_dir / "data" / "example_history.json"))
    monkeypatch.setenv("EVOLVE_EPLB_STEPS_PER_WINDOW", "2")
    result = evaluate(str(problem_dir / "initial.py"), "balance")
    assert result["valid"] is True
    assert result["metrics"]["layers"] == 4 and result["metrics"]["window_pairs"] == 2
    assert "example_history.json" in result["metrics"]["workload"]


@pytest.mark.parametrize("source, needle", [
    ("import problems.eplb.workloads", "imports 'problems.eplb.workloads'"),
    ("from evaluators.harness_api import clock", "imports 'evaluators.harness_api'"),
    ("import inspect", "imports 'inspect'"),
    ("import gc\n", "imports 'gc'"),
    ("import sys\nf = sys._getframe(1)", "uses '_getframe'"),
    ("def f(frame):\n    return frame.f_back.f_locals", "uses 'f_locals'"),
    ("import sys\nm = sys.modules", "uses 'modules'"),
    ("x = __import__('gc')", "uses '__import__'"),
    ("import torch.nn.functional as F\nF.silu = lambda x: x", "changes 'F.silu'"),
    ("import torch\ntorch.Tensor.__matmul__ = None", "changes 'torch.Tensor.__matmul__'"),
    ("from torch.nn import functional\nsetattr(functional, 'silu', abs)",
     "calls setattr on 'functional'"),
    ("import numpy as np\ndel np.linalg", "changes 'np.linalg'"),
])
def test_guard_rejects_reaching_into_the_evaluator(source, needle):
    assert needle in (reach_violation(source) or "")


def test_guard_allows_ordinary_balancers(problem_dir):
    assert reach_violation("import torch, numpy as np, heapq, math\nmodules = 3\n"
                           "class P:\n    pass\np = P()\np.x = torch.zeros(3)\n"
                           "w = torch.zeros(3)\nw[0] = 1\n") is None
    for path in [problem_dir / "initial.py", *(problem_dir / "baselines").glob("*.py")]:
        assert reach_violation(path.read_text()) is None


def test_evaluate_rejects_a_candidate_that_imports_the_workload(problem_dir, tmp_path):
    path = tmp_path / "peek.py"
    path.write_text("from problems.eplb.workloads import generate_history\n"
                    + (problem_dir / "initial.py").read_text())
    result = evaluate(str(path), "quick")
    assert result["valid"] is False and "imports 'problems.eplb.workloads'" in result["feedback"]


def test_a_small_trace_like_moe_lbl_records_gets_a_scaled_configuration(problem_dir, tmp_path,
                                                                         monkeypatch):
    from problems.eplb.workloads import GeneratorConfig, generate_history
    history = generate_history(GeneratorConfig(num_layers=4, num_experts=16, num_groups=8,
                                               num_windows=3, steps_per_window=3,
                                               tokens_per_step=512, top_k=2, seed=5))
    path = tmp_path / "moe_lbl_trace.json"
    path.write_text(json.dumps({"load_history": history["load_history"]}))
    monkeypatch.setenv("EVOLVE_EPLB_TRACE", str(path))
    monkeypatch.setenv("EVOLVE_EPLB_STEPS_PER_WINDOW", "3")
    for stage in ("balance", "kernel"):
        result = evaluate(str(problem_dir / "initial.py"), stage)
        assert result["valid"] is True, result["feedback"]
    assert result["metrics"]["kernel_layers"] == [0, 1, 2, 3]

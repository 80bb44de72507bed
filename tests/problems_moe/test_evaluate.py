"""The evaluator: scores, output validation, tampering, the load_history trace, problem.toml."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")

from evolve.problem.spec import load_problem  # noqa: E402
from problems.moe_lbl import evaluate as ev  # noqa: E402
from problems.moe_lbl.load_trace import read_load_history  # noqa: E402
from problems.moe_lbl.trainer import CONFIGS, CandidateFailure, quick_config, train  # noqa: E402
from tests.problems_moe.helpers import PROBLEM  # noqa: E402

TINY = CONFIGS["tiny"]


def _program(tmp_path, body: str):
    path = tmp_path / "candidate.py"
    path.write_text("import torch\n\n\ndef balancing_loss(ctx):\n" + body)
    return str(path)


def test_problem_folder_validates():
    spec = load_problem(PROBLEM)
    assert [s.name for s in spec.stages] == ["quick", "full", "seeds"]
    assert set(spec.baselines()) == {"no_balancing", "micro_batch", "global_batch",
                                     "aux_free_bias"}
    assert "EVOLVE-BLOCK-START" in spec.initial_code()


def test_initial_program_scores_from_its_own_measurements(tmp_path):
    trace = tmp_path / "trace.json"
    out = ev.evaluate(str(PROBLEM / "initial.py"), "full", config_name="tiny", trace_path=trace)
    assert out["valid"], out["feedback"]
    m = out["metrics"]
    assert out["score"] == pytest.approx(-(m["val_ce"] + ev.LAMBDA * m["imbalance_l1"]))
    assert 0 <= m["imbalance_l1"] <= 2 and 1 <= m["max_over_mean"] <= TINY.model.num_experts
    assert 0 <= m["specialisation_mi_bits"] <= 2  # at most log2(4 domains)
    assert "cross-entropy" in out["feedback"]
    # The trace is vLLM's load_history: one entry per step, layers x experts integer counts.
    doc = json.loads(trace.read_text())
    assert set(doc) == {"load_history", "meta"}
    assert len(doc["load_history"]) == TINY.steps
    per_step = TINY.micro_batch * TINY.model.seq_len * TINY.num_micro * TINY.model.top_k
    for entry in doc["load_history"]:
        assert set(entry) == {"logical_expert_load"}
        loads = entry["logical_expert_load"]
        assert len(loads) == TINY.model.n_layers
        for row in loads:
            assert len(row) == TINY.model.num_experts and all(isinstance(c, int) for c in row)
            assert sum(row) == per_step
    assert read_load_history(trace) == [e["logical_expert_load"] for e in doc["load_history"]]


@pytest.mark.parametrize(("body", "reason"), [
    ("    return ctx.router_probs.mean(0)\n", "0-dim"),
    ("    return torch.tensor(float('nan'))\n", "not finite"),
    ("    return 1.0\n", "torch.Tensor"),
    ("    return torch.zeros(()), torch.zeros(3)\n", "shape"),
    ("    return torch.zeros(()), torch.full((ctx.num_experts,), float('inf'))\n", "non-finite"),
    ("    return torch.zeros((), dtype=torch.long)\n", "floating"),
    ("    raise KeyError('boom')\n", "KeyError"),
    ("    return (ctx.router_logits.sum() * 1e38) ** 2\n", "not finite"),
    # The statistics are the candidate's own copies: writing into them is refused there.
    ("    ctx.router_probs.mul_(0)\n    return ctx.router_probs.sum()\n", "in-place"),
    ("    return ctx.router_logits.sum() * 1e30\n", "gradient is not finite"),
])
def test_invalid_outputs_are_rejected_with_a_reason(tmp_path, body, reason):
    # In this process, through the same messages and checks as the candidate's process.
    namespace: dict = {}
    exec(compile("import torch\n\ndef balancing_loss(ctx):\n" + body, "candidate", "exec"),
         namespace)
    with pytest.raises(CandidateFailure) as failure:
        train(namespace["balancing_loss"], quick_config(TINY), seed=0)
    assert reason in str(failure.value)
    assert str(failure.value).startswith("step 0")


def test_an_invalid_output_of_the_candidates_process_is_rejected_with_its_step_and_layer(
        tmp_path):
    out = ev.evaluate(_program(tmp_path, "    return ctx.router_probs.mean(0)\n"), "quick",
                      config_name="tiny")
    assert not out["valid"] and out["score"] == ev.INVALID_SCORE
    assert "step 0, layer 0: the loss must be a 0-dim" in out["feedback"], out["feedback"]


def test_a_program_without_balancing_loss_is_told_the_name(tmp_path):
    path = tmp_path / "candidate.py"
    path.write_text("import torch\n\n\ndef balance(ctx):\n    return torch.zeros(())\n")
    out = ev.evaluate(str(path), "quick", config_name="tiny")
    assert not out["valid"]
    assert "defines no function 'balancing_loss'" in out["feedback"], out["feedback"]


def test_patching_the_evaluator_in_the_candidates_process_changes_nothing(tmp_path):
    # In one process this rewrote the imbalance the score is made of; the candidate's process
    # has its own copy of the module, which the judge never uses.
    body = ("    import problems.moe_lbl.trainer as t\n"
            "    t.imbalance_l1 = lambda counts: torch.zeros(counts.shape[:-1])\n"
            "    return torch.zeros(())\n")
    patched = ev.evaluate(_program(tmp_path, body), "quick", config_name="tiny")
    honest = ev.evaluate(_program(tmp_path, "    return torch.zeros(())\n"), "quick",
                         config_name="tiny")
    assert patched["valid"] and honest["valid"], patched["feedback"]
    assert patched["metrics"]["imbalance_l1"] == honest["metrics"]["imbalance_l1"] > 0
    assert patched["score"] == honest["score"]


def test_unknown_stage_is_an_error():
    with pytest.raises(ValueError, match="quick"):
        ev.evaluate(str(PROBLEM / "initial.py"), "medium", config_name="tiny")

"""Common random numbers, the paired difference to the reference, and the seeds each stage
trains (tiny config)."""

from __future__ import annotations

import json
import random
from dataclasses import replace

import pytest

torch = pytest.importorskip("torch")

from evaluators.cascade import finalize  # noqa: E402
from evaluators.harness_api import local_candidate  # noqa: E402
from evaluators.result import EvalResult, StageResult  # noqa: E402
from evolve.problem.spec import load_problem  # noqa: E402
from problems.moe_lbl import evaluate as ev  # noqa: E402
from problems.moe_lbl.data import TrainBatches, load_corpus  # noqa: E402
from problems.moe_lbl.run_baselines import paired_differences, write_reference  # noqa: E402
from problems.moe_lbl.trainer import CONFIGS, train  # noqa: E402
from tests.problems_moe.helpers import PROBLEM, baseline  # noqa: E402

TINY = CONFIGS["tiny"]
TIMING = {"candidate_seconds", "train_seconds"}


def _strip(metrics):
    return {k: v for k, v in metrics.items() if k not in TIMING}


def test_a_candidate_consuming_the_global_rng_changes_neither_data_nor_init():
    plain_loss = baseline("global_batch")

    def noisy_loss(ctx):
        # Same loss, but it draws from every global generator a candidate can reach.
        torch.rand(1000)
        torch.randn(7, 3)
        random.random()
        return plain_loss(ctx)

    plain = train(plain_loss, TINY, seed=4)
    torch.manual_seed(123)
    torch.rand(50)  # the global RNG state before training must not matter either
    noisy = train(noisy_loss, TINY, seed=4)
    assert noisy.load_history == plain.load_history
    assert _strip(noisy.metrics) == _strip(plain.metrics)


def test_data_order_has_its_own_generator():
    corpus = load_corpus()
    args = (corpus, TINY.model.seq_len, TINY.micro_batch, TINY.num_micro, 9)
    quiet, disturbed = TrainBatches(*args), TrainBatches(*args)
    for step in range(3):
        for micro in range(TINY.num_micro):
            a, da = quiet.next(step, micro)
            torch.rand(100)
            b, db = disturbed.next(step, micro)
            assert da == db and torch.equal(a, b)
    other = TrainBatches(corpus, TINY.model.seq_len, TINY.micro_batch, TINY.num_micro, 10)
    assert not torch.equal(other.next(0, 0)[0], TrainBatches(*args).next(0, 0)[0])


def test_paired_difference_is_taken_against_the_stored_reference():
    ref = ev.evaluate(str(PROBLEM / "baselines" / "global_batch.py"), "full", seed=1,
                      config_name="tiny", only_seed=True)
    other = ev.evaluate(str(PROBLEM / "baselines" / "micro_batch.py"), "full", seed=1,
                        config_name="tiny", only_seed=True)
    # reference.json is current for the tiny config: the reference itself differs by exactly 0
    # (regenerate with `run_baselines --config tiny --only global_batch --write-reference`).
    assert ref["metrics"]["paired_diff_vs_global_batch"] == 0.0
    diff = other["metrics"]["paired_diff_vs_global_batch"]
    assert diff == pytest.approx(other["score"] - ref["score"], abs=1e-12) and diff != 0.0
    assert other["metrics"]["paired_diff_vs_global_batch_seed1"] == diff
    assert "against the global-batch loss" in other["feedback"]
    assert "(code " in other["feedback"] and "seed1 " not in other["feedback"]
    # A table made for another configuration is not used.
    assert ev.reference_score("tiny", replace(TINY, steps=TINY.steps + 1), 1) is None
    assert ev.reference_score("tiny", TINY, 99) is None


def test_full_trains_seeds_0_and_1_seeds_trains_2_and_3_and_the_score_is_the_4_seed_mean():
    path = str(PROBLEM / "baselines" / "micro_batch.py")
    # One candidate process for every run (the baseline keeps no state between calls).
    with local_candidate(path) as candidate:
        quick = ev.judge(candidate, "quick", config_name="tiny")
        # Each seed trained alone, as one stage run of it would.
        single = [ev.judge(candidate, "full", seed=s, config_name="tiny",
                           only_seed=True)["metrics"] for s in range(4)]
        full = ev.judge(candidate, "full", config_name="tiny")
        seeds = ev.judge(candidate, "seeds", config_name="tiny")
    assert full["valid"] and seeds["valid"], (full["feedback"], seeds["feedback"])
    assert full["score"] == pytest.approx((single[0]["score"] + single[1]["score"]) / 2)
    assert seeds["score"] == pytest.approx((single[2]["score"] + single[3]["score"]) / 2)
    assert [full["metrics"][f"score_seed{s}"] for s in (0, 1)] == [single[0]["score"],
                                                                   single[1]["score"]]
    assert [seeds["metrics"][f"score_seed{s}"] for s in (2, 3)] == [single[2]["score"],
                                                                    single[3]["score"]]
    # The full stage's plain names are its 2-seed means; the seeds stage trains no seed again
    # and has no plain name that would overwrite them.
    assert full["metrics"]["val_ce"] == pytest.approx(
        (single[0]["val_ce"] + single[1]["val_ce"]) / 2)
    assert not any(k.endswith(("_seed0", "_seed1")) for k in seeds["metrics"])
    assert "score" not in seeds["metrics"] and "val_ce" not in seeds["metrics"]

    spec = load_problem(PROBLEM)
    stages = [StageResult(stage=name, score=out["score"], valid=True, metrics=out["metrics"],
                          feedback=out["feedback"])
              for name, out in (("quick", quick), ("full", full), ("seeds", seeds))]
    result = EvalResult(stages=stages)
    finalize(result, spec.config.score, spec.config.stages[-1].name)
    assert result.final_score == pytest.approx(sum(s["score"] for s in single) / 4)
    final = result.final_metrics
    missing = [n for n in spec.config.metrics.shown + spec.config.metrics.features
               if n not in final]
    assert not missing
    assert final["val_ce"] == full["metrics"]["val_ce"]
    assert [final[f"score_seed{s}"] for s in range(4)] == [s["score"] for s in single]


def test_reference_table_is_replaced_when_the_configuration_changes(tmp_path):
    path = tmp_path / "reference.json"
    runs = [{"program": "global_batch", "seed": s, "score": -2.0 - s, "valid": True}
            for s in (0, 1)]
    assert write_reference(runs, "tiny", path) == {"0": -2.0, "1": -3.0}
    write_reference([{**runs[0], "seed": 2, "score": -4.0}], "tiny", path)
    assert json.loads(path.read_text())["configs"]["tiny"]["scores"] == {
        "0": -2.0, "1": -3.0, "2": -4.0}
    stale = json.loads(path.read_text())
    stale["configs"]["tiny"]["fingerprint"]["config"]["steps"] += 1
    path.write_text(json.dumps(stale))
    assert write_reference(runs[:1], "tiny", path) == {"0": -2.0}


def test_paired_differences_state_their_noise():
    scores = {("global_batch", 0): -3.0, ("global_batch", 1): -3.1, ("global_batch", 2): -2.9,
              ("no_balancing", 0): -3.05, ("no_balancing", 1): -3.2, ("no_balancing", 2): -2.92}
    runs = [{"program": p, "seed": s, "score": v, "valid": True} for (p, s), v in scores.items()]
    d = paired_differences(runs, "no_balancing")["global_batch"]
    assert d["per_seed"] == pytest.approx([0.05, 0.1, 0.02])
    assert d["mean"] == pytest.approx(0.17 / 3)
    assert d["std_mean"] == pytest.approx(d["std"] / 3 ** 0.5)
    assert d["ratio"] == pytest.approx(d["mean"] / d["std"])
    # The full stage averages 2 seeds and the score 4: their noise is std / sqrt(2), / 2.
    assert d["ratio_full"] == pytest.approx(d["ratio"] * 2 ** 0.5)
    assert d["ratio_score"] == pytest.approx(d["ratio"] * 2)

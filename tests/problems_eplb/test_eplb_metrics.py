"""Balancedness and its bound on loads small enough to work out by hand."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from problems.eplb.placement import (  # noqa: E402
    EplbConfig,
    balancedness,
    balancedness_bound,
    gpu_loads,
    slot_loads,
)

# 4 experts, 6 slots on 2 GPUs (3 slots each).
CFG = EplbConfig(num_replicas=6, num_groups=1, num_nodes=1, num_gpus=2)


def test_replicas_split_an_experts_load_evenly():
    load = np.array([[60.0, 30.0, 20.0, 10.0]])
    # Expert 0 has 3 replicas (20 each): GPU 0 = [e0, e0, e1] = 70, GPU 1 = [e0, e2, e3] = 50.
    phy2log = torch.tensor([[0, 0, 1, 0, 2, 3]])
    np.testing.assert_allclose(slot_loads(phy2log, load), [[20, 20, 30, 20, 20, 10]])
    np.testing.assert_allclose(gpu_loads(phy2log, load, CFG), [[70, 50]])
    assert balancedness(gpu_loads(phy2log, load, CFG)) == pytest.approx(60 / 70)
    assert balancedness(slot_loads(phy2log, load)) == pytest.approx(20 / 30)


def test_balancedness_sums_over_layers_before_dividing():
    # Layer 0: GPU loads 70/50 (mean 60, max 70); layer 1: 10/30 (mean 20, max 30).
    per_gpu = np.array([[70.0, 50.0], [10.0, 30.0]])
    assert balancedness(per_gpu) == pytest.approx((60 + 20) / (70 + 30))
    assert balancedness(np.array([[5.0, 5.0]])) == 1.0
    assert balancedness(np.zeros((1, 2))) == 1.0


def test_a_better_placement_scores_higher():
    load = np.array([[60.0, 30.0, 20.0, 10.0]])
    worse = torch.tensor([[0, 1, 2, 3, 3, 3]])      # 60+30+20 = 110 vs 10
    better = torch.tensor([[0, 3, 2, 0, 1, 2]])     # 30+10+10 = 50 vs 30+30+10 = 70
    assert balancedness(gpu_loads(worse, load, CFG)) == pytest.approx(60 / 110)
    assert balancedness(gpu_loads(better, load, CFG)) == pytest.approx(60 / 70)


def test_bound_is_the_even_split_unless_one_expert_is_too_heavy():
    even = np.array([[25.0, 25.0, 25.0, 25.0]])
    assert balancedness_bound(even, CFG) == 1.0
    # One expert with 97 of 100 tokens on 2 GPUs: split over both it costs 48.5 each, under
    # the mean of 50, so the even split still bounds.
    heavy = np.array([[97.0, 1.0, 1.0, 1.0]])
    assert balancedness_bound(heavy, CFG) == 1.0
    skew = EplbConfig(num_replicas=5, num_groups=1, num_nodes=1, num_gpus=5)
    # 5 GPUs, 4 experts: the heavy expert gets at most 2 replicas, so a GPU carries >= 48.5.
    assert balancedness_bound(heavy, skew) == pytest.approx(20 / 48.5)


def test_no_placement_beats_the_bound(deepseek):
    rng = np.random.default_rng(3)
    cfg = EplbConfig(num_replicas=20, num_groups=4, num_nodes=2, num_gpus=4)
    load = rng.lognormal(0, 1.5, size=(6, 16))
    phy2log = deepseek(torch.from_numpy(load), 20, 4, 2, 4)[0]
    achieved = balancedness(gpu_loads(phy2log, load, cfg))
    assert 0 < achieved <= balancedness_bound(load, cfg) + 1e-12


def test_leaderboard_score_is_their_formula():
    from problems.eplb.evaluate import leaderboard_score
    # 1 ms: full speed bonus (10), no penalty; 2 ms: 5; 20 ms: 0.5 - 0.4 penalty; 2 s: capped at 20.
    assert leaderboard_score(0.66, 0.001) == pytest.approx(90 * 0.66 + 10)
    assert leaderboard_score(0.66, 0.002) == pytest.approx(90 * 0.66 + 5)
    assert leaderboard_score(0.66, 0.02) == pytest.approx(90 * 0.66 + 0.5 - 0.4)
    assert leaderboard_score(0.66, 2.0) == pytest.approx(90 * 0.66 + 0.005 - 20)

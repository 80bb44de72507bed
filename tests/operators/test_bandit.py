"""Bandit behaviour in simulation: learning, in-flight pulls, resume, cost awareness."""

from __future__ import annotations

import json
import random

import pytest

from evolve.config import BanditConfig
from evolve.select.bandit import Arm, Bandit, reward

ARMS = [Arm("model-a", "diff"), Arm("model-b", "diff"), Arm("tune", "tune")]
# Probability that a proposal of each arm improves the program (reward 1) — arm 2 is best.
SUCCESS = {ARMS[0]: 0.1, ARMS[1]: 0.3, ARMS[2]: 0.6}


def simulate(bandit: Bandit, pulls: int, seed: int = 0, batch: int = 1,
             success: dict[Arm, float] = SUCCESS, costs: dict[Arm, float] | None = None,
             ) -> tuple[dict[Arm, int], list[float]]:
    """Run `pulls` proposals, `batch` in flight at a time; returns counts and cumulative regret."""
    select_rng, world = random.Random(seed), random.Random(seed + 1000)
    best = max(success.values())
    counts = {arm: 0 for arm in bandit.arms}
    regret, total = [], 0.0
    while sum(counts.values()) < pulls:
        chosen = []
        for _ in range(batch):
            arm = bandit.select(select_rng)
            bandit.on_submit(arm)
            chosen.append(arm)
        for arm in chosen:
            counts[arm] += 1
            total += best - success[arm]
            regret.append(total)
            gained = 1.0 if world.random() < success[arm] else 0.0
            bandit.update(arm, gained, (costs or {}).get(arm, 0.0))
    return counts, regret


def test_reward_is_improvement_over_parent_and_initial():
    assert reward(0.9, 0.5, 0.7) == pytest.approx(0.2)
    assert reward(0.6, 0.5, 0.7) == 0.0  # better than the parent, not than the initial
    assert reward(0.4, 0.5, 0.3) == 0.0
    assert reward(None, 0.5, 0.3) == 0.0
    assert reward(0.9, 0.5, 0.3, ok=False) == 0.0
    assert reward(float("nan"), 0.5, 0.3) == 0.0
    assert reward(0.8, None, 0.3) == pytest.approx(0.5)


@pytest.mark.parametrize("algorithm", ["ucb", "thompson"])
def test_stationary_rewards_best_arm_dominates_and_regret_is_sublinear(algorithm):
    config = BanditConfig(algorithm=algorithm, decay=1.0, epsilon=0.0, exploration=0.5)
    counts, regret = simulate(Bandit(ARMS, config), 2000)
    assert counts[ARMS[2]] > 0.75 * 2000, counts
    first_half = regret[999]
    second_half = regret[1999] - regret[999]
    # Sub-linear: the second 1,000 pulls add much less regret than the first 1,000.
    assert second_half < 0.6 * first_half, (first_half, second_half)
    assert regret[-1] < 0.1 * 2000 * 0.5  # far below always picking at random


@pytest.mark.parametrize("algorithm", ["ucb", "thompson"])
def test_default_settings_with_proposals_in_flight_favour_the_best_arm(algorithm):
    counts, _ = simulate(Bandit(ARMS, BanditConfig(algorithm=algorithm)), 2000, batch=4)
    assert max(counts, key=counts.get) == ARMS[2], counts
    assert counts[ARMS[2]] > 0.5 * 2000, counts


def test_in_flight_pulls_spread_submissions():
    bandit = Bandit(ARMS, BanditConfig(epsilon=0.0))
    rng = random.Random(3)
    chosen = []
    for _ in range(3):
        arm = bandit.select(rng)
        bandit.on_submit(arm)
        chosen.append(arm)
    assert sorted(chosen) == sorted(ARMS)  # none chosen twice while all are untried
    assert all(s["pending"] == 1 for s in bandit.summary())


def test_selection_is_deterministic_given_the_rng():
    runs = [simulate(Bandit(ARMS, BanditConfig(algorithm=a)), 300, seed=7)[0]
            for a in ("ucb", "ucb", "thompson", "thompson")]
    assert runs[0] == runs[1] and runs[2] == runs[3]


def test_resume_with_changed_arm_set():
    config = BanditConfig(epsilon=0.0, decay=1.0)
    bandit = Bandit(ARMS, config)
    simulate(bandit, 300)
    bandit.on_submit(ARMS[2])  # in flight when the run stopped: never reported back
    state = json.loads(json.dumps(bandit.state_dict()))  # what the archive stores
    before = {s["arm"]: s for s in bandit.summary()}

    new_arm = Arm("ollama_chat/qwen2.5-coder:7b", "full")
    arms = [ARMS[1], ARMS[2], new_arm]  # model-a removed, a new model added
    restored = Bandit.from_state(state, arms, config)
    after = {s["arm"]: s for s in restored.summary()}
    assert set(after) == {a.label for a in arms}
    assert after[ARMS[1].label]["total_reward"] == before[ARMS[1].label]["total_reward"]
    assert after[ARMS[2].label]["pulls"] == before[ARMS[2].label]["pulls"] - 1
    assert after[ARMS[2].label]["pending"] == 0
    assert after[new_arm.label]["pulls"] == 0
    # The untried arm is explored first, and a late reward for the removed arm is ignored.
    assert restored.select(random.Random(0)) == new_arm
    restored.update(ARMS[0], 1.0)
    assert ARMS[0].label not in {s["arm"] for s in restored.summary()}
    assert Arm.from_label(new_arm.label) == new_arm
    # And it keeps learning: the best arm still dominates afterwards.
    counts, _ = simulate(restored, 600, seed=5, success={**SUCCESS, new_arm: 0.05})
    assert max(counts, key=counts.get) == ARMS[2]


def test_resume_rejects_unknown_state_version():
    with pytest.raises(ValueError, match="version"):
        Bandit.from_state({"version": 99, "arms": {}}, ARMS)


@pytest.mark.parametrize("algorithm", ["ucb", "thompson"])
def test_cost_aware_prefers_the_cheaper_arm_of_equal_reward(algorithm):
    cheap, dear = Arm("cheap-model", "diff"), Arm("dear-model", "diff")
    success = {cheap: 0.4, dear: 0.4}
    costs = {cheap: 0.001, dear: 0.01}
    config = BanditConfig(algorithm=algorithm, cost_aware=True, decay=1.0)
    counts, _ = simulate(Bandit([cheap, dear], config), 1000, success=success, costs=costs)
    assert counts[cheap] > 0.7 * 1000, counts
    # Without cost awareness the two are indistinguishable: neither dominates as strongly.
    blind, _ = simulate(Bandit([cheap, dear], BanditConfig(algorithm=algorithm, decay=1.0)),
                        1000, success=success, costs=costs)
    assert blind[cheap] < counts[cheap]


def test_fixed_weights_set_the_mix():
    config = BanditConfig(algorithm="fixed", weights={ARMS[0].label: 3.0, "tune": 1.0})
    bandit = Bandit(ARMS, config, default_weights={"model-b": 0.0})
    rng = random.Random(0)
    picks = [bandit.select(rng) for _ in range(4000)]
    assert picks.count(ARMS[1]) == 0
    assert picks.count(ARMS[0]) / len(picks) == pytest.approx(0.75, abs=0.03)
    assert picks.count(ARMS[2]) / len(picks) == pytest.approx(0.25, abs=0.03)


def test_every_rejected_reply_is_a_failed_attempt_of_its_arm():
    arm = Arm("model-a", "diff")
    bandit = Bandit([arm], BanditConfig(decay=1.0))
    bandit.on_submit(arm)
    bandit.update(arm, 0.0, yielded=1.0, attempts=4)  # three rejected replies, then a program
    stats = bandit.stats[arm]
    assert (stats.pulls, stats.completed, stats.proposals) == (4.0, 4.0, 1.0)
    assert stats.yield_rate == pytest.approx(0.25)  # one program per four calls
    assert bandit.summary()[0]["attempts"] == 4 and bandit.summary()[0]["pulls"] == 1


def run_kinds(bandit: Bandit, proposals: int, barren: Arm, seed: int = 0,
              in_flight: int = 6) -> list[Arm]:
    """Proposals with `in_flight` outstanding; `barren` never yields a program (each of its
    proposals is four rejected replies), the others yield one in one or two calls."""
    rng, world = random.Random(seed), random.Random(seed + 1)
    chosen: list[Arm] = []
    pending: list[tuple[Arm, int, float]] = []
    for _ in range(proposals):
        if len(pending) >= in_flight:
            arm, attempts, yielded = pending.pop(0)
            bandit.update(arm, 0.0, yielded=yielded, attempts=attempts)
        arm = bandit.select(rng)
        bandit.on_submit(arm)
        chosen.append(arm)
        pending.append((arm, 4, 0.0) if arm == barren else
                       (arm, 1 + (world.random() < 0.1), 1.0 if world.random() < 0.9 else 0.5))
    return chosen


@pytest.mark.parametrize("seed", range(5))
def test_a_mutation_kind_that_never_yields_falls_to_the_exploration_floor(seed):
    arms = [Arm("model-a", kind) for kind in ("diff", "full", "crossover")]
    chosen = run_kinds(Bandit(arms), 300, barren=arms[1], seed=seed)
    assert chosen[:50].count(arms[1]) <= 6
    assert chosen[50:].count(arms[1]) / 250 < 0.03  # the floor: epsilon / 3, per attempt


def test_the_exploration_floor_spends_calls_evenly():
    cheap, dear = Arm("model-a", "diff"), Arm("model-b", "diff")
    bandit = Bandit([cheap, dear], BanditConfig(epsilon=1.0, decay=1.0))
    for arm, attempts in ((cheap, 1), (dear, 4)):
        bandit.on_submit(arm)
        bandit.update(arm, 0.0, attempts=attempts)
    rng = random.Random(0)
    picks = [bandit.select(rng) for _ in range(5000)]
    assert picks.count(dear) / len(picks) == pytest.approx(0.2, abs=0.02)  # 1/4 : 1


def test_a_failing_arm_left_alone_does_not_regain_its_bonus():
    # Decay fades an arm's own older attempts as it makes new ones; other arms' updates leave
    # it alone, so an arm not chosen because it failed is not retried for having been idle.
    good, bad = Arm("model-a", "diff"), Arm("model-b", "diff")
    bandit = Bandit([good, bad], BanditConfig(decay=0.99))
    for _ in range(5):  # five proposals of four rejected replies each
        bandit.on_submit(bad)
        bandit.update(bad, 0.0, yielded=0.0, attempts=4)
    evidence = bandit.stats[bad].pulls
    for _ in range(500):
        bandit.on_submit(good)
        bandit.update(good, 0.0, yielded=1.0)
    assert bandit.stats[bad].pulls == evidence > 18
    rng = random.Random(0)
    assert sum(bandit.select(rng) == bad for _ in range(1000)) < 50  # about epsilon / 2


@pytest.mark.parametrize("seed", range(5))
def test_a_model_that_refuses_everything_falls_to_the_floor(seed):
    # Issue 26's set-up without HTTP or sandboxes (the end-to-end run is
    # tests/engine/test_bandit_cost.py): two models x three kinds at the default mix and
    # settings, one model's every proposal four rejected replies, 300 proposals, 6 in flight.
    from evolve.engine.session import make_arms

    arms, weights = make_arms(["good", "refuser"], [], {"diff": 0.7, "full": 0.2,
                                                         "crossover": 0.1})
    bandit = Bandit(arms, BanditConfig(), default_weights=weights)
    rng = random.Random(seed)
    chosen, calls = [], {"good": 0, "refuser": 0}
    pending: list[tuple[Arm, int, float]] = []
    for _ in range(300):
        if len(pending) >= 6:
            arm, attempts, yielded = pending.pop(0)
            bandit.update(arm, 0.0, yielded=yielded, attempts=attempts)
        arm = bandit.select(rng)
        bandit.on_submit(arm)
        chosen.append(arm.operator)
        outcome = (arm, 4, 0.0) if arm.operator == "refuser" else (arm, 1, 1.0)
        pending.append(outcome)
        calls[arm.operator] += outcome[1]
    assert chosen[50:].count("refuser") / 250 < 0.10
    assert calls["refuser"] / sum(calls.values()) < 0.15


def test_decay_per_arm_still_follows_a_drift():
    # The arm that worked stops working and the one that failed starts to: the first keeps
    # being chosen, its own evidence fades with its new failures, and the second takes over.
    first, second = Arm("m", "diff"), Arm("m", "full")
    bandit = Bandit([first, second])
    rng, world = random.Random(0), random.Random(1)
    picks = []
    for t in range(600):
        arm = bandit.select(rng)
        bandit.on_submit(arm)
        works = arm == (first if t < 300 else second)
        bandit.update(arm, 1.0 if works and world.random() < 0.3 else 0.0,
                      yielded=1.0 if works else 0.0, attempts=1 if works else 4)
        picks.append(arm)
    assert picks[150:300].count(first) > 120
    assert picks[450:].count(second) > 120

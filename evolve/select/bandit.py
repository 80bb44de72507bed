"""The bandit that chooses which arm = (operator, mutation kind) makes the next proposal.

Reward is asymmetric: only improvement over max(parent, initial program) counts, failures and
regressions give 0 (as in ShinkaEvolve's asymmetric UCB). Rewards are normalised by the largest
reward seen, so one exploration constant suits problems of any score scale.

Besides the reward, each result says how much the proposal yielded (`yielded`: 1 = a valid
program, 0.5 = a program that ran but was invalid, 0 = nothing to evaluate: the reply was
rejected or a duplicate). An arm's value adds `YIELD_WEIGHT` x its yield rate, so an arm whose
proposals are rejected ranks below one that gives valid programs that do not improve, and an
arm that never yields is learned as such instead of looking like an unlucky one.

Selection pays for what it wastes: the unit of every statistic is the *attempt* (one LLM call,
or one try of an offline operator), not the proposal. A proposal whose replies were rejected
three times before the fourth was used, or never used, made four attempts, and every rejected
one counts as a failed attempt of its arm. So an arm's value is usefulness per call, and its
exploration bonus shrinks with the calls it has spent: a model (or a mutation kind) that never
yields a program falls to the exploration floor within a few of its proposals, where improvement
rewards alone (near zero for most useful proposals too) would leave it looking like the others.
`cost_aware` additionally divides by the dollar price of an attempt.

The exploration floor is `epsilon`: that share of proposals goes to an arm at random, weighted
so that each arm gets the same share of *attempts* (an arm whose proposals take four calls is
drawn a quarter as often).

One attempt is counted when a proposal is *submitted* (`on_submit`), the rest when its result
arrives (`update`); with several proposals in flight, an arm already busy looks less
attractive instead of being chosen again blindly. `decay` < 1 discounts an arm's older
attempts as it makes new ones (operators' usefulness drifts as a run progresses); an arm that
is not chosen keeps its evidence, so a failing arm does not earn its way back by being left
alone. All randomness comes from the `random.Random` passed to `select`.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any

from evolve.config import BanditConfig

STATE_VERSION = 2  # 2: statistics per attempt, decay per arm
YIELD_WEIGHT = 0.5


@dataclass(frozen=True, order=True)
class Arm:
    operator: str
    mutation: str

    @property
    def label(self) -> str:
        return f"{self.operator}:{self.mutation}"

    @classmethod
    def from_label(cls, label: str) -> Arm:
        # Model names contain ':' (ollama tags), so the mutation kind is after the last one.
        operator, _, mutation = label.rpartition(":")
        return cls(operator, mutation)

    def __str__(self) -> str:
        return self.label


def reward(child: float | None, parent: float | None, initial: float | None, *,
           ok: bool = True) -> float:
    """Improvement of the child over max(parent, initial); 0 for failures and regressions."""
    if not ok or child is None or not math.isfinite(child):
        return 0.0
    baselines = [s for s in (parent, initial) if s is not None and math.isfinite(s)]
    if not baselines:
        return 0.0
    return max(0.0, child - max(baselines))


@dataclass
class ArmStats:
    pulls: float = 0.0  # discounted attempts: one per submitted proposal, the rest on update
    completed: float = 0.0  # discounted attempts whose result arrived
    proposals: float = 0.0  # discounted finished proposals
    reward_sum: float = 0.0  # discounted
    cost_sum: float = 0.0  # discounted, USD
    yield_sum: float = 0.0  # discounted
    pending: int = 0  # submitted, reward not yet in
    total_pulls: int = 0  # undiscounted proposals, for display
    total_attempts: int = 0  # undiscounted
    total_reward: float = 0.0
    total_cost: float = 0.0

    @property
    def mean_reward(self) -> float:
        return self.reward_sum / self.completed if self.completed > 0 else 0.0

    @property
    def yield_rate(self) -> float:
        return self.yield_sum / self.completed if self.completed > 0 else 0.0

    @property
    def mean_cost(self) -> float:
        return self.cost_sum / self.completed if self.completed > 0 else 0.0

    @property
    def attempts_per_proposal(self) -> float:
        return self.completed / self.proposals if self.proposals > 0 else 1.0


class Bandit:
    def __init__(self, arms: list[Arm], config: BanditConfig | None = None, *,
                 default_weights: dict[str, float] | None = None) -> None:
        if not arms:
            raise ValueError("the bandit needs at least one arm (operator:mutation)")
        self.config = config or BanditConfig()
        self.arms = list(dict.fromkeys(arms))
        self.stats: dict[Arm, ArmStats] = {arm: ArmStats() for arm in self.arms}
        self.default_weights = dict(default_weights or {})
        self.scale = 0.0  # largest reward seen, for normalisation
        self.benched: set[Arm] = set()  # never chosen again (e.g. a model that keeps failing)

    # -- choosing -------------------------------------------------------------------------

    @property
    def active(self) -> list[Arm]:
        """The arms that may be chosen (not benched), in their order."""
        return [arm for arm in self.arms if arm not in self.benched] if self.benched \
            else self.arms

    def bench(self, arm: Arm) -> None:
        """Never choose `arm` again; its statistics stay for display."""
        if arm in self.stats:
            self.benched.add(arm)

    def select(self, rng: random.Random) -> Arm:
        if not self.active:
            raise ValueError("every arm of the bandit is benched")
        algorithm = self.config.algorithm
        if algorithm == "fixed":
            return self._select_fixed(rng)
        if self.config.epsilon and rng.random() < self.config.epsilon:
            return self._explore(rng)
        if algorithm == "thompson":
            return self._select_thompson(rng)
        return self._select_ucb(rng)

    def weight(self, arm: Arm) -> float:
        """Weight for the fixed policy: config by label, then per-operator default, then 1."""
        weights = self.config.weights
        for key in (arm.label, arm.operator):
            if key in weights:
                return weights[key]
        return self.default_weights.get(arm.label, self.default_weights.get(arm.operator, 1.0))

    def _explore(self, rng: random.Random) -> Arm:
        """The exploration floor: an arm at random, weighted so that every arm gets the same
        share of *attempts* (calls): an arm whose proposals take four calls is explored a
        quarter as often as one that takes one."""
        arms = self.active
        return rng.choices(arms, weights=[1.0 / self.stats[a].attempts_per_proposal
                                          for a in arms], k=1)[0]

    def _select_fixed(self, rng: random.Random) -> Arm:
        arms = self.active
        weights = [self.weight(arm) for arm in arms]
        if sum(weights) <= 0:
            raise ValueError("every bandit weight is 0: give at least one arm a positive weight")
        return rng.choices(arms, weights=weights, k=1)[0]

    def _cost_floor(self) -> float:
        """Added to every arm's cost so free arms do not divide by zero."""
        costs = [s.mean_cost for s in self.stats.values() if s.mean_cost > 0]
        return max(1e-6, 0.1 * (sum(costs) / len(costs))) if costs else 1.0

    def _usefulness(self, arm: Arm) -> float:
        """Normalised mean reward plus the yield term, in [0, 1 + YIELD_WEIGHT]."""
        stats = self.stats[arm]
        return stats.mean_reward / (self.scale or 1.0) + YIELD_WEIGHT * stats.yield_rate

    def _values(self, arms: list[Arm]) -> dict[Arm, float]:
        """Exploitation values: usefulness, or usefulness per dollar scaled to [0, 1]."""
        if not self.config.cost_aware:
            return {arm: self._usefulness(arm) for arm in arms}
        floor = self._cost_floor()
        per_dollar = {arm: self._usefulness(arm) / (self.stats[arm].mean_cost + floor)
                      for arm in arms}
        top = max(per_dollar.values())
        return {arm: (v / top if top > 0 else 0.0) for arm, v in per_dollar.items()}

    def _select_ucb(self, rng: random.Random) -> Arm:
        arms = self.active
        fresh = [arm for arm in arms if self.stats[arm].pulls <= 0]
        if fresh:
            return rng.choice(fresh)
        values = self._values(arms)
        total = sum(self.stats[arm].pulls for arm in arms)
        log_total = math.log(max(total, 1.0) + 1.0)
        scores = {arm: values[arm] + self.config.exploration * math.sqrt(
            log_total / self.stats[arm].pulls) for arm in arms}
        best = max(scores.values())
        # Ties broken by the rng, not by list order, so no arm is favoured by position.
        return rng.choice([arm for arm in arms if scores[arm] >= best - 1e-12])

    def _select_thompson(self, rng: random.Random) -> Arm:
        scale = self.scale or 1.0
        samples: dict[Arm, float] = {}
        for arm in self.active:
            stats = self.stats[arm]
            successes = min((stats.reward_sum / scale + YIELD_WEIGHT * stats.yield_sum)
                            / (1.0 + YIELD_WEIGHT), stats.pulls)
            # In-flight pulls count as failures until their reward arrives.
            samples[arm] = rng.betavariate(1.0 + successes, 1.0 + stats.pulls - successes)
        if self.config.cost_aware:
            floor = self._cost_floor()
            samples = {arm: v / (self.stats[arm].mean_cost + floor) for arm, v in samples.items()}
        best = max(samples.values())
        return next(arm for arm in self.active if samples[arm] == best)

    # -- feedback -------------------------------------------------------------------------

    def on_submit(self, arm: Arm) -> None:
        stats = self.stats.get(arm)
        if stats is None:
            raise KeyError(f"unknown arm {arm.label}; arms: {', '.join(self.labels)}")
        stats.pulls += 1.0
        stats.pending += 1
        stats.total_pulls += 1

    def update(self, arm: Arm, reward: float, cost_usd: float | None = 0.0,
               yielded: float = 1.0, attempts: int = 1) -> None:
        """The reward of a finished proposal, what it yielded and how many attempts (LLM calls,
        offline tries) it took (see the module text). An arm removed since its submit is
        ignored."""
        stats = self.stats.get(arm)
        if stats is None:
            return
        attempts = max(1, int(attempts))
        if self.config.decay < 1.0:
            # Each arm's own older attempts fade as it makes new ones. Not every arm's at each
            # update: an arm left alone because it failed would regain its exploration bonus
            # within a hundred proposals and be retried at full price, again and again.
            factor = self.config.decay ** attempts
            stats.pulls *= factor
            stats.completed *= factor
            stats.proposals *= factor
            stats.reward_sum *= factor
            stats.cost_sum *= factor
            stats.yield_sum *= factor
        reward = max(0.0, float(reward)) if math.isfinite(reward) else 0.0
        if stats.pending == 0:  # an update without a submit still counts as a pull
            stats.pulls += 1.0
            stats.total_pulls += 1
        stats.pulls += attempts - 1  # the submit counted one
        stats.total_attempts += attempts
        stats.pending = max(0, stats.pending - 1)
        stats.completed += attempts
        stats.proposals += 1.0
        stats.reward_sum += reward
        stats.yield_sum += min(1.0, max(0.0, float(yielded)))
        stats.total_reward += reward
        cost = cost_usd or 0.0
        stats.cost_sum += cost
        stats.total_cost += cost
        self.scale = max(self.scale, reward)

    # -- display and persistence ----------------------------------------------------------

    @property
    def labels(self) -> list[str]:
        return [arm.label for arm in self.arms]

    def summary(self) -> list[dict[str, Any]]:
        """Per arm: label, proposals (`pulls`), attempts, mean reward per attempt, total cost
        (for the dashboard and logs)."""
        return [{"arm": arm.label, "pulls": self.stats[arm].total_pulls,
                 "attempts": self.stats[arm].total_attempts,
                 "pending": self.stats[arm].pending, "benched": arm in self.benched,
                 "mean_reward": self.stats[arm].mean_reward,
                 "yield_rate": self.stats[arm].yield_rate,
                 "total_reward": self.stats[arm].total_reward,
                 "total_cost_usd": self.stats[arm].total_cost} for arm in self.arms]

    def state_dict(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "algorithm": self.config.algorithm,
            "scale": self.scale,
            "benched": sorted(arm.label for arm in self.benched),
            "arms": {arm.label: {
                "operator": arm.operator, "mutation": arm.mutation,
                "pulls": s.pulls, "completed": s.completed, "proposals": s.proposals,
                "reward_sum": s.reward_sum, "cost_sum": s.cost_sum, "yield_sum": s.yield_sum,
                "pending": s.pending, "total_pulls": s.total_pulls,
                "total_attempts": s.total_attempts,
                "total_reward": s.total_reward, "total_cost": s.total_cost,
            } for arm, s in self.stats.items()},
        }

    @classmethod
    def from_state(cls, state: dict[str, Any] | None, arms: list[Arm],
                   config: BanditConfig | None = None, *,
                   default_weights: dict[str, float] | None = None) -> Bandit:
        """Restore saved statistics for the arms still present; new arms start fresh.

        Work that was in flight when the state was saved never reported back, so its pulls
        are taken off again.
        """
        bandit = cls(arms, config, default_weights=default_weights)
        if not state:
            return bandit
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"bandit state version {state.get('version')!r} is not "
                             f"{STATE_VERSION}; start a new run or drop the saved state")
        saved = state.get("arms", {})
        for arm in bandit.arms:
            entry = saved.get(arm.label)
            if entry is None:
                continue
            pending = int(entry.get("pending", 0))
            bandit.stats[arm] = ArmStats(
                pulls=max(0.0, float(entry["pulls"]) - pending),
                completed=float(entry["completed"]), proposals=float(entry["proposals"]),
                reward_sum=float(entry["reward_sum"]),
                cost_sum=float(entry["cost_sum"]), pending=0,
                yield_sum=float(entry.get("yield_sum", entry["completed"])),
                total_pulls=max(0, int(entry["total_pulls"]) - pending),
                total_attempts=int(entry["total_attempts"]),
                total_reward=float(entry["total_reward"]),
                total_cost=float(entry["total_cost"]))
        bandit.scale = float(state.get("scale", 0.0))
        return bandit

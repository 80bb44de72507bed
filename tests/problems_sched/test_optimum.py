"""The omniscient-optimum DP against brute force over every action sequence on short traces,
and the cached optimum files against a fresh computation."""

from __future__ import annotations

import itertools
import json
import math
import random

import pytest

from problems._spot_sim.grids import multi_runs, single_runs
from problems._spot_sim.optimum import _solve_multi, _solve_single, multi_optimum, single_optimum
from problems._spot_sim.simulate import run_multi, run_single
from problems._spot_sim.state import Scenario
from problems._spot_sim.traces import load_multi, load_single
from tests.problems_sched.conftest import PROBLEMS


def brute_single(available: bytes, scn: Scenario) -> float:
    best = math.inf
    for seq in itertools.product((0, 1, 2), repeat=scn.deadline_ticks):
        r = run_single(lambda s, seq=seq: seq[s.tick], scn, available, guard=False)
        if not r.missed:
            best = min(best, r.cost)
    return best


def brute_multi(available, prices, scn: Scenario) -> float:
    actions = [(a, r) for a in (0, 1, 2) for r in range(len(available))]
    best = math.inf
    for seq in itertools.product(actions, repeat=scn.deadline_ticks):
        r = run_multi(lambda s, seq=seq: seq[s.tick], scn, available, prices, guard=False)
        if not r.missed:
            best = min(best, r.cost)
    return best


def same(a: float, b: float) -> bool:
    return a == b or abs(a - b) < 1e-9


@pytest.mark.parametrize("seed", range(10))
def test_single_region_dp_equals_brute_force(seed):
    rng = random.Random(seed)
    ticks = 7
    overhead = [0, 72, 600, 720, 1440][seed % 5]
    work = rng.choice([1200, 1800, 2400])
    available = bytes(rng.random() < 0.6 for _ in range(ticks))
    scn = Scenario(gap_s=600, deadline_s=600 * ticks, task_s=work, restart_overhead_s=overhead,
                   on_demand_price=3.06, spot_price=0.9731)
    dp = single_optimum(available, gap=600, overhead=overhead, work=work, ticks=ticks,
                        spot_price=0.9731, on_demand_price=3.06)
    assert same(dp, brute_single(available, scn))


def test_single_region_dp_reports_infeasible_as_infinite():
    assert single_optimum(bytes(3), gap=600, overhead=600, work=1800, ticks=3, spot_price=1.0,
                          on_demand_price=3.0) == math.inf


@pytest.mark.parametrize("seed", range(4))
def test_multi_region_dp_equals_brute_force(seed):
    rng = random.Random(100 + seed)
    ticks = 5
    overhead = [72, 300, 720, 0][seed]
    work = rng.choice([1200, 1800])
    available = tuple(bytes(rng.random() < 0.5 for _ in range(ticks)) for _ in range(2))
    prices = tuple(tuple(round(rng.uniform(0.5, 2.5), 3) for _ in range(ticks)) for _ in range(2))
    scn = Scenario(gap_s=600, deadline_s=600 * ticks, task_s=work, restart_overhead_s=overhead,
                   on_demand_price=3.06, spot_price=prices[0][0], num_regions=2)
    dp = multi_optimum(available, prices, gap=600, overhead=overhead, work=work, ticks=ticks,
                       on_demand_price=3.06)
    assert same(dp, brute_multi(available, prices, scn))


def _cached(problem: str) -> dict[str, float]:
    return json.loads((PROBLEMS / problem / "optimum.json").read_text())["optimum"]


def test_single_region_cache_covers_the_grid_and_matches_a_fresh_solve():
    cache = _cached("spot_single")
    runs = single_runs(load_single(PROBLEMS / "spot_single" / "data" / "single_region.json.gz"), "full")
    assert set(cache) == {run.key for run in runs} and len(cache) == 1080
    for run in random.Random(7).sample([r for r in runs if "/0.2" in r.key], 3):
        key, value = _solve_single(run)
        assert cache[key] == pytest.approx(value, abs=1e-5)


def test_multi_region_cache_covers_the_scenarios_and_matches_a_fresh_solve():
    cache = _cached("spot_multi")
    runs = multi_runs(load_multi(PROBLEMS / "spot_multi" / "data" / "multi_region.json.gz"), "full")
    assert set(cache) == {run.key for run in runs} and len(cache) == 34
    key, value = _solve_multi(runs[0])
    assert cache[key] == pytest.approx(value, abs=1e-5)

"""The evaluation scenarios of both spot problems, with stable run keys: our grids, and the ADRS
Leaderboard's single-region grid (reported beside our score, for comparison)."""

from __future__ import annotations

from dataclasses import dataclass

from problems._spot_sim import ON_DEMAND_PRICE, SINGLE_SPOT_PRICE
from problems._spot_sim.state import Scenario
from problems._spot_sim.traces import MultiRegionData, SingleRegionData

TASK_HOURS = 48.0

# --- one region: 4 environments x 30 evenly spaced traces x 3 deadlines x 3 overheads ----------
SINGLE_DEADLINES_H = (52.0, 70.0, 92.0)
SINGLE_OVERHEADS_H = (0.02, 0.2, 0.4)
SINGLE_TRACES = tuple(range(0, 300, 10))
SINGLE_QUICK = {"traces": (0, 150), "deadlines": SINGLE_DEADLINES_H, "overheads": (0.2,)}

# --- one region, the ADRS Leaderboard's grid: 6 environments x their 30 traces x 2 x 3 ---------
LEADERBOARD_DEADLINES_H = (52.0, 70.0)
LEADERBOARD_OVERHEADS_H = (0.02, 0.05, 0.1)
# Their 0-100 score: 0 at all on-demand, 100 at all spot (mean costs on their grid).
LEADERBOARD_ALL_ON_DEMAND = 146.88
LEADERBOARD_ALL_SPOT = 46.71

# --- many regions: the six published scenarios (trace k of every region = one instant) ------
MULTI_DEADLINE_H = 52.0
MULTI_OVERHEAD_H = 0.2
MULTI_SCENARIOS: tuple[tuple[str, tuple[str, ...], int], ...] = (
    ("2_zones_same_region", ("us-east-1a_v100_1", "us-east-1c_v100_1"), 8),
    ("2_regions_east_west", ("us-east-2a_v100_1", "us-west-2a_v100_1"), 8),
    ("3_regions_diverse", ("us-east-1a_v100_1", "us-east-2b_v100_1", "us-west-2c_v100_1"), 6),
    ("3_zones_same_region", ("us-east-1a_v100_1", "us-east-1c_v100_1", "us-east-1d_v100_1"), 6),
    ("5_regions_high_diversity", ("us-east-1a_v100_1", "us-east-1f_v100_1", "us-west-2a_v100_1",
                                  "us-west-2b_v100_1", "us-east-2b_v100_1"), 4),
    ("all_9_regions", ("us-east-2a_v100_1", "us-west-2c_v100_1", "us-east-1d_v100_1",
                       "us-east-2b_v100_1", "us-west-2a_v100_1", "us-east-1f_v100_1",
                       "us-east-1a_v100_1", "us-west-2b_v100_1", "us-east-1c_v100_1"), 2),
)
# The quick stage: the first, middle and last trace of every scenario (17 runs, each scenario
# weighted equally). The published quick check (one trace of one scenario) ranked the baselines
# unlike the full set and stopped the paper's own policy; this one ranks them as the full stage
# does (tests/problems_sched/test_quick_gate.py).
MULTI_QUICK_TRACES_PER_SCENARIO = 3


def spread_traces(n_traces: int, wanted: int) -> tuple[int, ...]:
    """`wanted` trace indices evenly spaced over 0..n_traces-1 (first and last included)."""
    if wanted <= 1 or n_traces <= 1:
        return (0,)
    return tuple(sorted({round(j * (n_traces - 1) / (wanted - 1)) for j in range(wanted)}))


def seconds(hours: float) -> int:
    return round(hours * 3600)


@dataclass(frozen=True)
class SingleRun:
    key: str
    group: str            # the environment, for per-group metrics
    scenario: Scenario
    available: bytes


@dataclass(frozen=True)
class MultiRun:
    key: str
    group: str            # the scenario name
    weight: float         # every published scenario counts equally, whatever its trace count
    scenario: Scenario
    available: tuple[bytes, ...]
    prices: tuple[tuple[float, ...], ...]


def single_runs(data: SingleRegionData, stage: str) -> list[SingleRun]:
    if stage == "full":
        traces, deadlines, overheads = SINGLE_TRACES, SINGLE_DEADLINES_H, SINGLE_OVERHEADS_H
    elif stage == "quick":
        traces, deadlines, overheads = (SINGLE_QUICK["traces"], SINGLE_QUICK["deadlines"],
                                        SINGLE_QUICK["overheads"])
    else:
        raise KeyError(stage)
    runs = []
    for env in sorted(data.envs):
        for trace in traces:
            for deadline in deadlines:
                for overhead in overheads:
                    scenario = _single_scenario(data, deadline, overhead)
                    runs.append(SingleRun(f"{env}/{trace}/{deadline:g}/{overhead:g}", env,
                                          scenario, data.envs[env][trace]))
    return runs


def _single_scenario(data: SingleRegionData, deadline_h: float, overhead_h: float) -> Scenario:
    """One single-region run's rules: our grid and the leaderboard's differ only in which
    deadlines, overheads and traces they take."""
    return Scenario(gap_s=data.gap_s, deadline_s=seconds(deadline_h), task_s=seconds(TASK_HOURS),
                    restart_overhead_s=seconds(overhead_h), on_demand_price=ON_DEMAND_PRICE,
                    spot_price=SINGLE_SPOT_PRICE)


def leaderboard_single_runs(data: SingleRegionData) -> list[SingleRun]:
    """Every trace of the leaderboard's set (already their 30 per environment) x 2 x 3."""
    runs = []
    for env in sorted(data.envs):
        for index, available in enumerate(data.envs[env]):
            for deadline in LEADERBOARD_DEADLINES_H:
                for overhead in LEADERBOARD_OVERHEADS_H:
                    scenario = _single_scenario(data, deadline, overhead)
                    runs.append(SingleRun(f"{env}/#{index}/{deadline:g}/{overhead:g}", env,
                                          scenario, available))
    return runs


def leaderboard_score(avg_cost: float) -> int:
    """The leaderboard's 0-100 score of a mean cost on its grid."""
    share = ((LEADERBOARD_ALL_ON_DEMAND - avg_cost)
             / (LEADERBOARD_ALL_ON_DEMAND - LEADERBOARD_ALL_SPOT))
    return round(100 * min(1.0, max(0.0, share)))


def multi_runs(data: MultiRegionData, stage: str) -> list[MultiRun]:
    if stage == "full":
        chosen = [(name, regions, tuple(range(n))) for name, regions, n in MULTI_SCENARIOS]
    elif stage == "quick":
        chosen = [(name, regions, spread_traces(n, MULTI_QUICK_TRACES_PER_SCENARIO))
                  for name, regions, n in MULTI_SCENARIOS]
    else:
        raise KeyError(stage)
    runs = []
    for name, regions, traces in chosen:
        for trace in traces:
            rows = tuple(data.regions[r][trace] for r in regions)
            scenario = Scenario(gap_s=data.gap_s, deadline_s=seconds(MULTI_DEADLINE_H),
                                task_s=seconds(TASK_HOURS),
                                restart_overhead_s=seconds(MULTI_OVERHEAD_H),
                                on_demand_price=data.on_demand_price,
                                spot_price=rows[0].prices[0], num_regions=len(regions))
            runs.append(MultiRun(f"{name}/{trace}", name, 1.0 / (len(chosen) * len(traces)),
                                 scenario, tuple(t.available for t in rows),
                                 tuple(t.prices for t in rows)))
    return runs

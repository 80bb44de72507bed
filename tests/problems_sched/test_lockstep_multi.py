"""The multi-region lockstep against a candidate process gives run_multi's results exactly
(and the leaderboard rules' run_multi_leaderboard's), whatever the policy reads and returns:
the candidate's states read shared region streams, prices sent only when they change, and
decisions come back as bytes, as two byte planes or as a list."""

from __future__ import annotations

import importlib.util
import random
from array import array
from dataclasses import dataclass
from pathlib import Path

import pytest

from evaluators.harness_api import local_candidate
from evaluators.validate import CandidateError
from problems._spot_sim.leaderboard_rules import multi_ticks_leaderboard, run_multi_leaderboard
from problems._spot_sim.lockstep_multi import plan, run_lockstep_multi
from problems._spot_sim.simulate import ActionError, multi_ticks, run_multi
from problems._spot_sim.state import Scenario

# Decides by a hash of everything the state shows, so a field shown wrong at any tick changes
# the decisions that follow; stays (an action) or moves (a pair), asks for SPOT where it is
# unavailable, and lets the guard step in.
PROGRAM = '''
import zlib
{prelude}

class Policy:
    def __init__(self, scenario):
        self.seed = scenario.deadline_s * 7 + scenario.restart_overhead_s + scenario.num_regions
        self.calls = 0

    def decide(self, state):
        n = state.num_regions
        view = (state.tick, state.elapsed_s, state.time_left_s, state.work_done_s,
                state.work_left_s, state.overhead_left_s, state.cluster, state.last_cluster,
                state.preempted, state.spot_available, state.spot_history, state.region,
                n, state.spot_price, state.spot_prices, self.seed, self.calls, repr(state),
                [state.spot_available_in(r) for r in range(n)],
                [state.spot_price_in(r) for r in range(n)],
                [state.spot_history_in(r) for r in range(n)])
        self.calls += 1
        assert len(state.spot_history_in(n - 1)) == state.tick + 1
        assert type(state.preempted) is bool and type(state.work_done_s) is int
        h = zlib.crc32(repr(view).encode())
        if h % 5 == 0:
            return ({wrap}(h % 3), (h // 5) % n)
        return {wrap}(h % 3)
'''


@dataclass(frozen=True)
class Run:
    key: str
    scenario: Scenario
    available: tuple[bytes, ...]
    prices: tuple[tuple[float, ...], ...]


def _trace(rng: random.Random, ticks: int) -> tuple[bytes, tuple[float, ...]]:
    flips = rng.random() * 0.5
    trace, prices, up, price = bytearray(), [], 1, rng.choice((0.9, 1.1))
    for _ in range(ticks):
        up = 1 - up if rng.random() < flips else up
        price = round(price * rng.choice((1, 1, 1, 0.9, 1.1)), 4)
        trace.append(up)
        prices.append(price)
    return bytes(trace), tuple(prices)


def _runs() -> list[Run]:
    rng = random.Random(24)
    # Shared region streams, as in spot_multi: the same trace objects in many runs.
    streams = [_trace(rng, 80) for _ in range(6)]
    runs = []
    for i in range(30):
        gap = rng.choice((300, 600))
        ticks = rng.randint(20, 60)
        regions = rng.sample(range(len(streams)), rng.randint(1, 4))
        scenario = Scenario(gap_s=gap, deadline_s=ticks * gap,
                            task_s=gap * rng.randint(ticks // 3, ticks - 2),
                            restart_overhead_s=rng.choice((0, gap // 2, gap, 2 * gap + 60)),
                            on_demand_price=3.06, spot_price=streams[regions[0]][1][0],
                            num_regions=len(regions))
        runs.append(Run(f"run{i}", scenario, tuple(streams[r][0] for r in regions),
                        tuple(streams[r][1] for r in regions)))
    # A run of its own, shorter traces than the others'.
    own = _trace(rng, 30)
    runs.append(Run("own", Scenario(600, 600 * 30, 600 * 20, 300, 3.06, own[1][0], 1),
                    (own[0],), (own[1],)))
    return runs


def _write(tmp_path: Path, prelude: str = "", wrap: str = "") -> Path:
    path = tmp_path / "policy.py"
    path.write_text(PROGRAM.format(prelude=prelude, wrap=wrap))
    return path


def _in_process(path: Path, runs: list[Run], rules: str) -> list:
    spec = importlib.util.spec_from_file_location("_lockstep_multi_reference", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    run = run_multi if rules == "ours" else run_multi_leaderboard
    return [run(module.Policy(r.scenario).decide, r.scenario, r.available, r.prices)
            for r in runs]


@pytest.mark.parametrize("rules", ["ours", "leaderboard"])
@pytest.mark.parametrize("prelude, wrap", [
    ("", ""),                                                     # exact ints: bytes, planes
    ("import enum\nA = enum.IntEnum('A', 'NONE SPOT OD', start=0)", "A"),  # the list path
])
def test_lockstep_multi_gives_run_multis_results(tmp_path, prelude, wrap, rules):
    path = _write(tmp_path, prelude, wrap)
    runs = _runs()
    expected = _in_process(path, runs, rules)
    assert len({r.finish_tick for r in expected}) > 8  # runs end at many different ticks
    assert sum(r.preemptions for r in expected) and sum(r.region_switches for r in expected)
    assert sum(r.unavailable_spot_requests for r in expected)
    ticks = multi_ticks if rules == "ours" else multi_ticks_leaderboard
    with local_candidate(path) as candidate:
        assert run_lockstep_multi(candidate, runs, ticks) == expected


@pytest.mark.parametrize("body, fragment", [
    ("return 7 if state.tick == 3 else 0", "run b: decide() returned 7"),
    ("return (1, 2) if state.tick == 3 else 0", "run b: decide() returned region 2"),
    ("return (3, 0) if state.tick == 3 else (0, 1)", "run b: decide() returned 3"),
    ("return (1, 255) if state.tick == 3 else 0", "run b: decide() returned region 255"),
    ("return (1, -1) if state.tick == 3 else 0", "run b: decide() returned region -1"),
    ("return [1, 0]", "run b: decide() returned an object of type list"),
])
def test_an_invalid_decision_names_its_run(tmp_path, body, fragment):
    path = tmp_path / "bad.py"
    path.write_text("class Policy:\n    def __init__(self, scenario):\n"
                    "        self.b = scenario.restart_overhead_s == 60\n"
                    f"    def decide(self, state):\n        if not self.b:\n            return 0\n"
                    f"        {body}\n")
    trace, prices = bytes(10), (1.0,) * 10
    runs = [Run("a", Scenario(600, 6000, 3000, 0, 3.06, 1.0, 2), (trace, trace),
                (prices, prices)),
            Run("b", Scenario(600, 6000, 3000, 60, 3.06, 1.0, 2), (trace, trace),
                (prices, prices))]
    with local_candidate(path) as candidate, pytest.raises(ActionError) as raised:
        run_lockstep_multi(candidate, runs, multi_ticks)
    assert fragment in str(raised.value)


def test_a_program_without_policy_is_an_import_failure_naming_it(tmp_path):
    path = tmp_path / "nopolicy.py"
    path.write_text("class Polcy:\n    pass\n")
    trace, prices = bytes(10), (1.0,) * 10
    runs = [Run("a", Scenario(600, 6000, 1200, 0, 3.06, 1.0, 1), (trace,), (prices,))]
    with local_candidate(path) as candidate, pytest.raises(CandidateError) as raised:
        run_lockstep_multi(candidate, runs, multi_ticks)
    assert raised.value.kind == "import" and "no class 'Policy'" in str(raised.value)


def test_a_plan_has_one_stream_per_shared_trace_and_sends_prices_only_when_they_change():
    a, b = bytes([1, 0, 1]), bytes([0, 0])
    pa, pb = (1.0, 1.0, 2.0), (5.0, 6.0)
    runs = [Run("x", Scenario(600, 1200, 600, 0, 3.06, 1.0, 2), (a, b), (pa, pb)),
            Run("y", Scenario(600, 1200, 600, 0, 3.06, 1.0, 1), (a,), (pa,))]
    made = plan(runs)
    assert made.of_run == [[0, 1], [0]] and made.num_streams == 2
    # A stream past its trace's end shows 0 and keeps its last price.
    assert made.columns == [bytes([1, 0]), bytes([0, 0]), bytes([1, 0])]
    sent = [(list(array("i", s)), list(array("d", p))) for s, p in made.price_changes]
    assert sent == [([0, 1], [1.0, 5.0]), ([1], [6.0]), ([0], [2.0])]


def test_a_plan_made_once_gives_the_same_results(tmp_path):
    path = _write(tmp_path)
    runs = _runs()
    made = plan(runs)
    with local_candidate(path) as candidate:
        assert run_lockstep_multi(candidate, runs, multi_ticks, made) == _in_process(
            path, runs, "ours")
    with local_candidate(path) as candidate, pytest.raises(ValueError, match="a plan of"):
        run_lockstep_multi(candidate, runs[:-1], multi_ticks, made)

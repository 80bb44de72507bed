"""The lockstep against a candidate process gives run_single's results exactly, whatever the
policy reads and returns (the candidate's states are updated with what changed only)."""

from __future__ import annotations

import importlib.util
import random
from dataclasses import dataclass
from pathlib import Path

import pytest

from evaluators.harness_api import local_candidate
from evaluators.validate import CandidateError
from problems._spot_sim.lockstep import run_lockstep
from problems._spot_sim.simulate import ActionError, run_single
from problems._spot_sim.state import Scenario

# Decides by a hash of everything the state shows, so a field shown wrong at any tick changes
# the decisions that follow (and so the results); returns SPOT where spot is unavailable,
# lets the guard step in, and launches and idles often.
PROGRAM = '''
import zlib
{prelude}

class Policy:
    def __init__(self, scenario):
        self.seed = scenario.deadline_s * 7 + scenario.restart_overhead_s
        self.seen = []

    def decide(self, state):
        view = (state.tick, state.elapsed_s, state.time_left_s, state.work_done_s,
                state.work_left_s, state.overhead_left_s, state.cluster, state.last_cluster,
                state.preempted, state.spot_available, state.spot_history, state.region,
                state.num_regions, state.task_s, state.gap_s, self.seed, len(self.seen))
        self.seen.append(state.tick)
        assert len(state.spot_history) == state.tick + 1
        assert type(state.preempted) is bool and type(state.work_done_s) is int
        return {wrap}(zlib.crc32(repr(view).encode()) % 3)
'''


@dataclass(frozen=True)
class Run:
    key: str
    scenario: Scenario
    available: bytes


def _runs() -> list[Run]:
    rng = random.Random(24)
    runs = []
    for i in range(60):
        gap = rng.choice((300, 600))
        ticks = rng.randint(20, 60)
        work = gap * rng.randint(ticks // 3, ticks - 2)
        scenario = Scenario(gap_s=gap, deadline_s=ticks * gap, task_s=work,
                            restart_overhead_s=rng.choice((0, gap // 2, gap, 2 * gap + 60)),
                            on_demand_price=3.06, spot_price=0.9731)
        flips = rng.random() * 0.5
        trace, up = bytearray(), 1
        for _ in range(ticks + rng.randint(0, 5)):
            up = 1 - up if rng.random() < flips else up
            trace.append(up)
        runs.append(Run(f"run{i}", scenario, bytes(trace)))
    # No tick at all: the run never asks its policy.
    runs.append(Run("empty", Scenario(600, 300, 600, 0, 3.06, 0.9731), b""))
    return runs


def _write(tmp_path: Path, prelude: str = "", wrap: str = "") -> Path:
    path = tmp_path / "policy.py"
    path.write_text(PROGRAM.format(prelude=prelude, wrap=wrap))
    return path


def _in_process(path: Path, runs: list[Run]) -> list:
    spec = importlib.util.spec_from_file_location("_lockstep_reference", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return [run_single(module.Policy(r.scenario).decide, r.scenario, r.available) for r in runs]


@pytest.mark.parametrize("prelude, wrap", [
    ("", ""),                                                      # exact ints: sent as bytes
    ("import enum\nA = enum.IntEnum('A', 'NONE SPOT OD', start=0)", "A"),  # the list path
])
def test_lockstep_gives_run_singles_results(tmp_path, prelude, wrap):
    path = _write(tmp_path, prelude, wrap)
    runs = _runs()
    expected = _in_process(path, runs)
    assert len({r.finish_tick for r in expected}) > 10  # runs end at many different ticks
    assert sum(r.preemptions for r in expected) and sum(r.guard_overrides for r in expected)
    assert sum(r.unavailable_spot_requests for r in expected)
    with local_candidate(path) as candidate:
        assert run_lockstep(candidate, runs) == expected


@pytest.mark.parametrize("body, fragment", [
    ("return 7 if state.tick == 3 else 0", "run b: decide() returned 7"),
    ("return True", "object of type bool"),
    ("return -1 if state.tick == 2 else 0", "returned -1"),
])
def test_an_invalid_decision_names_its_run(tmp_path, body, fragment):
    path = tmp_path / "bad.py"
    path.write_text("class Policy:\n    def __init__(self, scenario):\n"
                    "        self.b = scenario.restart_overhead_s == 60\n"
                    f"    def decide(self, state):\n        if not self.b:\n            return 0\n"
                    f"        {body}\n")
    scenario = Scenario(600, 600 * 10, 600 * 5, 0, 3.06, 0.9731)
    runs = [Run("a", scenario, bytes(10)),
            Run("b", Scenario(600, 600 * 10, 600 * 5, 60, 3.06, 0.9731), bytes(10))]
    with local_candidate(path) as candidate, pytest.raises(ActionError) as raised:
        run_lockstep(candidate, runs)
    assert fragment in str(raised.value)


def test_a_policy_that_raises_is_named_with_its_run_and_tick(tmp_path):
    path = tmp_path / "raises.py"
    path.write_text("class Policy:\n    def __init__(self, scenario):\n"
                    "        self.d = scenario.deadline_s\n"
                    "    def decide(self, state):\n"
                    "        if self.d == 6000 and state.tick == 4:\n"
                    "            raise ValueError('policy bug')\n        return 2\n")
    runs = [Run("long", Scenario(600, 9000, 1200, 0, 3.06, 0.9731), bytes(15)),
            Run("short", Scenario(600, 6000, 3000, 0, 3.06, 0.9731), bytes(10))]
    with local_candidate(path) as candidate, pytest.raises(CandidateError) as raised:
        run_lockstep(candidate, runs)
    assert "run short at tick 4" in str(raised.value) and "policy bug" in str(raised.value)


def test_a_program_without_policy_is_an_import_failure_naming_it(tmp_path):
    path = tmp_path / "nopolicy.py"
    path.write_text("class Polcy:\n    pass\n")
    runs = [Run("a", Scenario(600, 6000, 1200, 0, 3.06, 0.9731), bytes(10))]
    with local_candidate(path) as candidate, pytest.raises(CandidateError) as raised:
        run_lockstep(candidate, runs)
    assert raised.value.kind == "import" and "no class 'Policy'" in str(raised.value)

"""spot_multi's judge against a candidate process gives what the policy gives in the judge's
own process, run by run, under both rule sets; and it checks every decision that comes back."""

from __future__ import annotations

import pytest

from problems._spot_sim.evaluation import evaluate_policy
from problems._spot_sim.lockstep_multi import decision_of
from problems._spot_sim.simulate import ActionError
from tests.problems_sched.conftest import PROBLEMS

PROGRAMS = ["initial.py", "baselines/uniform_progress_rr.py", "baselines/leaderboard_greedy.py"]


@pytest.mark.parametrize("rules", ["ours", "leaderboard"])
@pytest.mark.parametrize("program", PROGRAMS)
def test_the_judge_gives_the_in_process_figures(evaluators, program, rules):
    ev = evaluators["spot_multi"]
    path = str(PROBLEMS / "spot_multi" / program)
    ours = rules == "ours"
    local = evaluate_policy(path, ev.RUNS["quick"],
                            ev._run_one if ours else ev._run_one_leaderboard,
                            ev.OPTIMUM if ours else {}, drop_failed_runs=not ours)
    judged = ev.evaluate(path, "quick", rules=rules)
    assert judged["valid"] and judged["score"] == local["score"]
    timing = {"evaluation_seconds", "candidate_cpu_s"}
    assert ({k: v for k, v in judged["metrics"].items() if k not in timing}
            == {k: v for k, v in local["metrics"].items() if k not in timing})
    assert judged["metrics"]["candidate_cpu_s"] > 0


def test_every_run_gets_a_fresh_policy_and_all_advance_together(evaluators, write_program):
    # The policy prints its tick on every call: one line per run and tick, never a tick ahead
    # of another run's.
    src = ("import sys\nMADE = []\nLAST = [-1]\n"
           "class Policy:\n"
           "    def __init__(self, scenario):\n"
           "        MADE.append(self)\n"
           "    def decide(self, state):\n"
           "        if state.tick < LAST[0]:\n"
           "            raise RuntimeError(f'tick {state.tick} after tick {LAST[0]}')\n"
           "        LAST[0] = state.tick\n"
           "        if state.tick == 0 and len(MADE) != 17:\n"
           "            raise RuntimeError(f'{len(MADE)} policies at tick 0')\n"
           "        return 2\n")
    result = evaluators["spot_multi"].evaluate(write_program(src), "quick")
    assert result["valid"], result["feedback"]


@pytest.mark.parametrize("raw, words", [
    ([1, 9], "region 9; regions are 0..2"),
    ([1, True], "region of type bool"),
    ([1, 1, 1], "returned tuple"),
    ([3, 0], "returned 3"),
    (True, "type bool"),
    (-1, "returned -1"),
    (2 ** 70, "returned 1180591620717411303424"),
    (None, "type NoneType"),
    ({"returned": "Sneaky"}, "type Sneaky"),
    ({"returned": 1, "x": 2}, "type dict"),
    ([[1], 0], "type list"),
])
def test_a_decision_from_the_channel_is_checked(raw, words):
    with pytest.raises(ActionError, match="decide\\(\\) returned") as info:
        decision_of(raw, 3, 0)
    assert words in str(info.value)


def test_a_valid_decision_stays_or_moves():
    assert decision_of(1, 3, 2) == (1, 2)
    assert decision_of([0, 1], 3, 2) == (0, 1)
    assert decision_of([2, 2], 3, 0) == (2, 2)


# The candidate's side of the lockstep is the candidate's own: a program may rewrite it.
FORGED_FLEET = """
import problems._spot_sim.remote_multi as remote

def step(self, *message):
    which = self.active   # the runs still going, as the fleet keeps them
    return {reply}

remote.MultiFleet.step = step

class Policy:
    def __init__(self, scenario):
        pass

    def decide(self, state):
        return 2
"""


@pytest.mark.parametrize("reply, words", [
    ("[2] * (len(which) - 1)", "the candidate sent list for 17 decisions"),
    ("{'ok': 2}", "the candidate sent dict for 17 decisions"),
    ("[[1, 5]] * len(which)", "region 5"),
    ("[2] * (len(which) - 1) + [7]", "run all_9_regions/1: decide() returned 7"),
])
def test_a_rewritten_fleet_cannot_send_what_a_policy_could_not(evaluators, write_program,
                                                             reply, words):
    result = evaluators["spot_multi"].evaluate(write_program(FORGED_FLEET.format(reply=reply)),
                                               "quick")
    assert not result["valid"] and words in result["feedback"], result["feedback"]

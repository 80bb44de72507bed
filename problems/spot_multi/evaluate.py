"""Evaluator of `spot_multi`: the six published multi-region scenarios (2, 2, 3, 3, 5 and 9
regions on aligned traces; 48 h of work, 52 h deadline, 0.2 h restart overhead; spot billed at
each region's price of each tick, on-demand $3.06/h). Each scenario counts equally:
score = -(mean + 0.25 std) of cost with scenario weights; a missed deadline makes the program
invalid. Traces and the cached omniscient optimum are loaded before the candidate is imported.

`evaluate(..., rules="leaderboard")` runs the ADRS Leaderboard's five rule differences
(`problems/_spot_sim/leaderboard_rules.py`: no deadline check, so a late finish is billed and
valid, and a run that runs off its trace is left out of its scenario's mean) instead of ours,
only to reproduce its published figures (`python -m problems.spot_multi.leaderboard`); a run of
the search always uses ours.
"""

from __future__ import annotations

from pathlib import Path

from evaluators.harness_api import hidden_file
from problems._spot_sim.evaluation import evaluate_policy, load_optimum
from problems._spot_sim.grids import multi_runs
from problems._spot_sim.leaderboard_rules import run_multi_leaderboard
from problems._spot_sim.simulate import run_multi
from problems._spot_sim.traces import load_multi

HERE = Path(__file__).resolve().parent
# Hidden data (problem.toml): in the sandbox these come as descriptors, read here before the
# candidate is imported; their paths are not mounted, so a policy cannot look ahead.
DATA = load_multi(hidden_file(HERE, "data/multi_region.json.gz"))
OPTIMUM = load_optimum(hidden_file(HERE, "optimum.json"))
RUNS = {stage: multi_runs(DATA, stage) for stage in ("quick", "full")}


def _run_one(decide, run, _run=run_multi):
    return _run(decide, run.scenario, run.available, run.prices)


def _run_one_leaderboard(decide, run, _run=run_multi_leaderboard):
    return _run(decide, run.scenario, run.available, run.prices)


RULES = {"ours": _run_one, "leaderboard": _run_one_leaderboard}


def evaluate(program_path: str, stage: str, *, rules: str = "ours",
             _evaluate=evaluate_policy) -> dict:
    if stage not in RUNS:
        return {"score": -1e9, "valid": False, "metrics": {},
                "feedback": f"unknown stage {stage!r}; stages are {sorted(RUNS)}"}
    if rules not in RULES:
        raise ValueError(f"unknown rules {rules!r}; they are {', '.join(RULES)}")
    ours = rules == "ours"
    # The omniscient optimum is computed under our rules: no ratio to it under theirs.
    return _evaluate(program_path, RUNS[stage], RULES[rules], OPTIMUM if ours else {},
                     drop_failed_runs=not ours)

"""Evaluator of `spot_multi`: the six published multi-region scenarios (2, 2, 3, 3, 5 and 9
regions on aligned traces; 48 h of work, 52 h deadline, 0.2 h restart overhead; spot billed at
each region's price of each tick, on-demand $3.06/h). Each scenario counts equally:
score = -(mean + 0.25 std) of cost with scenario weights; a missed deadline makes the program
invalid.

The policy runs in its own process: every run gets a fresh `Policy`, and all runs advance one
tick per message (`problems._spot_sim.lockstep_multi`), so runs that share a region's trace
never show the policy the future of another. Each tick's view crosses as plain values and each
decision comes back as one, checked here. The traces and the cached omniscient optimum stay in
the judge's process.

`judge(..., rules="leaderboard")` (and `evaluate(..., rules="leaderboard")`) runs the ADRS
Leaderboard's five rule differences (`problems/_spot_sim/leaderboard_rules.py`: no deadline
check, so a late finish is billed and valid, and a run that runs off its trace is left out of
its scenario's mean) instead of ours, only to reproduce its published figures
(`python -m problems.spot_multi.leaderboard`); a run of the search always uses ours.
"""

from __future__ import annotations

import time
from pathlib import Path

from evaluators.harness_api import Candidate, CandidateError, evaluate_locally, hidden_file
from problems._spot_sim.evaluation import load_optimum, summarize
from problems._spot_sim.grids import multi_runs
from problems._spot_sim.leaderboard_rules import multi_ticks_leaderboard, run_multi_leaderboard
from problems._spot_sim.lockstep_multi import plan, run_lockstep_multi
from problems._spot_sim.simulate import ActionError, multi_ticks, run_multi
from problems._spot_sim.traces import load_multi

HERE = Path(__file__).resolve().parent
# Hidden data (problem.toml): in the sandbox these come as descriptors, read here before the
# candidate is imported; their paths are not mounted, so a policy cannot look ahead.
DATA = load_multi(hidden_file(HERE, "data/multi_region.json.gz"))
OPTIMUM = load_optimum(hidden_file(HERE, "optimum.json"))
RUNS = {stage: multi_runs(DATA, stage) for stage in ("quick", "full")}
# What every step of a stage sends that the traces alone decide (each tick's availability
# column and price changes), made once here: a warm judge forks with it.
PLANS = {stage: plan(runs) for stage, runs in RUNS.items()}

# The tick logic of each rule set (the generators the lockstep drives).
RULES = {"ours": multi_ticks, "leaderboard": multi_ticks_leaderboard}


def _run_one(decide, run, _run=run_multi):
    """One run with a policy in this process (benchmarks: the old path, and counting calls)."""
    return _run(decide, run.scenario, run.available, run.prices)


def _run_one_leaderboard(decide, run, _run=run_multi_leaderboard):
    return _run(decide, run.scenario, run.available, run.prices)


def _fail(message: str) -> dict:
    return {"score": -1e9, "valid": False, "metrics": {}, "feedback": message}


def judge(candidate: Candidate, stage: str, *, rules: str = "ours") -> dict:
    if stage not in RUNS:
        return _fail(f"unknown stage {stage!r}; stages are {sorted(RUNS)}")
    if rules not in RULES:
        raise ValueError(f"unknown rules {rules!r}; they are {', '.join(RULES)}")
    runs = RUNS[stage]
    started = time.perf_counter()
    try:
        results = run_lockstep_multi(candidate, runs, RULES[rules], PLANS[stage])
    except (CandidateError, ActionError) as exc:
        return _fail(str(exc))
    seconds = time.perf_counter() - started
    ours = rules == "ours"
    # The omniscient optimum is computed under our rules: no ratio to it under theirs.
    result = summarize(runs, results, OPTIMUM if ours else {}, seconds,
                       drop_failed_runs=not ours)
    result["metrics"]["candidate_cpu_s"] = round(candidate.cpu_s, 3)
    return result


def evaluate(program_path: str, stage: str, *, rules: str = "ours") -> dict:
    """The judge against a local, unsandboxed candidate process (scripts and tests)."""
    if rules not in RULES:   # before a candidate process is started for nothing
        raise ValueError(f"unknown rules {rules!r}; they are {', '.join(RULES)}")
    return evaluate_locally(judge, program_path, stage, rules=rules)

"""Evaluator of `spot_single`: one region, 1,080 runs (4 environments x 30 traces x 3 deadlines
x 3 restart overheads, 48 h of work). Score = -(mean cost + 0.25 std); a missed deadline makes
the program invalid. The policy runs in its own process: every run gets a fresh `Policy`, and
all runs advance one tick per message (`problems._spot_sim.lockstep`), so runs that share a
trace never show the policy the future of another. The full stage also runs the ADRS Leaderboard's grid (their 6
environments x 30 traces x 2 deadlines x 3 overheads) and reports its avg_cost and 0-100 score
(`leaderboard_*` metrics), for comparison with the published figures; they do not enter the
score. The traces and the cached omniscient optimum stay in the judge's process.
"""

from __future__ import annotations

import time
from pathlib import Path

from evaluators.harness_api import Candidate, CandidateError, evaluate_locally, hidden_file
from problems._spot_sim.evaluation import load_optimum, summarize
from problems._spot_sim.grids import leaderboard_score, leaderboard_single_runs, single_runs
from problems._spot_sim.lockstep import run_lockstep
from problems._spot_sim.simulate import ActionError, run_single
from problems._spot_sim.traces import load_single

HERE = Path(__file__).resolve().parent
# Hidden data (problem.toml): in the sandbox these come as descriptors, read here before the
# candidate is imported; their paths are not mounted, so a policy cannot look ahead.
DATA = load_single(hidden_file(HERE, "data/single_region.json.gz"))
LEADERBOARD = load_single(hidden_file(HERE, "data/leaderboard_single.json.gz"))
OPTIMUM = load_optimum(hidden_file(HERE, "optimum.json"))
RUNS = {stage: single_runs(DATA, stage) for stage in ("quick", "full")}
LEADERBOARD_RUNS = leaderboard_single_runs(LEADERBOARD)


def _run_one(decide, run, _run=run_single):
    return _run(decide, run.scenario, run.available)


def _fail(message: str) -> dict:
    return {"score": -1e9, "valid": False, "metrics": {}, "feedback": message}


def judge(candidate: Candidate, stage: str) -> dict:
    if stage not in RUNS:
        return {"score": -1e9, "valid": False, "metrics": {},
                "feedback": f"unknown stage {stage!r}; stages are {sorted(RUNS)}"}
    runs = RUNS[stage]
    board_runs = LEADERBOARD_RUNS if stage == "full" else []
    started = time.perf_counter()
    try:
        # Our grid and the leaderboard's in one lockstep: one message per tick for both.
        results = run_lockstep(candidate, [*runs, *board_runs])
    except (CandidateError, ActionError) as exc:
        return _fail(str(exc))
    seconds = time.perf_counter() - started
    result = summarize(runs, results[:len(runs)], OPTIMUM, seconds)
    if stage != "full" or not result["valid"]:
        return result
    board = summarize(board_runs, results[len(runs):], {}, seconds)
    if not board["valid"]:
        return {**board, "feedback": "on the ADRS Leaderboard's grid: " + board["feedback"]}
    avg_cost = board["metrics"]["mean_cost"]
    result["metrics"].update({"leaderboard_avg_cost": avg_cost,
                              "leaderboard_score": leaderboard_score(avg_cost),
                              "leaderboard_runs": board["metrics"]["runs"],
                              "candidate_cpu_s": round(candidate.cpu_s, 3)})
    return result


def evaluate(program_path: str, stage: str) -> dict:
    """The judge against a local, unsandboxed candidate process (scripts and tests)."""
    return evaluate_locally(judge, program_path, stage)

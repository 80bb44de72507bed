"""Evaluator of `spot_single`: one region, 1,080 runs (4 environments x 30 traces x 3 deadlines
x 3 restart overheads, 48 h of work). Score = -(mean cost + 0.25 std); a missed deadline makes
the program invalid. The full stage also runs the ADRS Leaderboard's grid (their 6
environments x 30 traces x 2 deadlines x 3 overheads) and reports its avg_cost and 0-100 score
(`leaderboard_*` metrics), for comparison with the published figures; they do not enter the
score. The traces and the cached omniscient optimum are loaded before the candidate is imported.
"""

from __future__ import annotations

from pathlib import Path

from evaluators.harness_api import hidden_file
from problems._spot_sim.evaluation import evaluate_policy, load_optimum
from problems._spot_sim.grids import leaderboard_score, leaderboard_single_runs, single_runs
from problems._spot_sim.simulate import run_single
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


def evaluate(program_path: str, stage: str, *, _evaluate=evaluate_policy,
             _score=leaderboard_score) -> dict:
    if stage not in RUNS:
        return {"score": -1e9, "valid": False, "metrics": {},
                "feedback": f"unknown stage {stage!r}; stages are {sorted(RUNS)}"}
    result = _evaluate(program_path, RUNS[stage], _run_one, OPTIMUM)
    if stage != "full" or not result["valid"]:
        return result
    board = _evaluate(program_path, LEADERBOARD_RUNS, _run_one, {})
    if not board["valid"]:
        return {**board, "feedback": "on the ADRS Leaderboard's grid: " + board["feedback"]}
    avg_cost = board["metrics"]["mean_cost"]
    result["metrics"].update({"leaderboard_avg_cost": avg_cost,
                              "leaderboard_score": _score(avg_cost),
                              "leaderboard_runs": board["metrics"]["runs"]})
    return result

"""Evaluator of `spot_single`: one region, 1,080 runs (4 environments x 30 traces x 3 deadlines
x 3 restart overheads, 48 h of work). Score = -(mean cost + 0.25 std); a missed deadline makes
the program invalid. The traces and the cached omniscient optimum are loaded before the
candidate is imported.
"""

from __future__ import annotations

from pathlib import Path

from evaluators.harness_api import hidden_file
from problems._spot_sim.evaluation import evaluate_policy, load_optimum
from problems._spot_sim.grids import single_runs
from problems._spot_sim.simulate import run_single
from problems._spot_sim.traces import load_single

HERE = Path(__file__).resolve().parent
# Hidden data (problem.toml): in the sandbox these come as descriptors, read here before the
# candidate is imported; their paths are not mounted, so a policy cannot look ahead.
DATA = load_single(hidden_file(HERE, "data/single_region.json.gz"))
OPTIMUM = load_optimum(hidden_file(HERE, "optimum.json"))
RUNS = {stage: single_runs(DATA, stage) for stage in ("quick", "full")}


def _run_one(decide, run, _run=run_single):
    return _run(decide, run.scenario, run.available)


def evaluate(program_path: str, stage: str, *, _evaluate=evaluate_policy) -> dict:
    if stage not in RUNS:
        return {"score": -1e9, "valid": False, "metrics": {},
                "feedback": f"unknown stage {stage!r}; stages are {sorted(RUNS)}"}
    return _evaluate(program_path, RUNS[stage], _run_one, OPTIMUM)

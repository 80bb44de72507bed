"""Each problem folder loads, and the initial program and every baseline evaluate through the
problem's own evaluate.py with the expected standing against each other and the optimum."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from problems.spec import load_problem
from tests.problems_sched.conftest import PROBLEMS, REPO

SPOT = ("spot_single", "spot_multi")


@pytest.mark.parametrize("name", ["spot_single", "spot_multi", "txn"])
def test_problem_toml_loads_with_baselines(name):
    spec = load_problem(PROBLEMS / name)
    assert spec.name == name
    assert len(spec.baselines()) == 3
    assert "EVOLVE-BLOCK-START" in spec.initial_code() and "EVOLVE-BLOCK-END" in spec.initial_code()


@pytest.fixture(scope="module")
def spot_results(evaluators):
    out = {}
    for name in SPOT:
        spec = load_problem(PROBLEMS / name)
        programs = {"initial": spec.initial_path, **spec.baselines()}
        for label, path in programs.items():
            for stage in ("quick", "full"):
                out[name, label, stage] = evaluators[name].evaluate(str(path), stage)
    return out


@pytest.mark.parametrize("name", SPOT)
def test_spot_baselines_are_valid_and_never_beat_the_optimum(spot_results, name):
    for (problem, label, stage), result in spot_results.items():
        if problem != name:
            continue
        m = result["metrics"]
        assert result["valid"], (label, stage, result["feedback"])
        assert m["deadline_misses"] == 0
        assert m["runs_below_optimum"] == 0, (label, stage)
        assert m["cost_ratio_to_optimum"] >= 1.0
        assert result["score"] == pytest.approx(-(m["mean_cost"] + 0.25 * m["std_cost"]), abs=1e-3)
    full = {label: r for (p, label, stage), r in spot_results.items() if p == name and stage == "full"}
    assert full["on_demand"]["metrics"]["mean_cost"] == pytest.approx(147.5, abs=0.5)
    # Every spot-using baseline beats on-demand only, and the quick stage passes its threshold.
    for label, r in full.items():
        if label != "on_demand":
            assert r["score"] > full["on_demand"]["score"] + 20
    threshold = load_problem(PROBLEMS / name).stages[0].threshold
    for (p, _label, stage), r in spot_results.items():
        if p == name and stage == "quick":
            assert r["score"] >= threshold


def test_spot_single_grid_size(spot_results):
    assert spot_results["spot_single", "greedy", "full"]["metrics"]["runs"] == 1080
    assert spot_results["spot_multi", "greedy", "full"]["metrics"]["runs"] == 34


def test_txn_baselines(evaluators):
    spec = load_problem(PROBLEMS / "txn")
    ev = evaluators["txn"]
    results = {label: ev.evaluate(str(path), "full") for label, path in spec.baselines().items()}
    assert all(r["valid"] for r in results.values())
    assert results["given_order"]["score"] == 0.0
    assert results["greedy"]["metrics"]["total_makespan"] < results["random_best"]["metrics"]["total_makespan"] < 537
    assert 0 < results["greedy"]["score"] < 1


@pytest.mark.parametrize("body, fragment", [
    ("return 'SPOT'", "return NONE (0), SPOT (1) or ON_DEMAND (2)"),
    ("return 5", "returned 5"),
    ("raise ValueError('policy bug')", "policy bug"),
])
def test_spot_evaluators_reject_bad_policies(evaluators, write_program, body, fragment):
    src = f"class Policy:\n    def __init__(self, scenario):\n        pass\n\n    def decide(self, state):\n        {body}\n"
    for name in SPOT:
        result = evaluators[name].evaluate(write_program(src), "quick")
        assert not result["valid"]
        assert fragment in result["feedback"]
        assert "run " in result["feedback"]


def test_spot_multi_rejects_a_bad_region(evaluators, write_program):
    src = "class Policy:\n    def __init__(self, s):\n        pass\n\n    def decide(self, state):\n        return (1, 99)\n"
    result = evaluators["spot_multi"].evaluate(write_program(src), "quick")
    assert not result["valid"] and "region 99" in result["feedback"]


def test_a_missed_deadline_makes_the_program_invalid(evaluators):
    # An impossible deadline (less time than work): every policy misses; the evaluator says so.
    from dataclasses import replace

    from problems._spot_sim.evaluation import evaluate_policy
    from problems._spot_sim.simulate import run_single

    ev = evaluators["spot_single"]
    run = ev.RUNS["quick"][0]
    tight = replace(run, scenario=replace(run.scenario, deadline_s=40 * 3600))
    result = evaluate_policy(str(PROBLEMS / "spot_single" / "baselines" / "on_demand.py"), [tight],
                             lambda decide, r: run_single(decide, r.scenario, r.available), {})
    assert not result["valid"]
    assert result["metrics"]["deadline_misses"] == 1
    assert "Deadline missed" in result["feedback"]


@pytest.mark.parametrize("name, stage", [("txn", "full"), ("spot_multi", "quick")])
def test_evaluate_runs_in_a_fresh_process_from_another_directory(tmp_path, name, stage):
    code = ("import importlib.util, json, sys\n"
            "spec = importlib.util.spec_from_file_location('evaluate', sys.argv[1])\n"
            "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
            "print(json.dumps(m.evaluate(sys.argv[2], sys.argv[3])))\n")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-c", code, str(PROBLEMS / name / "evaluate.py"),
                           str(PROBLEMS / name / "initial.py"), stage],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["valid"] and isinstance(result["score"], float)

"""Each problem folder loads, and the initial program and every baseline evaluate through the
problem's own evaluate.py with the expected standing against each other and the optimum."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from evolve.problem.spec import load_problem
from tests.problems_sched.conftest import PROBLEMS, REPO

SPOT = ("spot_single", "spot_multi")


@pytest.mark.parametrize("name", ["spot_single", "spot_multi", "txn"])
def test_problem_toml_loads_with_baselines(name):
    spec = load_problem(PROBLEMS / name)
    assert spec.name == name
    # The spot problems also hold the ADRS Leaderboard's initial greedy program.
    assert len(spec.baselines()) == (4 if name in SPOT else 3)
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


@pytest.fixture
def restore_modules():
    """A hostile candidate rebinds module names in this process; put them back afterwards."""
    import problems._spot_sim.evaluation
    import problems._spot_sim.simulate
    import problems.txn.model

    modules = [problems._spot_sim.evaluation, problems._spot_sim.simulate, problems.txn.model]
    saved = [dict(vars(m)) for m in modules]
    yield
    for module, names in zip(modules, saved, strict=True):
        vars(module).clear()
        vars(module).update(names)


HOSTILE_SPOT = '''
import problems._spot_sim.evaluation as e
import problems._spot_sim.simulate as s

class _Free:
    def __init__(self, *args):
        self.cost, self.finish_tick = 0.0, 1
    def __getattr__(self, name):
        return 0

def _fake_run(*args, **kwargs):
    return _Free()

s.RunResult = _Free
s.run_single = s.run_multi = _fake_run
s.ON_DEMAND = s.SPOT = 1
e.weighted_mean_std = lambda values, weights: (0.0, 0.0)

NONE, SPOT, ON_DEMAND = 0, 1, 2


class Policy:
    def __init__(self, scenario):
        pass

    def decide(self, state):
        return ON_DEMAND
'''


@pytest.mark.parametrize("name", SPOT)
def test_rebinding_simulator_names_does_not_change_the_score(evaluators, write_program, name,
                                                             restore_modules):
    honest = evaluators[name].evaluate(str(PROBLEMS / name / "baselines" / "on_demand.py"), "quick")
    hostile = evaluators[name].evaluate(write_program(HOSTILE_SPOT), "quick")
    assert hostile["valid"]
    assert hostile["score"] == pytest.approx(honest["score"])
    # The evaluator keeps working after the candidate: its references were bound before it.
    again = evaluators[name].evaluate(str(PROBLEMS / name / "baselines" / "on_demand.py"), "quick")
    assert again["score"] == pytest.approx(honest["score"])


def test_rebinding_the_txn_model_does_not_change_the_makespan(evaluators, write_program,
                                                              restore_modules):
    src = ("import problems.txn.model as m\n"
           "m.makespan = lambda txns, order: 1\n"
           "m.check_order = lambda order, n: list(range(n))\n"
           "class P(m.Placement):\n"
           "    def add(self, txn):\n"
           "        return 1\n"
           "m.Placement = P\n"
           "def schedule(workload):\n"
           "    return list(range(len(workload)))\n")
    result = evaluators["txn"].evaluate(write_program(src), "full")
    assert result["valid"] and result["metrics"]["total_makespan"] == 537 and result["score"] == 0.0


@pytest.mark.parametrize("name", ["txn", "spot_multi"])
async def test_problems_check_scores_every_program_in_the_sandbox(name):
    """The real sandboxed executor (`evolve problems check`) runs the whole cascade."""
    from evolve.cli.check import check_problem

    spec = load_problem(PROBLEMS / name)
    results = await check_problem(spec)
    assert set(results) == {"initial", *(f"baseline:{b}" for b in spec.baselines())}
    for label, result in results.items():
        assert result.valid, (label, result.last.reason if result.last else None)
        assert [s.stage for s in result.stages] == [s.name for s in spec.stages]


PEEKING = '''
import gzip, json, os, subprocess
NONE, SPOT, ON_DEMAND = 0, 1, 2
TARGET = {target!r}


class Policy:
    def __init__(self, scenario):
        {action}

    def decide(self, state):
        return ON_DEMAND
'''


@pytest.mark.parametrize("name, data_file", [("spot_single", "single_region.json.gz"),
                                             ("spot_multi", "multi_region.json.gz")])
@pytest.mark.parametrize("how", ["direct", "symlink", "hardlink", "optimum", "subprocess"])
def test_a_policy_cannot_read_the_traces_while_evaluated(write_program, tmp_path, name, data_file,
                                                         how):
    """The hidden files (problem.toml) are not mounted in the sandbox: no path, link or
    process reaches them; the evaluator got them as descriptors before the policy loaded."""
    from evaluators.isolation import available_levels
    from tests.sandbox_helpers import evaluate

    if available_levels()[0] != "bwrap":
        pytest.skip("needs bubblewrap's allow-listed view (apt-get install bubblewrap)")
    target = PROBLEMS / name / "data" / data_file
    if how == "direct":
        action = "print(gzip.open(TARGET).read(10))"
    elif how == "symlink":
        link = tmp_path / "innocent.bin"
        link.symlink_to(target)
        target, action = link, "print(open(TARGET, 'rb').read(10))"
    elif how == "hardlink":
        link = tmp_path / "innocent.bin"
        try:
            os.link(target, link)
        except OSError:
            pytest.skip("hard links across these folders are not possible here")
        target, action = link, "print(open(TARGET, 'rb').read(10))"
    elif how == "optimum":
        target, action = PROBLEMS / name / "optimum.json", "print(json.load(open(TARGET)))"
    else:
        action = "print(subprocess.run(['cat', TARGET], capture_output=True))"
    code = PEEKING.format(target=str(target), action=action)
    result = evaluate(code, load_problem(PROBLEMS / name), stages=["quick"])
    stage = result.stages[0]
    assert result.valid == (how == "subprocess"), stage.reason  # open() raised, `cat` failed
    assert "\\x1f\\x8b" not in stage.stdout and "omniscient" not in stage.stdout
    # Outside the sandbox the files stay readable (the evaluator and the tests need them).
    assert (PROBLEMS / name / "data" / data_file).read_bytes()[:2] == b"\x1f\x8b"


def test_a_policy_may_read_other_files(evaluators, write_program):
    src = PEEKING.format(target=__file__, action="self.text = open(TARGET).read(100)")
    assert evaluators["spot_single"].evaluate(write_program(src), "quick")["valid"]

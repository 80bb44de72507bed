"""The evaluator end to end: baselines valid, invalid answers rejected with the reason, the
stored references current, the bound above every baseline, the quick stage fast."""

from __future__ import annotations

import json

import pytest

from evolve.problem.spec import load_problem
from problems.serving import references
from tests.problems_serving.conftest import PROBLEM

HEADER = "import math\n"


def test_problem_loads_with_four_baselines():
    spec = load_problem(PROBLEM)
    assert spec.name == "serving"
    assert sorted(spec.baselines()) == ["least_kv", "least_outstanding", "llumnix", "round_robin"]
    assert "EVOLVE-BLOCK-START" in spec.initial_code()


def test_quick_stage_scores_every_baseline_with_the_stored_figures(evaluator):
    """Through the judge, with the policy in another process: every baseline's figures are
    exactly the stored references (computed with the policy in the simulator's process)."""
    stored = json.loads(references.PATH.read_text())["quick"]
    scores = {}
    for path in sorted((PROBLEM / "baselines").glob("*.py")):
        result = evaluator.evaluate(str(path), "quick")
        assert result["valid"], (path.stem, result["feedback"])
        scores[path.stem] = result["score"]
        m = result["metrics"]
        for key in ("ttft_mean_s", "ttft_p99_s", "tpot_p99_s", "e2e_mean_s", "e2e_p99_s",
                    "preemptions", "migrations", "bound_score", "gap_to_bound"):
            assert key in m
        assert m["bound_score"] > result["score"]
        for key, entry in stored.items():
            for name, value in entry[path.stem].items():
                assert m[f"{name}[{key}]"] == value, (path.stem, key, name)
        # One message per policy call of the one scenario (dispatches, and migrate calls).
        assert m["messages"] >= entry[path.stem]["requests"]
    assert scores["round_robin"] == pytest.approx(-2.0, abs=1e-3)


@pytest.mark.parametrize("body, reason", [
    ("def dispatch(request, instances):\n    return len(instances)\n", "not an instance index"),
    ("def dispatch(request, instances):\n    return -1\n", "not an instance index"),
    ("def dispatch(request, instances):\n    return 0.5\n", "returned float"),
    ("def dispatch(request, instances):\n    return True\n", "returned bool"),
    ("def dispatch(request, instances):\n    raise ValueError('boom')\n", "boom"),
    ("def route(request, instances):\n    return 0\n", "no function 'dispatch"),
    ("class Index:\n    def __index__(self):\n        return 0\n\n"
     "def dispatch(request, instances):\n    return Index()\n", "not plain data"),
    ("def dispatch(request, instances):\n    return 0\n\nmigrate = 3\n",
     "'migrate' is defined but is not a function"),
])
def test_bad_dispatch_is_rejected_with_the_reason(evaluator, write_program, body, reason):
    result = evaluator.evaluate(write_program(HEADER + body), "quick")
    assert not result["valid"]
    assert reason in result["feedback"]


FINISHED_MOVE = """
def dispatch(request, instances):
    return request.id % len(instances)

def migrate(instances):
    if instances[0].now_s > 5.0:
        return [(0, 0, 1)]   # request 0 finished long ago
    return []
"""
WAITING_MOVE = """
def dispatch(request, instances):
    return 0

def migrate(instances):
    waiting = instances[0].waiting_requests()
    if waiting:
        return [(waiting[0].id, 0, 1)]
    return []
"""
WRONG_SOURCE = """
def dispatch(request, instances):
    return request.id % len(instances)

def migrate(instances):
    running = instances[0].running_requests()
    if running:
        return [(running[0].id, 2, 1)]
    return []
"""
SELF_MOVE = """
def dispatch(request, instances):
    return request.id % len(instances)

def migrate(instances):
    running = instances[0].running_requests()
    return [(running[0].id, 0, 0)] if running else []
"""
BAD_SHAPE = """
def dispatch(request, instances):
    return 0

def migrate(instances):
    return {"move": 1}
"""


@pytest.mark.parametrize("source, reason", [
    (FINISHED_MOVE, "request 0 already finished"),
    (WAITING_MOVE, "is not running on instance 0 (waiting)"),
    (WRONG_SOURCE, "is not running on instance 2 (running on instance 0)"),
    (SELF_MOVE, "to itself"),
    (BAD_SHAPE, "returned dict"),
])
def test_bad_migration_is_rejected_with_the_reason(evaluator, write_program, source, reason):
    result = evaluator.evaluate(write_program(source), "quick")
    assert not result["valid"]
    assert reason in result["feedback"], result["feedback"]


def test_policy_may_not_read_the_trace_in_the_sandbox():
    """The traces are hidden files: in the sandbox their paths are not mounted, and the
    evaluator got their bytes before the policy was imported."""
    from evaluators.isolation import available_levels
    from tests.sandbox_helpers import evaluate

    if available_levels()[0] != "bwrap":
        pytest.skip("needs bubblewrap's allow-listed view (apt-get install bubblewrap)")
    source = f"""
# EVOLVE-BLOCK-START
def dispatch(request, instances):
    open({str(PROBLEM / 'data' / 'azure_llm_2023_conv.csv.gz')!r}, 'rb').read(10)
    return 0
# EVOLVE-BLOCK-END
"""
    result = evaluate(source, load_problem(PROBLEM), stages=["quick"])
    assert not result.valid
    assert "No such file" in result.stages[0].feedback, result.stages[0].feedback


def test_stored_quick_references_are_current():
    stored = json.loads(references.PATH.read_text())
    assert references.compute("quick") == stored["quick"]


def test_bound_beats_every_baseline_in_every_stored_scenario():
    stored = json.loads(references.PATH.read_text())
    for stage, scenarios in stored.items():
        for key, entry in scenarios.items():
            for name in references.BASELINES:
                assert entry["bound"]["ttft_p99"] <= entry[name]["ttft_p99"], (stage, key, name)
                assert entry["bound"]["e2e_mean"] <= entry[name]["e2e_mean"], (stage, key, name)


@pytest.mark.slow
def test_stored_full_references_are_current():
    stored = json.loads(references.PATH.read_text())
    assert references.compute("full") == stored["full"]

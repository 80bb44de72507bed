"""The cascade through the real sandbox: stage order, thresholds, stops, stage selection."""

from __future__ import annotations

from pathlib import Path

import pytest

from evaluators.cascade import select_stages
from evaluators.result import FailureKind
from evolve.problem.spec import load_problem
from tests.sandbox_helpers import FIXTURES, evaluate, sort_problem

PROBE = FIXTURES / "probe_problem"


def probe(value: str) -> str:
    return f"def solve():\n    return {value}\n"


def test_all_stages_run_in_order_when_each_passes():
    result = evaluate(probe("1"), load_problem(PROBE))
    assert [s.stage for s in result.stages] == ["first", "second"]
    assert result.valid
    assert result.score == 2.0  # the deepest stage's score
    assert result.stages[0].score == 1.0


def test_a_stage_below_its_threshold_stops_the_cascade():
    result = evaluate(probe("0.25"), load_problem(PROBE))
    assert [s.stage for s in result.stages] == ["first"]
    assert result.stage_reached == "first"
    assert result.stages[0].score == 0.25  # kept, even though it stopped the cascade


def test_a_failing_stage_stops_the_cascade_and_is_kept():
    result = evaluate(probe("1 / 0"), load_problem(PROBE))
    assert len(result.stages) == 1
    assert result.failure == FailureKind.CRASH
    assert "ZeroDivisionError" in result.reason and "program.py line 2" in result.reason


def test_an_invalid_stage_stops_the_cascade():
    result = evaluate("def solve(xs):\n    return xs\n")  # unsorted: the evaluator says invalid
    assert [s.stage for s in result.stages] == ["quick"]
    assert result.failure == FailureKind.INVALID_OUTPUT
    assert "not the sorted input" in result.reason


def test_selected_stages_only():
    result = evaluate(probe("0.25"), load_problem(PROBE), stages=["second"])
    assert [s.stage for s in result.stages] == ["second"]
    assert result.score == 0.5


def test_unknown_stage_is_a_usage_error():
    with pytest.raises(ValueError, match="no stage nope"):
        select_stages(sort_problem(), ["nope"])


def test_evaluator_data_globals_may_change_between_calls():
    # The probe evaluator increments a counter global; that is not tampering.
    result = evaluate(probe("1"), load_problem(PROBE))
    assert result.valid and result.metrics["calls"] == 1


def test_ordinary_programs_using_numpy_threads_and_subprocesses_pass():
    # The limits and the tamper guard must not get in the way of normal code.
    pytest.importorskip("numpy")
    code = '''
import subprocess, sys, threading
import numpy as np

def solve(xs):
    out = {}
    t = threading.Thread(target=lambda: out.setdefault("v", np.sort(np.array(xs)).tolist()))
    t.start(); t.join()
    subprocess.run([sys.executable, "-c", "print('child ok')"], check=True)
    with open("scratch.txt", "w") as f:
        f.write("work dir is writable")
    return [int(v) for v in out["v"]]
'''
    result = evaluate(code)
    assert result.valid, result.reason
    assert [s.stage for s in result.stages] == ["quick", "full"]
    assert "child ok" in result.stages[0].stdout


@pytest.mark.parametrize("level", ["auto", "rlimits"])
def test_each_stage_gets_a_fresh_work_dir_that_is_removed_afterwards(level):
    code = ("import os\n\ndef solve(xs):\n    print('cwd=' + os.getcwd(), sorted(os.listdir('.')))\n"
            "    open('left_behind.txt', 'w').write('x')\n    return sorted(xs)\n")
    result = evaluate(code, isolation=level)
    assert result.valid, result.reason
    lines = [s.stdout.strip() for s in result.stages]
    dirs = [line.split()[0].removeprefix("cwd=") for line in lines]
    assert len(set(dirs)) == 2                       # one per stage
    assert all("left_behind.txt" not in line for line in lines)  # fresh: nothing carried over
    assert not any(Path(d).exists() for d in dirs)   # removed afterwards

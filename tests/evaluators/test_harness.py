"""The harness and its pieces: manual invocation, result validation, tamper guard, limits."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import types
from pathlib import Path

from evaluators import guard
from evaluators.validate import classify_exception, validate_returned
from tests.sandbox_helpers import FIXTURES

REPO = Path(__file__).resolve().parents[2]


def test_manual_run_prints_one_json_result():
    problem = FIXTURES / "sort_problem"
    proc = subprocess.run([sys.executable, "-m", "evaluators.harness", str(problem),
                           str(problem / "initial.py"), "quick"],
                          capture_output=True, text=True, timeout=60, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["valid"] is True and 0 < result["score"] <= 1
    assert result["metrics"]["n"] == 200


def test_usage_error_without_arguments():
    proc = subprocess.run([sys.executable, "-m", "evaluators.harness"], capture_output=True,
                          text=True, timeout=60, cwd=REPO)
    assert proc.returncode == 2 and "usage" in proc.stderr


def test_validate_returned_accepts_a_good_result_and_truncates_feedback():
    out = validate_returned({"status": "returned", "value": {
        "score": 3, "valid": True, "metrics": {"a": 1.5}, "feedback": "x" * 20_000}})
    assert out["score"] == 3.0 and out["valid"] is True and "failure" not in out
    assert len(out["feedback"]) == 8_000


def test_validate_returned_rejects_bool_score_and_missing_fields():
    out = validate_returned({"status": "returned", "value": {"score": True, "valid": 1}})
    assert out["failure"] == "invalid-output"
    assert "score must be a number" in out["reason"] and "valid must be" in out["reason"]
    assert validate_returned({"status": "returned", "value": [1]})["failure"] == "invalid-output"


def test_tampering_wins_over_any_returned_score():
    out = validate_returned({"status": "returned", "tampered": ["evaluate.check"], "value": {
        "score": 1.0, "valid": True, "metrics": {}, "feedback": ""}})
    assert out["failure"] == "invalid-output" and "evaluate.check" in out["reason"]


def test_classify_points_at_the_candidate_line():
    program = Path("/work/program.py")
    code = compile("def f():\n    return {}['missing']\nf()\n", str(program), "exec")
    try:
        exec(code, {})
    except KeyError as exc:
        kind, reason = classify_exception(exc, program)
    assert kind == "crash"
    assert "program.py line 2 in f" in reason


def test_classify_blames_the_evaluator_when_the_candidate_is_not_on_the_stack():
    try:
        {}["x"]
    except KeyError as exc:
        kind, reason = classify_exception(exc, Path("/w/program.py"))
    assert kind == "evaluator-error" and "in the evaluator" in reason


def test_guard_detects_and_restores_swapped_functions_and_clocks():
    module = types.ModuleType("fake_evaluator")

    def check() -> bool:
        return False

    module.check = check
    module.counter = 0
    sys.modules["fake_evaluator"] = module
    try:
        snap = guard.Snapshot({"fake_evaluator": module})
        module.counter = 5                      # data: allowed
        module.check = lambda: True             # function swap: caught
        real = time.perf_counter
        time.perf_counter = lambda: 0.0         # clock swap: caught
        try:
            found = snap.check_and_restore()
        finally:
            time.perf_counter = real
        assert set(found) == {"fake_evaluator.check", "time.perf_counter"}
        assert module.check is check and module.counter == 5
        assert time.perf_counter is real
        assert snap.check_and_restore() == []
        assert snap.tampered == ["fake_evaluator.check", "time.perf_counter"]
    finally:
        del sys.modules["fake_evaluator"]


def test_worker_exit_classification():
    import signal

    from evaluators.validate import classify_worker_exit

    kind, reason = classify_worker_exit(signal.SIGKILL, maxrss_mb=300, memory_mb=320)
    assert kind == "memory" and "320 MB" in reason
    assert classify_worker_exit(signal.SIGKILL, maxrss_mb=20, memory_mb=320)[0] == "crash"
    assert classify_worker_exit(signal.SIGXCPU, 20, 320, cpu_s=5, cpu_limit=5)[0] == "timeout"
    kind, reason = classify_worker_exit(signal.SIGSEGV, 20, 320)
    assert kind == "crash" and "SIGSEGV" in reason
    kind, reason = classify_worker_exit(3 << 8, 20, 320)  # exit code 3
    assert kind == "crash" and "exit code 3" in reason

"""Hostile candidates that read or rewrite the evaluator from inside its process: frames, gc,
the evaluator's modules, shared helpers under `problems/`, builtins that undo themselves,
function code, objects that lie to the validator, and threads racing the harness. Each must
end without a good score, with the failure kind that names what happened."""

from __future__ import annotations

from pathlib import Path

import pytest

from evaluators.result import FailureKind
from evolve.problem.spec import load_problem
from tests.sandbox_helpers import FIXTURES, candidate, evaluate

from .test_hostile import assert_failed

PROBLEMS_DIR = Path(__file__).resolve().parents[2] / "problems"


def spot_single():
    return load_problem(PROBLEMS_DIR / "spot_single")


def spot_multi():
    return load_problem(PROBLEMS_DIR / "spot_multi")


def in_process_spot():
    """A spot problem on the in-process API (a fixture: a plugin may still be written so): the
    guards below protect such problems. The built-in spot problems' judges run in another
    process (tests/hostile/test_judge_candidate.py and the end of this file)."""
    return load_problem(FIXTURES / "in_process_spot_problem")


def shared_helper_problem():
    return load_problem(FIXTURES / "shared_helper_problem")


# --- refused by the source check before the import ------------------------------------------

@pytest.mark.parametrize("name, words", [
    ("spot_frame_reads_future", "line 10: sys._getframe is not allowed"),
    ("spot_import_evaluator", "import evaluate is not allowed"),
    ("spot_gc_finds_traces", "import gc is not allowed"),
    ("spot_traceback_frames", "__traceback__ is not allowed"),
])
def test_introspection_is_refused_before_import(name, words):
    result = evaluate(candidate(name), in_process_spot(), stages=["quick"])
    assert_failed(result, FailureKind.SANDBOX_DENIED)
    assert words in result.reason
    assert "line " in result.reason


# --- denied at run time (spellings the source check cannot see) -----------------------------

@pytest.mark.parametrize("name", ["spot_logging_currentframe", "spot_pickle_getframe"])
def test_frames_taken_at_run_time_are_denied_even_when_caught(name):
    result = evaluate(candidate(name), in_process_spot(), stages=["quick"])
    assert_failed(result, FailureKind.SANDBOX_DENIED)
    assert "sys._getframe" in result.reason
    assert "allow_introspection" in result.reason


def test_ordinary_libraries_are_not_flagged_by_the_introspection_guards():
    # numpy, threads, namedtuple, typing, enum, dataclasses, logging, warnings (and torch when
    # installed, imported for the first time by the candidate itself) use frames and ctypes
    # internally: that must not count as the candidate's introspection.
    result = evaluate(candidate("ordinary_policy_with_libraries"), in_process_spot(),
                      stages=["quick"])
    assert result.valid, (result.failure, result.reason)
    assert result.score is not None and result.score > -150


# --- caught by the tamper guard (problems that allow introspection) ---------------------------

def test_patching_a_shared_helper_under_problems_is_rejected():
    honest = evaluate("def solve():\n    return [100.0, 100.0, 100.0]\n", shared_helper_problem())
    assert honest.valid and honest.score == pytest.approx(-100.0)
    result = evaluate(candidate("patch_shared_helper"), shared_helper_problem())
    assert_failed(result, FailureKind.INVALID_OUTPUT)
    assert "problems._spot_sim.evaluation.weighted_mean_std" in result.reason


def test_a_patch_that_undoes_itself_is_caught_by_the_next_clock_reading():
    result = evaluate(candidate("patch_shared_helper_self_restoring"), shared_helper_problem())
    assert_failed(result, FailureKind.INVALID_OUTPUT)
    assert "problems._spot_sim.evaluation.weighted_mean_std" in result.reason


def test_a_builtin_patch_that_undoes_itself_is_caught_after_the_call():
    result = evaluate(candidate("patch_builtins_self_restoring"))
    assert_failed(result, FailureKind.INVALID_OUTPUT)
    assert "builtins.sorted" in result.reason


def test_swapping_the_validators_code_is_rejected():
    result = evaluate(candidate("patch_validator_code"))
    assert_failed(result, FailureKind.INVALID_OUTPUT)
    assert "evaluate.check (code or defaults)" in result.reason


def test_a_thread_racing_to_patch_the_result_encoder_does_not_forge_a_score():
    result = evaluate(candidate("thread_patches_json_encoder"), stages=["quick"])
    assert_failed(result, FailureKind.INVALID_OUTPUT)
    assert "JSONEncoder.encode" in result.reason


# --- outputs that lie -------------------------------------------------------------------------

def test_a_list_whose_eq_always_agrees_is_not_sorted():
    result = evaluate(candidate("lying_eq_list"), stages=["quick"])
    assert_failed(result, FailureKind.INVALID_OUTPUT)
    assert "not the sorted input" in result.reason


def test_an_action_pretending_to_be_an_int_is_invalid():
    result = evaluate(candidate("spot_lying_action"), spot_single(), stages=["quick"])
    assert_failed(result, FailureKind.INVALID_OUTPUT)
    assert "Sneaky is not plain data" in result.reason
    for problem in (in_process_spot(), spot_multi()):  # in the judge: by its real type
        result = evaluate(candidate("spot_lying_action"), problem, stages=["quick"])
        assert_failed(result, FailureKind.INVALID_OUTPUT)
        assert "NONE (0), SPOT (1) or ON_DEMAND (2)" in result.reason


@pytest.mark.parametrize("name, words", [
    ("cloudcast_lying_region_names", "job intra_aws, destination aws:eu-south-1, partition 0: "
                                     "the route starts at aws:me-south-1, not at the source"),
    ("cloudcast_fake_dict", "job intra_aws: search_algorithm must return a dict"),
])
def test_cloudcast_routes_are_read_by_their_genuine_values(name, words):
    result = evaluate(candidate(name), load_problem(PROBLEMS_DIR / "cloudcast"),
                      stages=["quick"])
    assert_failed(result, FailureKind.INVALID_OUTPUT)
    assert words in result.reason


# --- the evaluator's modules are out of reach while the candidate runs ------------------------

def test_string_exec_helpers_are_refused():
    # timeit runs a statement assembled at run time: it would read sys.modules unseen.
    result = evaluate(candidate("spot_timeit_reads_evaluator_module"), in_process_spot(),
                      stages=["quick"])
    assert_failed(result, FailureKind.SANDBOX_DENIED)
    assert "import timeit is not allowed" in result.reason


def test_sys_modules_holds_no_evaluator_module_while_the_candidate_runs():
    result = evaluate(candidate("spot_format_string_reads_modules"), in_process_spot(),
                      stages=["quick"])
    assert result.valid, (result.failure, result.reason)
    stdout = result.stages[0].stdout
    assert "reached" not in stdout
    for name in ("evaluate", "__main__", "problems._spot_sim.file_guard", "evaluators.guard"):
        assert f"hidden {name}" in stdout


def test_a_coding_cookie_cannot_show_the_check_another_program():
    result = evaluate(candidate("utf7_coding_hides_code"), in_process_spot(), stages=["quick"])
    assert_failed(result, FailureKind.SANDBOX_DENIED)
    assert "import gc is not allowed" in result.reason


def test_reading_the_process_memory_is_denied():
    result = evaluate(candidate("spot_reads_own_memory"), in_process_spot(), stages=["quick"])
    assert_failed(result, FailureKind.SANDBOX_DENIED)
    assert "/proc/self/maps" in result.reason


def test_a_lazy_output_that_patches_while_being_read_is_rejected():
    # A generator would run candidate code while the evaluator reads the output, and patch
    # math.fsum just for its sum of radii. circle_packing's judge is another process that
    # receives data only: a generator is not data, and the patch stays in the candidate's
    # own process.
    problem = load_problem(PROBLEMS_DIR / "circle_packing")
    result = evaluate(candidate("lazy_output_patches_during_validation"), problem)
    assert_failed(result, FailureKind.INVALID_OUTPUT)
    assert "not plain data" in result.reason and "generator" in result.reason


# --- the spot problems on the judge/candidate API: the same attacks run, and reach nothing ----

@pytest.mark.parametrize("problem", ["spot_single", "spot_multi"])
@pytest.mark.parametrize("name", ["spot_frame_reads_future", "spot_import_evaluator",
                                  "spot_gc_finds_traces", "spot_traceback_frames",
                                  "spot_logging_currentframe", "spot_pickle_getframe",
                                  "spot_reads_own_memory", "spot_timeit_reads_evaluator_module"])
def test_introspection_in_the_candidates_process_finds_no_trace_of_the_judge(name, problem):
    # Nothing refuses these any more: the candidate's process holds no trace, no optimum and
    # no module of the judge's, so they run as the policies they are, or fail on their own.
    result = evaluate(candidate(name), load_problem(PROBLEMS_DIR / problem), stages=["quick"])
    assert result.failure != FailureKind.SANDBOX_DENIED, result.reason
    if result.valid:
        assert result.metrics["cost_ratio_to_optimum"] > 1.05, result.metrics
        assert result.metrics["runs_below_optimum"] == 0

"""The judge and the candidate in two processes (issue 24): attacks that worked while the
candidate ran inside the evaluator's process, and attacks on the channel between them.

Each attack runs through the real executor at the best level here, on the warm path (a fork of
a judge zygote and one of a candidate zygote) and on the cold path (a fresh sandboxed process
each); the weaker levels are covered where the guarantee holds there (`isolation.exposure`
says what they still allow).
"""

from __future__ import annotations

import asyncio

import pytest

from evaluators import isolation
from evaluators.executors import LocalExecutor
from evaluators.result import EvalResult, FailureKind
from evolve.problem.spec import load_problem
from tests.sandbox_helpers import BEST_LEVEL, FIXTURES, candidate

REPO = FIXTURES.parents[1]
CIRCLES = REPO / "problems" / "circle_packing"
TRUSTING = FIXTURES / "trusting_judge_problem"
TIMING = FIXTURES / "timing_judge_problem"
SECRET = FIXTURES / "secret_judge_problem"
PATHS = ["warm", "cold"]


def run(code: str, problem_dir, *, path: str = "warm", level: str = BEST_LEVEL) -> EvalResult:
    async def go() -> EvalResult:
        executor = LocalExecutor(max_parallel=1, isolation=level, warm_start=path == "warm")
        try:
            return await executor.evaluate(load_problem(problem_dir), code)
        finally:
            await executor.aclose()

    return asyncio.run(go())


def assert_failed(result: EvalResult, kind: FailureKind, *words: str) -> None:
    assert not result.valid and result.score is None, result
    assert result.failure == kind, (result.failure, result.reason)
    for word in words:
        assert word in result.reason, result.reason


# --- the judge's code, objects and data are out of reach ----------------------------------

@pytest.mark.parametrize("path", PATHS)
def test_patching_the_stdlib_the_validator_uses_changes_nothing_for_the_judge(path):
    # In one process this scored 13.0 (best known 2.6359): the patched Fraction comparisons
    # and math functions were the validator's own.
    result = run(candidate("cp_patch_stdlib_validator"), CIRCLES, path=path)
    assert_failed(result, FailureKind.INVALID_OUTPUT, "overlap")


@pytest.mark.parametrize("path", PATHS)
def test_introspection_runs_but_reaches_no_judge_namespace(path):
    # Frames of every thread, the collector's objects and every module: the candidate may use
    # them all (nothing refuses it any more) and finds nothing of the judge's.
    result = run(candidate("cp_introspection_reaches_judge"), CIRCLES, path=path)
    assert_failed(result, FailureKind.INVALID_OUTPUT, "overlap")
    stdout = result.stages[0].stdout
    assert "judge namespaces found: 0" in stdout, stdout
    scanned = int(stdout.split("namespaces scanned: ")[1].split(";")[0])
    assert scanned > 100


@pytest.mark.parametrize("path", PATHS)
def test_a_forged_result_on_every_descriptor_is_never_the_result(path):
    # The only descriptor it holds that leads anywhere is its channel: what it writes there is
    # its reply, checked as data (a harness result framed for the judge's pipe is no reply).
    result = run(candidate("cp_forge_result"), CIRCLES, path=path)
    assert_failed(result, FailureKind.INVALID_OUTPUT, "malformed")
    assert "perfect" not in result.reason


def _secret_reachable(level: str) -> str:
    if level == "bwrap" or (level == "unshare" and isolation.is_root()):
        return ""
    return f"at {level}: {'; '.join(isolation.exposure(level))}"


@pytest.mark.parametrize("path", PATHS)
def test_the_judges_hidden_data_is_found_in_no_memory_process_or_file(path):
    if why := _secret_reachable(BEST_LEVEL):
        pytest.skip(why)
    result = run(candidate("secret_hunter"), SECRET, path=path)
    assert result.valid, result.reason
    assert result.score == 0.0 and result.metrics["leaked"] is False, result.stages[0].stdout


# --- timing: the candidate's own CPU time, whatever it does --------------------------------

@pytest.mark.parametrize("name", ["timing_honest", "timing_thread_defers_work",
                                  "timing_child_defers_work", "timing_patched_clocks"])
def test_work_is_charged_wherever_and_whenever_it_runs(name):
    result = run(candidate(name), TIMING)
    assert result.valid, result.reason
    # 0.4-0.5 s of CPU burned in a call, a thread, children or an orphan, or under patched
    # clocks: each is charged to the candidate.
    assert result.metrics["cpu_s"] >= 0.3, result.metrics


def test_an_idle_candidate_is_charged_little():
    result = run(candidate("timing_idle"), TIMING)
    assert result.valid, result.reason
    assert result.metrics["cpu_s"] < 0.2, result.metrics
    assert result.metrics["requests"] == 3  # import, first(), second()


# --- the channel ----------------------------------------------------------------------------

@pytest.mark.parametrize("path", PATHS)
def test_a_malformed_reply_is_an_invalid_output(path):
    result = run(candidate("channel_malformed_reply"), TRUSTING, path=path)
    assert_failed(result, FailureKind.INVALID_OUTPUT, "malformed")


def test_a_huge_reply_is_refused_before_it_is_read():
    result = run(candidate("channel_huge_reply"), TRUSTING)
    assert_failed(result, FailureKind.INVALID_OUTPUT, "above the limit")
    assert result.wall_s < 4


def test_an_endless_reply_times_out_with_a_reason():
    result = run(candidate("channel_endless_reply"), TRUSTING)
    assert_failed(result, FailureKind.TIMEOUT, "report()", "no answer within")


@pytest.mark.parametrize("path", PATHS)
def test_a_candidate_that_never_answers_times_out_before_the_stage_does(path):
    result = run(candidate("channel_never_answers"), TRUSTING, path=path)
    assert_failed(result, FailureKind.TIMEOUT, "report()", "no answer within")
    assert result.wall_s < 6  # the stage's limit: the judge reported first


def test_a_missing_name_is_an_invalid_program_naming_it():
    result = run(candidate("channel_missing_name"), TRUSTING)
    assert_failed(result, FailureKind.IMPORT, "'report'")


def test_a_candidate_that_exits_in_a_call_is_a_crash_with_its_exit_code():
    result = run(candidate("channel_exit_in_call"), TRUSTING)
    assert_failed(result, FailureKind.CRASH, "exit code 3")


@pytest.mark.parametrize("level", [lv for lv in isolation.available_levels()
                                   if lv != BEST_LEVEL])
def test_the_channel_attacks_fail_the_same_way_at_weaker_levels(level):
    result = run(candidate("channel_malformed_reply"), TRUSTING, path="cold", level=level)
    assert_failed(result, FailureKind.INVALID_OUTPUT, "malformed")
    result = run(candidate("cp_patch_stdlib_validator"), CIRCLES, level=level)
    assert_failed(result, FailureKind.INVALID_OUTPUT, "overlap")


# --- look-ahead through module state (spot_single: runs share traces) -----------------------

def test_module_state_never_holds_the_future_of_a_run():
    # spot_single's quick stage runs each trace under several deadlines and overheads. Run one
    # after another, a policy's module state held a longer record of the same trace: the
    # future. All runs now advance one tick per message, so no record is ever ahead.
    result = run(candidate("spot_module_state_lookahead"), REPO / "problems" / "spot_single")
    quick = result.stages[0]
    assert quick.stage == "quick" and quick.valid, quick.reason
    assert "LOOKAHEAD" not in quick.stdout, quick.stdout[:500]


# --- spot_multi: scenarios share regions' traces; the judge's runs and traces stay its own ---

SPOT_MULTI = REPO / "problems" / "spot_multi"


def test_module_state_never_holds_the_future_of_a_shared_region():
    # 21 of spot_multi's 34 runs share a region's trace with another scenario's run (trace k
    # of us-east-1a is in four scenarios). Run one after another in the evaluator's process,
    # 11 of the quick stage's 17 runs and 21 of the full stage's 34 found that region's future
    # in module state and used it (mean cost $80.72 against $81.65 without it). All runs now
    # advance one tick per message: every record is as long as the policy's own.
    result = run(candidate("spot_multi_shared_region_lookahead"), SPOT_MULTI)
    assert result.valid, result.reason
    assert [s.stage for s in result.stages] == ["quick", "full"]
    for stage in result.stages:
        assert "LOOKAHEAD" not in stage.stdout, stage.stdout[:500]
    assert result.metrics["cost_ratio_to_optimum"] > 1.19, result.metrics


@pytest.mark.parametrize("path", PATHS)
def test_introspection_finds_none_of_spot_multis_runs_or_traces(path):
    # Modules, frames of every thread and every object the collector tracks, searched for the
    # judge's run objects, tick generators, whole traces, the optimum's run keys and its
    # globals' names: in the evaluator's process they were all there (277 finds at one run's
    # first tick without the in-process guards); the candidate's process holds none of them.
    result = run(candidate("spot_multi_introspection_finds_traces"), SPOT_MULTI, path=path)
    quick = result.stages[0]
    assert quick.stage == "quick" and quick.valid, quick.reason
    lines = [line for line in quick.stdout.splitlines() if line.startswith("scanned ")]
    assert len(lines) == 17, quick.stdout[:500]             # every run's policy looked
    for line in lines:
        assert "judge data found: 0 " in line, line
        # The search really ran: the interpreter's own modules, frames and objects (900+ in a
        # warm fork whose candidate side imports no numpy; 1000+ cold).
        assert int(line.split()[1].rstrip(";")) > 500, line
    assert result.valid and result.metrics["runs_below_optimum"] == 0


# --- the worker's channel ends in the judge (the host passes it on) --------------------------

def test_descriptors_a_candidate_sends_on_its_channel_never_reach_the_judge(tmp_path):
    # The judge holds its end of each worker's channel: a reply that carries descriptors
    # (SCM_RIGHTS) gives the judge only the reply's data.
    import os

    from evaluators.judge_proxy import local_candidate

    program = tmp_path / "policy.py"
    program.write_text(
        "import msgpack, os, socket, time\n"
        "def leak():\n"
        "    channel = socket.socket(fileno=os.dup(3))\n"
        "    reply = msgpack.packb({'ok': 1})\n"
        "    mine = [os.open('/', os.O_RDONLY) for _ in range(8)]\n"
        "    socket.send_fds(channel, [len(reply).to_bytes(4, 'big') + reply], mine)\n"
        "    time.sleep(60)\n")
    with local_candidate(program) as candidate:
        candidate.load()
        before = set(os.listdir("/proc/self/fd"))
        assert candidate.call("leak") == 1
        after = set(os.listdir("/proc/self/fd"))
    assert after <= before, (before, after)

"""Hostile candidates against the sort fixture: each run must survive, fail with the right kind,
and leave the host unharmed. Every candidate lives in its own file under `candidates/`."""

from __future__ import annotations

import os
import socket
import threading
import uuid
from pathlib import Path

import pytest

from evaluators.isolation import available_levels
from evaluators.result import FailureKind
from tests.sandbox_helpers import (
    BEST_LEVEL,
    candidate,
    evaluate,
    processes_with,
    sort_problem,
    trusting_problem,
)

HERE = Path(__file__).parent
needs_fs_isolation = pytest.mark.skipif(
    BEST_LEVEL != "bwrap", reason="needs bubblewrap's read-only root (apt-get install bubblewrap)")
needs_netns = pytest.mark.skipif(
    BEST_LEVEL == "rlimits", reason="needs a network namespace (bubblewrap or unshare)")


def marker() -> str:
    return f"hostile-marker-{uuid.uuid4().hex}"


def assert_failed(result, kind: FailureKind) -> None:
    assert not result.valid, result
    assert result.score is None
    assert result.failure == kind, (result.failure, result.reason)
    assert result.reason, "every failure needs a reason the LLM can act on"


# --- time and processes ---------------------------------------------------------------------

def test_infinite_loop_times_out():
    result = evaluate(candidate("infinite_loop"))
    assert_failed(result, FailureKind.TIMEOUT)
    assert "6 s" in result.reason
    assert result.wall_s < 6 + 3


def test_sleep_ignoring_sigterm_is_killed():
    result = evaluate(candidate("sleep_ignoring_sigterm"))
    assert_failed(result, FailureKind.TIMEOUT)
    assert result.wall_s < 6 + 3


@needs_fs_isolation
def test_fork_bomb_is_contained_and_cleaned_up():
    tag = marker()
    result = evaluate(candidate("fork_bomb", marker=tag))
    assert_failed(result, FailureKind.TIMEOUT)
    assert processes_with(tag) == []
    # The host can still start processes.
    assert os.system("true") == 0


def test_thread_bomb_hits_the_process_limit():
    if BEST_LEVEL != "bwrap" and os.geteuid() == 0:
        pytest.skip("as root the process limit needs bubblewrap's private uid")
    result = evaluate(candidate("thread_bomb"))
    assert_failed(result, FailureKind.SANDBOX_DENIED)
    assert "thread" in result.reason


def test_memory_bomb_list():
    result = evaluate(candidate("memory_bomb_list"))
    assert_failed(result, FailureKind.MEMORY)
    assert "memory" in result.reason.lower()


def test_memory_bomb_numpy():
    pytest.importorskip("numpy")
    result = evaluate(candidate("memory_bomb_numpy"))
    assert_failed(result, FailureKind.MEMORY)


@needs_fs_isolation
def test_disk_filler_is_capped():
    result = evaluate(candidate("disk_filler"))
    assert_failed(result, FailureKind.SANDBOX_DENIED)
    assert "No space left" in result.reason or "too large" in result.reason


@needs_fs_isolation
def test_shared_memory_filler_is_capped():
    result = evaluate(candidate("shared_memory_filler"))
    assert_failed(result, FailureKind.SANDBOX_DENIED)
    assert "No space left" in result.reason


def test_stdout_flood_is_truncated_and_the_run_still_scores():
    result = evaluate(candidate("stdout_flood"))
    assert result.valid, result.reason
    stdout = result.stages[0].stdout
    # fixture cap is 16 kB; the note says how much was dropped
    assert len(stdout) < 20_000
    assert "more bytes not kept" in stdout


def test_background_child_is_killed_after_the_run():
    tag = marker()
    result = evaluate(candidate("background_child", marker=tag))
    assert result.valid, result.reason
    assert processes_with(tag) == []


@pytest.mark.parametrize("level", ["unshare", "rlimits"])
def test_background_child_is_killed_at_weaker_levels(level):
    if level not in available_levels():
        pytest.skip(f"{level} is not available here")
    tag = marker()
    result = evaluate(candidate("background_child", marker=tag), isolation=level)
    assert result.valid, result.reason
    assert processes_with(tag) == []


def test_infinite_loop_times_out_with_rlimits_only():
    result = evaluate(candidate("infinite_loop"), isolation="rlimits", stages=["quick"])
    assert_failed(result, FailureKind.TIMEOUT)


def test_kill_of_the_parent_does_not_score():
    result = evaluate(candidate("kill_parent"))
    assert not result.valid
    assert result.failure in (FailureKind.SANDBOX_DENIED, FailureKind.CRASH)
    if BEST_LEVEL == "bwrap" and os.geteuid() == 0:
        # The harness supervisor keeps root; the candidate's uid may not signal it.
        assert result.failure == FailureKind.SANDBOX_DENIED


# --- files, secrets, network ----------------------------------------------------------------

@needs_fs_isolation
def test_writing_outside_the_work_dir_is_denied():
    # The checkout's root folder exists in the sandbox (it leads to the harness package) but is
    # read-only; tests/hostile itself is not there at all.
    for target, kind in ((HERE.parents[1] / f"_escape_{uuid.uuid4().hex}.txt",
                          FailureKind.SANDBOX_DENIED),
                         (HERE / f"_escape_{uuid.uuid4().hex}.txt", FailureKind.CRASH)):
        try:
            result = evaluate(candidate("write_outside", target=target), stages=["quick"])
            assert_failed(result, kind)
            assert not target.exists()
        finally:
            target.unlink(missing_ok=True)


@needs_fs_isolation
def test_deleting_files_outside_is_denied():
    victim = HERE / f"_victim_{uuid.uuid4().hex}.txt"
    victim.write_text("keep me")
    try:
        result = evaluate(candidate("delete_outside", target=victim))
        # Outside the allow-list: the file is not even there to delete.
        assert_failed(result, FailureKind.CRASH)
        assert "No such file" in result.reason
        assert victim.read_text() == "keep me"
    finally:
        victim.unlink(missing_ok=True)


def test_api_keys_do_not_reach_the_candidate(monkeypatch):
    secret = f"sk-fake-{uuid.uuid4().hex}"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    monkeypatch.setenv("GITHUB_TOKEN", secret)
    result = evaluate(candidate("read_api_key"), stages=["quick"])
    assert result.valid, result.reason
    stage = result.stages[0]
    assert "env:" in stage.stdout  # it did look
    assert secret not in stage.stdout and secret not in stage.stderr


NETNS_LEVELS = [lv for lv in ("bwrap", "unshare") if lv in available_levels()]


@needs_netns
@pytest.mark.parametrize("level", NETNS_LEVELS)
def test_connecting_to_a_local_server_fails(level):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.2)
    accepted: list[object] = []
    stop = threading.Event()

    def accept_loop() -> None:
        while not stop.is_set():
            try:
                accepted.append(server.accept())
            except OSError:
                continue

    thread = threading.Thread(target=accept_loop, daemon=True)
    thread.start()
    try:
        port = server.getsockname()[1]
        result = evaluate(candidate("connect_localhost", port=port), isolation=level)
        assert_failed(result, FailureKind.SANDBOX_DENIED)
        assert accepted == []
    finally:
        stop.set()
        thread.join()
        server.close()


# --- faking the score -----------------------------------------------------------------------

def test_sys_exit_before_returning():
    result = evaluate(candidate("sys_exit_before_return"))
    assert_failed(result, FailureKind.CRASH)
    assert "sys.exit" in result.reason


def test_os_exit_before_returning():
    result = evaluate(candidate("os_exit_before_return"))
    assert_failed(result, FailureKind.CRASH)
    assert "before evaluate() returned" in result.reason


def test_printing_a_fake_result():
    result = evaluate(candidate("print_fake_result"))
    assert_failed(result, FailureKind.INVALID_OUTPUT)
    assert result.stages[0].score == 0.0
    assert "1000000000" in result.stages[0].stdout.replace(".0", "").replace("e+09", "000000000")


def test_writing_a_fake_result_to_inherited_descriptors():
    result = evaluate(candidate("write_fake_result_to_fds"))
    assert_failed(result, FailureKind.INVALID_OUTPUT)
    assert "forged" in result.reason


def test_patching_perf_counter_is_rejected():
    result = evaluate(candidate("patch_perf_counter"))
    assert_failed(result, FailureKind.INVALID_OUTPUT)
    assert "time.perf_counter" in result.reason


def test_patching_the_validator_through_sys_modules_is_rejected():
    result = evaluate(candidate("patch_validator_sys_modules"))
    assert_failed(result, FailureKind.INVALID_OUTPUT)
    assert "evaluate.check" in result.reason


def test_patching_the_validator_through_frames_is_rejected():
    result = evaluate(candidate("patch_validator_frames"))
    assert_failed(result, FailureKind.INVALID_OUTPUT)
    assert "evaluate.check" in result.reason


def test_patching_json_to_rewrite_the_harness_message_is_rejected():
    result = evaluate(candidate("patch_json_to_forge_result"))
    assert_failed(result, FailureKind.INVALID_OUTPUT)
    assert "json.dumps" in result.reason


def test_patching_builtins_is_rejected():
    result = evaluate(candidate("patch_builtins_isinstance"))
    assert_failed(result, FailureKind.INVALID_OUTPUT)
    assert "builtins.isinstance" in result.reason


@pytest.mark.parametrize("name, words", [
    ("report_nan_score", "finite"),
    ("report_inf_score", "finite"),
    ("report_wrong_types", "score must be a number"),
    ("report_huge_metrics", "metrics are larger"),
    ("report_huge_result", "larger than"),
    ("report_unserializable", "not JSON"),
])
def test_bad_evaluator_outputs_are_invalid(name, words):
    result = evaluate(candidate(name), trusting_problem())
    assert_failed(result, FailureKind.INVALID_OUTPUT)
    assert words in result.reason


def test_nan_metric_is_stored_as_text():
    result = evaluate(candidate("report_nan_metric"), trusting_problem())
    assert result.valid
    assert result.metrics == {"ratio": "nan"}


# --- broken programs ------------------------------------------------------------------------

def test_syntax_error():
    result = evaluate(candidate("syntax_error"))
    assert_failed(result, FailureKind.SYNTAX)
    assert "line 1" in result.reason


def test_missing_module():
    result = evaluate(candidate("missing_module"))
    assert_failed(result, FailureKind.IMPORT)
    assert "definitely_not_a_module_xyz" in result.reason


def test_recursion_overflow():
    result = evaluate(candidate("recursion_overflow"))
    assert_failed(result, FailureKind.CRASH)
    assert "RecursionError" in result.reason and "program.py line 2" in result.reason


def test_segfault_via_ctypes():
    result = evaluate(candidate("segfault_ctypes"))
    assert_failed(result, FailureKind.CRASH)
    assert "segmentation" in result.reason.lower()


def test_every_hostile_candidate_has_a_test():
    source = "".join(p.read_text() for p in HERE.glob("test_*.py"))
    names = sorted(p.stem for p in (HERE / "candidates").glob("*.py"))
    assert len(names) >= 25
    missing = [n for n in names if f'"{n}"' not in source]
    assert missing == []
    assert sort_problem().name == "sort_fixture"

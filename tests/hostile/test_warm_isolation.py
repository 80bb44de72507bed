"""The warm path (evaluators.warm): evaluations forked from one pre-imported interpreter must be
as separate as cold ones. A candidate that changes everything it can reach leaves nothing for
the next stage or the next candidate; one that kills what it can fails only its own evaluation;
a warm interpreter that dies fails only what it was running, and the next evaluation gets a
fresh one."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

from evaluators import proctree, warm
from evaluators.executors import LocalExecutor
from evaluators.isolation import available_levels
from evaluators.result import EvalResult, FailureKind
from evaluators.sandbox import SandboxLimits
from evaluators.warm_pool import WarmPool
from evolve.problem.spec import load_problem
from tests.sandbox_helpers import FIXTURES, candidate

PROBLEM = FIXTURES / "leak_probe_problem"
INNOCENT = (PROBLEM / "initial.py").read_text()
LEVELS = [level for level in available_levels() if warm.supported(level)]

pytestmark = pytest.mark.skipif(not LEVELS, reason="the warm path needs root (else cold)")


def evaluate_all(codes: list[str], level: str) -> tuple[list[EvalResult], list[int]]:
    """Evaluate `codes` one after another on one executor; also returns the zygote's pid
    after each evaluation (the same pid: one warm interpreter served them all)."""
    problem = load_problem(PROBLEM)

    async def go() -> tuple[list[EvalResult], list[int]]:
        executor = LocalExecutor(max_parallel=2, isolation=level)
        assert executor._warm is not None, "the executor did not take the warm path"
        results, pids = [], []
        try:
            for code in codes:
                results.append(await executor.evaluate(problem, code))
                interp = executor._warm.interpreter(PROBLEM, "evaluate.py", level)
                assert interp is not None
                pids.append(interp.proc.pid)
        finally:
            await executor.aclose()
        return results, pids

    return asyncio.run(go())


SHARED_TMP = ("/tmp", "/dev/shm", "/var/tmp")


@pytest.fixture(autouse=True)
def _no_marker_files_left():
    """Below bwrap the host's temp folders are shared (as on the cold path): clean them."""
    yield
    for folder in SHARED_TMP:
        Path(folder, "evolve_leak_marker").unlink(missing_ok=True)


def pristine(stage_feedback: str, level: str) -> dict:
    seen = json.loads(stage_feedback)
    assert seen["calls"] == 1                   # the evaluator's module global
    assert seen["env"] is None                  # os.environ / putenv
    assert seen["sys_modules"] is False         # sys.modules entries
    assert seen["json_attr"] is False           # another module's globals
    assert seen["sigusr1_default"] and seen["sigint_default"]  # signal handlers
    assert seen["cwd_is_home"]                  # cwd
    # Files in the work dir (HOME, TMPDIR); at bwrap also in /tmp, /dev/shm and /var/tmp (the
    # lower levels share the host's temp folders, warm or cold: see the isolation levels).
    files = seen["files"] if level == "bwrap" else [
        f for f in seen["files"] if not f.startswith(SHARED_TMP)]
    assert files == []
    return seen


@pytest.mark.parametrize("level", LEVELS)
def test_traces_of_a_candidate_reach_neither_its_next_stage_nor_the_next_candidate(level):
    hostile = candidate("leave_traces_everywhere")
    results, pids = evaluate_all([hostile, hostile, INNOCENT], level)
    assert len(set(pids)) == 1, "every evaluation came from the same warm interpreter"
    draws = []
    for result in results:
        assert result.valid, result.reason
        assert [s.stage for s in result.stages] == ["first", "second"]
        for stage in result.stages:
            seen = pristine(stage.feedback, level)
            draws.append((seen["random"], seen["numpy_random"]))
    # Each fork reseeds: the six evaluations did not share one random stream (numpy's global
    # generator, preloaded in the zygote, does not reseed itself after a fork).
    for stream in zip(*draws, strict=True):
        assert len(set(stream)) == len(stream)


@pytest.mark.parametrize("level", LEVELS)
def test_a_candidate_that_kills_what_it_can_fails_only_itself(level):
    results, pids = evaluate_all([candidate("kill_everything_reachable"), INNOCENT], level)
    killer, after = results
    assert "socket fd" not in killer.stages[0].stdout, "the zygote's socket was reachable"
    assert not killer.valid and killer.failure == FailureKind.CRASH, killer.reason
    assert after.valid, after.reason
    pristine(after.stages[0].feedback, level)
    assert pids[0] == pids[1], "the warm interpreter survived and served the next evaluation"


def test_a_dead_warm_interpreter_fails_only_its_running_evaluation_and_is_replaced():
    level = LEVELS[0]
    pool = WarmPool()
    limits = SandboxLimits(timeout_s=20, memory_mb=512, cpu_seconds=20)
    sleeper = "import time\n\ndef act():\n    time.sleep(15)\n"
    try:
        first = pool.interpreter(PROBLEM, "evaluate.py", level)
        assert first is not None
        outcome = {}

        def run_sleeper() -> None:
            outcome["sleeper"] = pool.run(problem_dir=PROBLEM, evaluator_file="evaluate.py",
                                          code=sleeper, stage="first", limits=limits, level=level)

        thread = threading.Thread(target=run_sleeper)
        started = time.monotonic()
        thread.start()
        time.sleep(1.5)
        os.killpg(first.proc.pid, signal.SIGKILL)  # the zygote and its sandbox, from outside
        thread.join(timeout=20)
        dead = outcome["sleeper"]
        assert time.monotonic() - started < 10, "the evaluation did not wait out its sleep"
        assert dead.result is None and not dead.timed_out
        assert "warm interpreter ended" in dead.stderr
        fresh = pool.run(problem_dir=PROBLEM, evaluator_file="evaluate.py", code=INNOCENT,
                         stage="first", limits=limits, level=level)
        assert fresh.result and fresh.result["valid"], fresh
        second = pool.interpreter(PROBLEM, "evaluate.py", level)
        assert second is not None and second is not first and second.alive()
    finally:
        pool.close()


def _prepared_forks(sandbox_pid: int, wait_s: float = 10.0) -> list[int]:
    """The zygote's evaluations set up ahead (its children, idle until a request comes): the
    interpreters of its sandbox that run the zygote's command line, under the zygote itself
    (the sandbox command's own processes carry that command line as arguments)."""
    deadline = time.monotonic() + wait_s
    while True:
        warm_procs = {}
        for pid in proctree.descendants(sandbox_pid):
            try:
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                ppid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if argv[0] == os.fsencode(sys.executable) and b"evaluators.warm" in argv:
                warm_procs[pid] = ppid
        found = [pid for pid, ppid in warm_procs.items() if ppid in warm_procs]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def test_a_prepared_evaluation_that_died_is_replaced_for_the_request():
    """Each zygote keeps its next evaluation set up ahead (evaluators.warm_fork), used once;
    one killed from outside before its request comes is dropped (the zygote lives on) and the
    request gets a fresh one. (Killed while its request is on the way, it fails that one
    evaluation, as a fork killed during its set-up always did.)"""
    level = LEVELS[0]
    pool = WarmPool()
    limits = SandboxLimits(timeout_s=20, memory_mb=512, cpu_seconds=20)
    try:
        interp = pool.interpreter(PROBLEM, "evaluate.py", level)
        assert interp is not None
        prepared = _prepared_forks(interp.proc.pid)
        assert len(prepared) == 1, "the zygote did not set its next evaluation up ahead"
        os.kill(prepared[0], signal.SIGKILL)
        deadline = time.monotonic() + 10
        while Path(f"/proc/{prepared[0]}").exists() and time.monotonic() < deadline:
            time.sleep(0.01)  # until the zygote has reaped it (and dropped it)
        outcome = pool.run(problem_dir=PROBLEM, evaluator_file="evaluate.py", code=INNOCENT,
                           stage="first", limits=limits, level=level)
        assert outcome.result and outcome.result["valid"], outcome
        assert pool.interpreter(PROBLEM, "evaluate.py", level) is interp and interp.alive()
        # Once that one is over, the next is set up ahead again: a fresh fork, not a reused one.
        later = _prepared_forks(interp.proc.pid)
        assert len(later) == 1 and later[0] != prepared[0]
    finally:
        pool.close()


def test_closing_the_pool_leaves_no_warm_interpreter_running():
    pool = WarmPool()
    interp = pool.interpreter(PROBLEM, "evaluate.py", LEVELS[0])
    assert interp is not None and interp.alive()
    pool.close()
    assert not interp.alive()
    assert list(Path(interp.base).iterdir()) == []  # a mount point only: nothing written there

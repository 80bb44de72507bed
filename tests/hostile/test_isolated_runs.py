"""Runs of one evaluation in candidate processes of their own (`Candidate.isolated`): what one
run saw never reaches another (issue 24: "no run can see another's future").

The judge of the fixture (tests/fixtures/isolated_judge_problem) steps two runs together, one
message per step: run 0 is shown a secret, run 1 answers. In one process run 1 answers every
secret through module state; in two plain processes of one sandbox, through a file or an
abstract unix socket. Processes apart are forked by the trusted host (never by candidate
code), each imports the program afresh, and each gets its own work dir, /tmp, /dev/shm, IPC
and network namespace.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import random

import pytest

from evaluators import isolation
from evaluators.executors import LocalExecutor
from evaluators.judge_proxy import local_candidate
from evaluators.result import EvalResult, FailureKind
from evolve.problem.spec import load_problem
from tests.sandbox_helpers import BEST_LEVEL, FIXTURES, HOSTILE, candidate

ISOLATED = FIXTURES / "isolated_judge_problem"
STEPS = 40


def run(code: str, *, path: str = "warm", level: str = BEST_LEVEL) -> EvalResult:
    async def go() -> EvalResult:
        executor = LocalExecutor(max_parallel=1, isolation=level, warm_start=path == "warm")
        try:
            return await executor.evaluate(load_problem(ISOLATED), code)
        finally:
            await executor.aclose()

    return asyncio.run(go())


def _secrets() -> list[int]:
    return random.Random(7).sample(range(10**6, 10**7), STEPS)  # the fixture judge's


def _apart_possible() -> bool:
    return os.geteuid() == 0  # the namespaces of a process apart are made as root


@pytest.fixture
def scratch(tmp_path, monkeypatch):
    """The controls run the attack outside a sandbox: in a folder of their own, and what they
    leave in the machine's /tmp and /dev/shm removed."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.delenv("SHARED_SECRET", raising=False)  # restored: the attack sets it
    yield tmp_path
    for folder in ("/tmp", "/dev/shm"):
        for name in os.listdir(folder):
            if name.startswith("shared_secret_"):
                os.unlink(os.path.join(folder, name))


def test_in_one_process_run_one_answers_every_secret(scratch):
    spec = importlib.util.spec_from_file_location("_isolated_attack",
                                                  HOSTILE / "isolated_shared_state.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    shown, blind = module.Run(0), module.Run(1)
    leaked = 0
    for secret in _secrets():
        shown.step(secret)
        leaked += blind.step(0) == secret
    assert leaked == STEPS


def test_two_plain_processes_of_one_sandbox_pass_secrets_through_files_and_sockets(scratch):
    # Not memory: the work dir, /tmp, /dev/shm and the abstract socket they share.
    program = scratch / "program.py"
    program.write_text(candidate("isolated_shared_state"))
    leaked = 0
    with local_candidate(program) as first, local_candidate(program) as second:
        shown, blind = first.new("Run", 0), second.new("Run", 1)
        for secret in _secrets():
            shown.step(secret)
            leaked += blind.step(0) == secret
    assert leaked == STEPS


@pytest.mark.skipif(not _apart_possible(), reason="processes apart need root for their "
                                                  "namespaces (docs/trust-model.md)")
@pytest.mark.parametrize("path", ["warm", "cold"])
def test_runs_apart_share_nothing(path):
    result = run(candidate("isolated_shared_state"), path=path)
    assert result.valid, (result.failure, result.reason)
    assert result.metrics["leaked"] == 0, result.metrics


@pytest.mark.skipif(not _apart_possible(), reason="processes apart need root for their "
                                                  "namespaces (docs/trust-model.md)")
@pytest.mark.parametrize("level", [lv for lv in isolation.available_levels()
                                   if lv != BEST_LEVEL])
def test_runs_apart_share_nothing_at_weaker_levels(level):
    # As root the namespaces are made at every level: even without a sandbox (rlimits), each
    # process apart has its own /tmp, /dev/shm, work dir, IPC and network namespace.
    result = run(candidate("isolated_shared_state"), path="cold", level=level)
    assert result.valid, (result.failure, result.reason)
    assert result.metrics["leaked"] == 0, result.metrics


def test_every_process_apart_is_charged_and_its_end_ends_the_candidate():
    burn = ("import os\n"
            "class Run:\n"
            "    def __init__(self, number):\n"
            "        self.number = number\n"
            "    def step(self, value):\n"
            "        if self.number == 1:\n"
            "            total = 0\n"
            "            for i in range(300_000):\n"
            "                total += i\n"
            "        return value\n")
    result = run(burn)
    assert result.valid, (result.failure, result.reason)
    # Run 1's loop, 40 times, in the second process apart: its CPU time is the candidate's.
    assert result.metrics["cpu_s"] > 0.2, result.metrics
    result = run("import os\n"
                 "class Run:\n"
                 "    def __init__(self, number):\n"
                 "        self.number = number\n"
                 "    def step(self, value):\n"
                 "        if self.number == 1:\n"
                 "            os._exit(3)\n"
                 "        return value\n")
    assert not result.valid and result.failure == FailureKind.CRASH, result
    assert "exit code 3" in result.reason, result.reason



def test_processes_asked_for_before_any_call_are_none_of_them_the_first(scratch):
    # The judge talks to each process on a channel the host passes it: processes asked for
    # before the first call are new ones, not the first process under another number.
    program = scratch / "program.py"
    program.write_text("import os\nSEEN = []\n\n\ndef see(value):\n    SEEN.append(value)\n"
                       "    return [os.getpid(), SEEN]\n")
    with local_candidate(program) as first:
        runs = [first, *first.isolated(2)]
        seen = [run.call("see", number) for number, run in enumerate(runs)]
        again = first.batch([(None, "see", (9,))])
        assert first.cpu_s > 0
    assert len({pid for pid, _ in seen}) == 3, seen
    assert [values for _, values in seen] == [[0], [1], [2]]
    assert again == [[seen[0][0], [0, 9]]]

"""What the kernel keeps between evaluations, and what it shares between concurrent ones: no
candidate may hand a note to a later candidate, a later stage or a later run through an object
that outlives its process (the keyring, SysV and POSIX IPC, files in /dev/shm, /tmp or another
folder anyone may write) or reach
a concurrent one (an abstract unix socket); memory limits hold for a candidate's whole process
tree; and refused system calls are recorded as `sandbox-denied` whatever the program makes of
the error.

The problem used (`kernel_probe_problem`) turns the in-process guard off, so only the kernel's
defences stand between the candidates. Every attack also runs on the judge/candidate API
(`kernel_probe_judge_problem`, id "judge"), where the candidate's code runs in a sandboxed
process of its own next to the judge's: the defences must hold on that process. Each test runs at every isolation level available here,
on the cold path (a fresh interpreter per stage) and the warm one (forks of a pre-imported
interpreter) where it exists; a level that shares an object says so in `isolation.exposure`
and is skipped with that reason."""

from __future__ import annotations

import asyncio
import ctypes
import errno
import json
import os
import uuid
from pathlib import Path

import pytest

from evaluators import isolation, syscall_filter, tree_limits, warm
from evaluators.executors import LocalExecutor
from evaluators.result import EvalResult, FailureKind
from evolve.problem.spec import load_problem
from tests.sandbox_helpers import FIXTURES, candidate

PROBLEM = FIXTURES / "kernel_probe_problem"
JUDGE_PROBLEM = FIXTURES / "kernel_probe_judge_problem"
APIS = [pytest.param(PROBLEM, id="in-process"), pytest.param(JUDGE_PROBLEM, id="judge")]
LEVELS = list(isolation.available_levels())
PATHS = [pytest.param(False, id="cold"), pytest.param(True, id="warm")]


def _executor(level: str, warm_start: bool) -> LocalExecutor:
    if warm_start and not warm.supported(level):
        pytest.skip("the warm path needs root here (evaluations run cold)")
    executor = LocalExecutor(max_parallel=2, isolation=level, warm_start=warm_start)
    assert (executor._warm is not None) == warm_start
    return executor


def evaluate_in_turn(codes: list[str], level: str, warm_start: bool, *,
                     separate_runs: bool = False, api: Path = PROBLEM) -> list[EvalResult]:
    """Evaluate `codes` one after another: on one executor (later candidates and stages of one
    run) or each on an executor of its own (later runs)."""
    problem = load_problem(api)

    async def go() -> list[EvalResult]:
        results = []
        executor = _executor(level, warm_start)
        try:
            for code in codes:
                if separate_runs and results:
                    await executor.aclose()
                    executor = _executor(level, warm_start)
                results.append(await executor.evaluate(problem, code))
        finally:
            await executor.aclose()
        return results

    return asyncio.run(go())


def evaluate_together(codes: list[str], level: str, warm_start: bool,
                      api: Path = PROBLEM) -> list[EvalResult]:
    problem = load_problem(api)

    async def go() -> list[EvalResult]:
        executor = _executor(level, warm_start)
        try:
            return list(await asyncio.gather(*(executor.evaluate(problem, c) for c in codes)))
        finally:
            await executor.aclose()

    return asyncio.run(go())


def seen(result: EvalResult) -> dict:
    """What the candidate reported (its feedback), or {} when it failed (the judge's own
    feedback then names the failure)."""
    stage = result.stages[-1]
    if not stage.feedback or (stage.failure is not None and not stage.feedback.startswith("{")):
        return {}
    return json.loads(stage.feedback)


def _needs_filter() -> None:
    spec, why = syscall_filter.compiled()
    if spec is None:
        pytest.skip(why)


# --- the keyring -------------------------------------------------------------------------


@pytest.mark.parametrize("warm_start", PATHS)
@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("separate_runs", [False, True], ids=["same-run", "later-run"])
@pytest.mark.parametrize("api", APIS)
def test_the_keyring_carries_no_note_to_a_later_candidate(level, warm_start, separate_runs, api):
    _needs_filter()
    token = uuid.uuid4().hex
    writer, reader = (candidate("keyring_note", mode=m, token=token) for m in ("write", "read"))
    wrote, read = evaluate_in_turn([writer, reader], level, warm_start,
                                   separate_runs=separate_runs, api=api)
    assert f"note-{token}" not in json.dumps(seen(read))
    # The attempt itself is recorded, though the program caught nothing and returned "valid".
    assert wrote.stages[-1].failure == FailureKind.SANDBOX_DENIED, wrote.stages[-1]
    assert "add_key" in wrote.stages[-1].reason and "keyring" in wrote.stages[-1].reason
    assert read.stages[-1].failure == FailureKind.SANDBOX_DENIED, read.stages[-1]


# --- IPC objects and shared temp folders ----------------------------------------------------


def _ipc_shared(level: str) -> str:
    if level in ("bwrap", "unshare"):
        return ""
    return f"at {level}: {'; '.join(isolation.exposure(level))}"


@pytest.fixture
def token():
    """A fresh name; afterwards whatever a leaking level let a candidate leave on the host is
    removed (SysV objects, the POSIX queue, the files)."""
    value = uuid.uuid4().hex
    yield value
    libc = ctypes.CDLL(None, use_errno=True)
    key, ipc_rmid = int(value[:7], 16), 0
    for get, ctl in ((lambda: libc.shmget(key, 0, 0), libc.shmctl),
                     (lambda: libc.msgget(key, 0), libc.msgctl)):
        ident = get()
        if ident >= 0:
            ctl(ident, ipc_rmid, None)
    ident = libc.semget(key, 0, 0)
    if ident >= 0:
        libc.semctl(ident, 0, ipc_rmid)
    libc.mq_unlink(f"/evolve-{value}".encode())
    for folder in ("/dev/shm", "/tmp", "/var/tmp", "/run/lock"):
        try:
            Path(folder, f"evolve-{value}").unlink(missing_ok=True)
        except OSError:
            pass


@pytest.mark.parametrize("warm_start", PATHS)
@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("api", APIS)
def test_ipc_objects_and_temp_files_reach_no_later_candidate(level, warm_start, token, api):
    if why := _ipc_shared(level):
        pytest.skip(why)
    writer, reader = (candidate("kernel_objects_note", mode=m, token=token)
                      for m in ("write", "read"))
    wrote, read = evaluate_in_turn([writer, reader], level, warm_start, api=api)
    made = seen(wrote)["made"]
    assert any(made.values()), f"the writer made nothing, the attack did not run: {made}"
    assert seen(read)["found"] == [], (made, seen(read))


@pytest.mark.parametrize("warm_start", PATHS)
@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("api", APIS)
def test_an_abstract_socket_reaches_no_concurrent_candidate(level, warm_start, api):
    if why := _ipc_shared(level):
        pytest.skip(why)
    token = uuid.uuid4().hex
    server, client = (candidate("abstract_socket_note", mode=m, token=token)
                      for m in ("serve", "ask"))
    served, asked = evaluate_together([server, client], level, warm_start, api=api)
    assert seen(served).get("served") == 0, seen(served)
    assert seen(asked)["notes"] == []


# --- memory over the whole process tree -------------------------------------------------------


@pytest.mark.parametrize("warm_start", PATHS)
@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("api", APIS)
def test_children_together_hold_no_more_than_the_memory_limit(level, warm_start, api):
    if not tree_limits.support().version:
        pytest.skip(tree_limits.status())
    memory_mb = load_problem(api).resources.memory_mb
    share_mb, children = 120, 4
    assert share_mb < memory_mb < share_mb * children  # each fits alone, not all together
    code = candidate("memory_across_children", children=children, share_mb=share_mb)
    (result,) = evaluate_in_turn([code], level, warm_start, api=api)
    stage = result.stages[-1]
    holding = stage.metrics.get("holding", 0) if stage.failure is None else 0
    assert stage.failure in (None, FailureKind.MEMORY), stage
    assert holding * share_mb <= memory_mb, stage.feedback


@pytest.mark.parametrize("level", [lv for lv in LEVELS if warm.supported(lv)])
@pytest.mark.parametrize("api", APIS)
def test_a_tree_out_of_memory_loses_its_own_processes_not_the_warm_interpreter(level, api):
    """On the warm path the evaluation's cgroup also holds the harness processes (it is born
    there, from the zygote): the kernel must pick the candidate's processes, and the warm
    interpreter (on the judge API: the candidate's) serves the next evaluation as before."""
    if not tree_limits.support().version:
        pytest.skip(tree_limits.status())
    problem = load_problem(api)
    bomb = candidate("memory_across_children", children=4, share_mb=120)
    innocent = (api / "initial.py").read_text()
    role = "candidate" if api == JUDGE_PROBLEM else "judge"

    async def go() -> tuple[list[EvalResult], list[int]]:
        executor = _executor(level, True)
        results, pids = [], []
        try:
            for code in (bomb, innocent):
                results.append(await executor.evaluate(problem, code))
                interp = executor._warm.interpreter(api, "evaluate.py", level, role=role)
                pids.append(interp.proc.pid)
        finally:
            await executor.aclose()
        return results, pids

    (bombed, after), pids = asyncio.run(go())
    assert bombed.stages[-1].failure in (None, FailureKind.MEMORY), bombed.stages[-1]
    assert bombed.stages[-1].failure is not None or bombed.stages[-1].metrics["holding"] <= 2
    assert after.stages[-1].failure is None and after.stages[-1].valid, after.stages[-1]
    assert pids[0] == pids[1], "the warm interpreter was replaced"


# --- other refused calls, from anywhere in the candidate's tree -------------------------------

# x86-64 numbers (the candidate calls them by number, as native code would).
FORBIDDEN = {
    "ptrace": (101, (0, 0, 0, 0)),                        # PTRACE_TRACEME
    "unshare": (272, (0x10000000,)),                      # a new user namespace
    "mount": (165, (b"none", b"/tmp", b"tmpfs", 0, 0)),
    "bpf": (321, (0, 0, 0)),
    "perf_event_open": (298, (0, 0, -1, -1, 0)),
    "keyctl": (250, (0, -4, 0)),                          # KEYCTL_GET_KEYRING_ID
}


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="system call numbers of x86-64")
@pytest.mark.parametrize("warm_start", PATHS)
@pytest.mark.parametrize("name", sorted(FORBIDDEN))
@pytest.mark.parametrize("api", APIS)
def test_a_refused_call_in_a_child_fails_the_evaluation_though_ignored(name, warm_start, api):
    _needs_filter()
    number, args = FORBIDDEN[name]
    code = candidate("forbidden_call_in_a_child", number=number, args=repr(args))
    (result,) = evaluate_in_turn([code], LEVELS[0], warm_start, api=api)
    stage = result.stages[-1]
    assert stage.failure == FailureKind.SANDBOX_DENIED, stage
    assert name in stage.reason


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="system call numbers of x86-64")
@pytest.mark.parametrize("api", APIS)
def test_io_uring_is_absent_not_a_refusal(api):
    """Libraries probe for io_uring and fall back without it: as on a kernel without it."""
    _needs_filter()
    code = candidate("forbidden_call_in_a_child", number=425, args=repr((8, 0)))
    (result,) = evaluate_in_turn([code], LEVELS[0], False, api=api)
    stage = result.stages[-1]
    assert stage.failure is None and stage.valid, stage
    assert stage.metrics["child_errno"] == errno.ENOSYS

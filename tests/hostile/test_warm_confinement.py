"""The warm path under the confinement rules of the cold one: the zygote starts in the same
allow-list view, the evaluator it imports reads the hidden files through inherited descriptors
that no candidate fork inherits, the unshare level's mount view covers warm forks as it covers
cold runs, and GPU stages stay cold."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from evaluators import isolation, warm
from evaluators.executors import LocalExecutor
from evaluators.sandbox import SandboxLimits
from evaluators.warm_pool import WarmPool
from evolve.problem.spec import load_problem
from tests.sandbox_helpers import candidate

REPO = Path(__file__).resolve().parents[2]
SPOT = REPO / "problems" / "spot_single"
LEVELS = [level for level in isolation.available_levels() if warm.supported(level)]

pytestmark = pytest.mark.skipif(not LEVELS, reason="the warm path needs root (else cold)")


def _tree(pid: int) -> list[int]:
    """`pid` and all its descendants (via /proc/*/stat's parent field)."""
    parents: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/stat", "rb") as f:
                    stat = f.read()
                parents[int(entry.name)] = int(stat[stat.rindex(b")") + 2:].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    found, frontier = [pid], [pid]
    while frontier:
        children = [c for c, p in parents.items() if p in frontier]
        found += children
        frontier = children
    return found


def _open_files(pids: list[int]) -> list[str]:
    targets = []
    for pid in pids:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                try:
                    targets.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
                except OSError:
                    continue
        except OSError:
            continue
    return targets


def _run(pool: WarmPool, code: str, level: str, *, gpu: bool = False, root: Path = SPOT):
    problem = load_problem(root)
    return pool.run(problem_dir=root, evaluator_file=problem.config.problem.evaluator, code=code,
                    stage="quick", limits=SandboxLimits(timeout_s=120), level=level,
                    gpu=gpu, hidden=tuple(problem.config.problem.hidden))


@pytest.fixture(params=["installed", "in_tmp"])
def spot(request, tmp_path) -> Path:
    """spot_single where it is installed, and a copy under /tmp (where each bubblewrap fork's
    fresh /tmp must bind it back from the zygote's view, still without its hidden files)."""
    if request.param == "installed":
        return SPOT
    root = tmp_path / "spot_single"
    shutil.copytree(SPOT, root, ignore=shutil.ignore_patterns("__pycache__"))
    for folder, _, files in os.walk(root):
        os.chmod(folder, 0o755)
        for name in files:
            os.chmod(Path(folder) / name, 0o644)
    return root


@pytest.mark.parametrize("level", LEVELS)
def test_the_warm_evaluator_reads_hidden_files_a_warm_candidate_never_sees(level, spot):
    problem = load_problem(spot)
    hidden = tuple(problem.config.problem.hidden)
    paths = [str(spot / rel) for rel in hidden]
    pool = WarmPool()
    try:
        outcome = _run(pool, candidate("spot_read_hidden_copy", paths=repr(paths)), level,
                       root=spot)
        interp = pool.interpreter(spot, problem.config.problem.evaluator, level, hidden)
        assert interp is not None and interp.preloaded, "the warm path was not taken"
        # The evaluator read its data (the stage is valid), the candidate got neither the paths
        # nor a descriptor of them.
        assert outcome.result is not None and outcome.result.get("failure") is None, \
            (outcome.result, outcome.stderr)
        if level != "rlimits":  # rlimits leaves them readable at their paths, cold too
            # Left out of the view (bwrap) or covered by /dev/null (unshare): nothing to read.
            lines = outcome.stdout.splitlines()
            denied = {line.split()[1] for line in lines if line.startswith("DENIED")
                      or (line.startswith("READ") and line.endswith(" b''"))}
            assert denied == set(paths), outcome.stdout
            assert not [line for line in lines if line.startswith("READ")
                        and not line.endswith(" b''")], outcome.stdout
        assert not [line for line in outcome.stdout.splitlines() if line.startswith("FD")
                    and any(Path(p).name in line for p in paths)], outcome.stdout
        # The zygote closed them before its first fork: nothing in its tree holds one now.
        held = [t for t in _open_files(_tree(interp.proc.pid))
                if any(t.endswith(Path(p).name) for p in paths)]
        assert held == []
        # And the run process closed its copies once the zygote had them.
        mine = [t for t in _open_files([os.getpid()])
                if any(t.endswith(Path(p).name) for p in paths)]
        assert mine == []
        # A second candidate, forked from the same zygote, is valid too: the evaluator's data
        # was loaded once, at import.
        again = _run(pool, (spot / "initial.py").read_text(), level, root=spot)
        assert again.result is not None and again.result.get("failure") is None, again.stderr
        assert pool.interpreter(spot, problem.config.problem.evaluator, level, hidden) is interp
    finally:
        pool.close()


@pytest.mark.parametrize("level", [lv for lv in LEVELS if lv != "rlimits"])
def test_a_host_file_outside_the_view_is_unreadable_from_a_warm_fork(level, host_file):
    path, content = host_file
    pool = WarmPool()
    try:
        outcome = _run(pool, candidate("spot_read_hidden_copy", paths=repr([str(path)])), level)
        problem = load_problem(SPOT)
        assert pool.interpreter(SPOT, problem.config.problem.evaluator, level,
                                tuple(problem.config.problem.hidden)) is not None
        assert "DENIED" in outcome.stdout, outcome.stdout
        assert content not in outcome.stdout + outcome.stderr
    finally:
        pool.close()


@pytest.mark.parametrize("level", LEVELS)
def test_gpu_stages_start_cold(level):
    pool = WarmPool()
    try:
        outcome = _run(pool, (SPOT / "initial.py").read_text(), level, gpu=True)
        assert outcome.result is not None and outcome.result.get("failure") is None, \
            outcome.stderr
        assert pool._interpreters == {}  # no zygote was started for it
    finally:
        pool.close()


def test_the_executor_hands_gpu_and_hidden_to_the_warm_pool():
    level = LEVELS[0]
    problem = load_problem(SPOT)

    import asyncio

    async def go():
        executor = LocalExecutor(max_parallel=1, isolation=level, gpus=())
        try:
            result = await executor.evaluate(problem, (SPOT / "initial.py").read_text(),
                                             stages=["quick"])
            interp = executor._warm.interpreter(
                SPOT, problem.config.problem.evaluator, level,
                tuple(problem.config.problem.hidden))
            return result, interp
        finally:
            await executor.aclose()

    result, interp = asyncio.run(go())
    assert result.stages[0].failure is None, result.stages[0].reason
    assert interp is not None and interp.preloaded

"""The `optimise` operator keeps no state of its own: after `kill -9` and `evolve resume`, a run
proposes exactly what an uninterrupted run with the same seed proposes (same archive contents),
because its optimiser is rebuilt from the archive's trials."""

from __future__ import annotations

import os
import random
import shutil
import signal
from types import SimpleNamespace

import pytest

from evolve.operators.optimise import twin_keys
from evolve.operators.skeleton import try_skeleton
from tests.engine.engine_support import FIXTURE, evolve_process
from tests.engine.test_crash_resume import committed, wait_for

PROGRAMS = 18
# One proposal and one evaluation at a time: the engine then ingests each program before the
# next completes, so the planning it does is the same under any load (with more in flight, a
# loaded machine can ingest two at once, and that is the engine's determinism, tested elsewhere).
ARGS = ["--programs", str(PROGRAMS), "--seed", "11", "--no-live",
        "--set", "concurrency.proposals=1", "--set", "concurrency.evaluations=1",
        "--set", "islands.count=2"]
# optimise alone, and with `structure` on a program with a comparison: its swaps (`<` -> `<=`)
# make skeletons that pool their trials with their parents' (twins: evolve/operators/optimise.py).
WITH_COMPARISON = '''# EVOLVE-BLOCK-START
VALUE = 1.0
LIMIT = 30.0


def solve() -> float:
    return VALUE if VALUE < LIMIT else LIMIT - 2.0
# EVOLVE-BLOCK-END
'''
CASES = [('["optimise"]', None), ('["optimise", "structure"]', WITH_COMPARISON)]


def twins_pooled(programs: dict[str, tuple[str, float | None]]) -> bool:
    """Whether two skeletons of the run were pooled as twins."""
    records = [SimpleNamespace(code=code, score=score, valid=score is not None)
               for code, score in programs.values()]
    seen = [(seq, item, try_skeleton(item.code)) for seq, item in enumerate(records)]
    seen = [entry for entry in seen if entry[2] is not None]
    return any(len(twin_keys(skeleton, seen)) > 1 for _seq, _item, skeleton in seen)


def contents(run_dir) -> dict[str, tuple[str, float | None]]:
    return {key: (code, score) for key, (_id, code, score) in committed(run_dir).items()}


@pytest.mark.parametrize(("offline", "initial"), CASES)
def test_kill_9_and_resume_gives_the_uninterrupted_runs_proposals(tmp_path, offline, initial):
    args = [*ARGS, "--set", f"operators.offline={offline}"]
    problem = FIXTURE
    if initial is not None:
        problem = tmp_path / "target"
        shutil.copytree(FIXTURE, problem, ignore=shutil.ignore_patterns("__pycache__"))
        (problem / "initial.py").write_text(initial)
    straight = tmp_path / "straight"
    proc = evolve_process("run", str(problem), "--run-dir", str(straight), *args)
    output = proc.communicate(timeout=180)[0]
    assert proc.returncode == 0, output
    expected = contents(straight)
    assert len(expected) == PROGRAMS + 1
    optimised = [code for key, (code, _s) in expected.items() if key != "initial"]
    assert len(set(optimised)) > PROGRAMS // 2, "optimise proposed new values"
    if initial is not None:
        assert twins_pooled(expected), "no structural edit made a twin: the case tests nothing"

    killed = tmp_path / "killed"
    rng = random.Random(3)
    proc = evolve_process("run", str(problem), "--run-dir", str(killed), *args)
    kills = 0
    while kills < 3:
        wait_for(killed, 4 + 6 * kills + rng.randint(0, 3), proc)
        if proc.poll() is not None:
            break
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        kills += 1
        proc = evolve_process("resume", str(killed), "--no-live")
    output = proc.communicate(timeout=180)[0]
    assert proc.returncode == 0, output
    assert kills >= 2, f"the run finished after {kills} kills; make it longer"
    assert contents(killed) == expected

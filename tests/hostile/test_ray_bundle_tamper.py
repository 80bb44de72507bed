"""The shipped problem bundle on a Ray node: the warm interpreters import the problem and its
package's helpers from `<tmp>/evolve-problems/<digest>/`, first on their Python path. A candidate
evaluated there that writes into every folder of that path (a helper module rewritten, a
`sitecustomize.py` that a fresh interpreter would run first) must change nothing a later
evaluation on that node imports, warm or cold."""

from __future__ import annotations

import asyncio
import hashlib
import shutil
from pathlib import Path

import pytest

from evaluators import warm
from evaluators.isolation import detect_isolation
from evolve.problem.discovery import find_problem

SLEEP_PROBLEM = Path(__file__).resolve().parents[1] / "support" / "sleep_problem"

pytestmark = pytest.mark.skipif(not warm.supported(detect_isolation("auto")[0]),
                                reason="the warm path needs root (else cold)")

HELPER = "VALUE = 'genuine'\n"
# Reports what the interpreter imported: the helper's value, and whether anything ran at its
# start (a planted sitecustomize sets builtins.TAMPERED).
EVALUATOR_TAIL = """

import builtins as _builtins

from shipped_pkg import helper as _helper

_sleep_evaluate = evaluate


def evaluate(program_path, stage):
    found = _sleep_evaluate(program_path, stage)
    return {**found, "feedback": f"{_helper.VALUE} {getattr(_builtins, 'TAMPERED', False)}"}
"""
ATTACK = """import os
import sys
from pathlib import Path

# EVOLVE-BLOCK-START
SECONDS = 0.0


def solve() -> float:
    planted = "import builtins\\nbuiltins.TAMPERED = True\\n"
    roots = {Path(p) for p in [*os.environ.get("PYTHONPATH", "").split(os.pathsep), *sys.path]
             if p and Path(p).is_dir()}
    for root in roots:
        targets = [root / "sitecustomize.py", root / "usercustomize.py"]
        targets += sorted((root / "shipped_pkg").rglob("*.py"))
        for target in targets:
            for action in (lambda t: t.write_text(planted + "VALUE = 'tampered'\\n"),
                           lambda t: t.chmod(0o777),
                           lambda t: t.unlink()):
                try:
                    action(target)
                except OSError:
                    pass
        try:
            (root / "shipped_pkg" / "helper.py").write_text("VALUE = 'tampered'\\n")
        except OSError:
            pass
    return SECONDS
# EVOLVE-BLOCK-END
"""


def packaged_problem(tmp_path: Path) -> Path:
    package = tmp_path / "shipped_pkg"
    shutil.copytree(SLEEP_PROBLEM, package / "sleeper")
    (package / "__init__.py").write_text("")
    (package / "helper.py").write_text(HELPER)
    evaluator = package / "sleeper" / "evaluate.py"
    evaluator.write_text(evaluator.read_text() + EVALUATOR_TAIL)
    return package / "sleeper"


def tree_digest(root: Path) -> dict[str, tuple[int, str]]:
    return {str(p.relative_to(root)): (p.stat().st_mode,
                                       hashlib.sha256(p.read_bytes()).hexdigest()
                                       if p.is_file() else "")
            for p in sorted(root.rglob("*"))}


def test_a_candidate_on_a_warm_actor_cannot_change_the_shipped_bundle(tmp_path, ray_cluster):
    from evaluators.problem_bundle import bundle_problem, unpacked_dir
    from evaluators.ray_executor import RayExecutor

    problem = find_problem(str(packaged_problem(tmp_path)))
    innocent = (SLEEP_PROBLEM / "initial.py").read_text().replace("SECONDS = 1.0",
                                                                 "SECONDS = 0.0")
    warm_executor = RayExecutor(address=ray_cluster.address, max_parallel=1,
                                resources={"node_b": 1})

    async def attack_then_innocent():
        try:
            first = await warm_executor.evaluate(problem, innocent)
            before = tree_digest(unpacked_dir(bundle_problem(problem.root).digest))
            attacked = await warm_executor.evaluate(problem, ATTACK)
            after = await warm_executor.evaluate(problem, innocent)
            return first, before, attacked, after
        finally:
            await warm_executor.aclose()

    first, before, attacked, after = asyncio.run(attack_then_innocent())
    assert warm_executor.stages_run == {"warm": 3}, warm_executor.stages_run
    assert attacked.valid, attacked.reason  # the attack ran to its end, refused quietly
    bundle_dir = unpacked_dir(bundle_problem(problem.root).digest)
    assert tree_digest(bundle_dir) == before  # not one byte or mode bit of the bundle changed
    assert first.stages[0].feedback == after.stages[0].feedback == "genuine False"

    # A fresh interpreter on the node (a cold task, the bundle first on its path) imports the
    # genuine helper and runs no planted start-up file either.
    cold = RayExecutor(address=ray_cluster.address, max_parallel=1, resources={"node_b": 1},
                       warm_start=False)

    async def cold_once():
        try:
            return await cold.evaluate(problem, innocent)
        finally:
            await cold.aclose()

    result = asyncio.run(cold_once())
    assert cold.stages_run == {"cold": 1}
    assert result.stages[0].feedback == "genuine False", result.reason

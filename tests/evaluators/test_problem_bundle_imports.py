"""A problem's bundle is self-contained: it carries what the problem imports from its package
(package `__init__.py` files, shared helpers such as `problems/_spot_sim`), placed under the real
import names, and a sandbox on the unpacked bundle imports those, not a node's own install."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from evaluators import isolation
from evaluators.problem_bundle import bundle_problem, python_path, unpack, unpacked_dir
from evaluators.problem_imports import imported_modules, layout
from evaluators.sandbox import SandboxLimits, run_sandboxed

REPO = Path(__file__).resolve().parents[2]


def outside(found) -> list[str]:
    return sorted(v for v in found.files.values() if not v.startswith(found.problem_path + "/"))


def test_a_builtin_problem_carries_its_package_and_the_helpers_it_imports():
    spot = layout(REPO / "problems" / "spot_single")
    assert spot.problem_path == "problems/spot_single"
    assert "problems/__init__.py" in outside(spot)
    assert "problems/_spot_sim/evaluation.py" in outside(spot)
    assert "problems/_spot_sim/simulate.py" in outside(spot)
    # ...and nothing of the other problems.
    assert not [p for p in outside(spot) if not p.startswith(("problems/_spot_sim/",
                                                              "problems/__init__.py"))]
    txn = layout(REPO / "problems" / "txn")
    assert outside(txn) == ["problems/__init__.py"]
    assert "problems/txn/model.py" in txn.files.values()


def test_relative_and_from_imports_are_resolved_against_the_module(tmp_path):
    path = tmp_path / "mod.py"
    path.write_text("from . import a\nfrom ..b import c\nimport x.y\nfrom z import *\n")
    names = set(imported_modules(path, "pkg.sub.mod"))
    assert {"pkg.sub", "pkg.sub.a", "pkg.b", "pkg.b.c", "x.y", "z"} <= names


def make_package(tmp_path: Path) -> Path:
    """`mypkg/` (installed nowhere) with a shared helper, an unused helper and one problem
    whose evaluator imports the helper under its package name."""
    pkg = tmp_path / "mypkg"
    (pkg / "_helper").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "_helper" / "__init__.py").write_text("from mypkg._helper.rule import SCALE\n")
    (pkg / "_helper" / "rule.py").write_text("SCALE = 3.0\n")
    (pkg / "_unused.py").write_text("raise ImportError('never shipped, never imported')\n")
    probx = pkg / "probx"
    probx.mkdir()
    (probx / "__init__.py").write_text("")
    (probx / "problem.toml").write_text(textwrap.dedent('''
        [problem]
        name = "probx"
        initial = "initial.py"
        evaluator = "evaluate.py"
        [[stages]]
        name = "only"
        timeout_s = 30
    '''))
    (probx / "evaluate.py").write_text(textwrap.dedent('''
        from mypkg._helper import SCALE
        from mypkg.probx.table import VALUE
        from evaluators.harness_api import load_candidate

        def evaluate(program_path, stage):
            value = float(load_candidate(program_path).value())
            return {"score": value * SCALE + VALUE, "valid": True, "metrics": {}}
    '''))
    (probx / "table.py").write_text("VALUE = 0.5\n")
    (probx / "initial.py").write_text("def value():\n    return 2\n")
    return probx


def test_a_packaged_problem_elsewhere_ships_only_what_it_imports(tmp_path):
    found = layout(make_package(tmp_path))
    assert found.problem_path == "mypkg/probx"
    assert outside(found) == ["mypkg/__init__.py", "mypkg/_helper/__init__.py",
                              "mypkg/_helper/rule.py"]


@pytest.mark.skipif(isolation.detect_isolation("auto")[0] == "rlimits",
                    reason="needs a mount-namespace sandbox (bwrap or unshare)")
def test_the_sandbox_imports_the_helper_from_the_unpacked_bundle(tmp_path):
    """`mypkg` exists on no node's path: only the bundle can provide it."""
    bundle = bundle_problem(make_package(tmp_path))
    shutil.rmtree(tmp_path / "mypkg")  # the driver's copy is gone too
    shutil.rmtree(unpacked_dir(bundle.digest), ignore_errors=True)
    root = unpack(bundle.data, bundle.digest)
    try:
        level, _ = isolation.detect_isolation("auto")
        outcome = run_sandboxed(problem_dir=root / bundle.problem_path,
                                evaluator_file="evaluate.py", code="def value():\n    return 2\n",
                                stage="only", limits=SandboxLimits(timeout_s=30), level=level,
                                extra_env={"PYTHONPATH": python_path(root)})
        assert outcome.result is not None, outcome.stderr
        assert outcome.result.get("score") == 6.5, outcome.result
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.skipif(isolation.detect_isolation("auto")[0] == "rlimits",
                    reason="needs a mount-namespace sandbox (bwrap or unshare)")
def test_a_shipped_shared_helper_is_guarded_like_the_checkouts(tmp_path):
    """The attack of tests/hostile (patch `problems._spot_sim.evaluation` from the candidate)
    against the bundle's copy of the helper: the tamper guard must see it there too."""
    fixture = REPO / "tests" / "fixtures" / "shared_helper_problem"
    bundle = bundle_problem(fixture)
    shutil.rmtree(unpacked_dir(bundle.digest), ignore_errors=True)
    root = unpack(bundle.data, bundle.digest)
    attack = (REPO / "tests" / "hostile" / "candidates" / "patch_shared_helper.py").read_text()
    try:
        level, _ = isolation.detect_isolation("auto")
        outcome = run_sandboxed(problem_dir=root / bundle.problem_path,
                                evaluator_file="evaluate.py", code=attack, stage="quick",
                                limits=SandboxLimits(timeout_s=30), level=level,
                                extra_env={"PYTHONPATH": python_path(root),
                                           "EVOLVE_ALLOW_INTROSPECTION": "1"})
        assert (root / "problems" / "_spot_sim" / "evaluation.py").is_file()
        assert outcome.result is not None, outcome.stderr
        assert "problems._spot_sim.evaluation.weighted_mean_std" in str(outcome.result)
    finally:
        shutil.rmtree(root, ignore_errors=True)

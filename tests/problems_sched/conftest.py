"""Helpers for the scheduling-problem tests: load a problem's evaluate.py by path, as the
harness does, and write small candidate programs."""

from __future__ import annotations

import importlib.util
import itertools
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]
PROBLEMS = REPO / "problems"
_counter = itertools.count()


def load_evaluator(problem: str) -> ModuleType:
    path = PROBLEMS / problem / "evaluate.py"
    spec = importlib.util.spec_from_file_location(f"_sched_eval_{problem}_{next(_counter)}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def evaluators() -> dict[str, ModuleType]:
    return {name: load_evaluator(name) for name in ("spot_single", "spot_multi", "txn")}


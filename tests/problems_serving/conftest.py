"""Helpers for the serving-problem tests: the evaluator loaded by path (as the harness does),
small workloads, and a writer for candidate programs."""

from __future__ import annotations

import importlib.util
import itertools
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
PROBLEM = REPO / "problems" / "serving"
_counter = itertools.count()


def load_module(path: Path):
    spec = importlib.util.spec_from_file_location(f"_serving_test_{next(_counter)}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def evaluator():
    return load_module(PROBLEM / "evaluate.py")


@pytest.fixture(scope="session")
def baselines():
    return {p.stem: load_module(p) for p in sorted((PROBLEM / "baselines").glob("*.py"))}


def small_workload(count: int = 600, rate: float = 60.0, seed: int = 3):
    """The first `count` conversation requests at `rate` requests/s (deterministic)."""
    from problems.serving.scenarios import window
    head = window("conv", 10.0).head(count)
    return head.compress(rate * head.span_s / (len(head) - 1), f"conv-{count}@{rate}")


def tight_config(blocks: int = 300):
    """A cluster whose instances have little KV memory, so preemption and aborted migrations
    happen."""
    from dataclasses import replace

    from problems.serving.cluster import DEFAULT_CONFIG
    spec = replace(DEFAULT_CONFIG.spec, total_blocks=blocks, watermark_blocks=3)
    return replace(DEFAULT_CONFIG, instances=4, spec=spec)


__all__ = ["PROBLEM", "REPO", "load_module", "np", "small_workload", "tight_config"]

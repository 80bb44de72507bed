"""Shared fixtures for the EPLB problem tests."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("torch")

PROBLEM = Path(__file__).resolve().parents[2] / "problems" / "eplb"


@pytest.fixture(scope="session")
def problem_dir() -> Path:
    return PROBLEM


@pytest.fixture(scope="session")
def deepseek():
    from evaluators.harness_api import load_candidate
    return load_candidate(PROBLEM / "initial.py").rebalance_experts

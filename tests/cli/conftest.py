"""Fixtures for the CLI tests: a real run of the toy problem, and a run recorded as failed
(see tests/support)."""

from __future__ import annotations

import pytest

from tests.support.archive_run import RunFacts, cached_run
from tests.support.engine_run import shared_toy_run


@pytest.fixture(scope="session")
def toy_run(tmp_path_factory: pytest.TempPathFactory) -> RunFacts:
    return shared_toy_run(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="session")
def failed_run(tmp_path_factory: pytest.TempPathFactory) -> RunFacts:
    return cached_run(tmp_path_factory.getbasetemp(), "failed-run", programs=4, seed=3,
                      status="failed")

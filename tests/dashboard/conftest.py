"""Fixtures for the dashboard tests: a real run of the toy problem (see tests/support)."""

from __future__ import annotations

import pytest

from tests.support.archive_run import RunFacts
from tests.support.engine_run import shared_toy_run


@pytest.fixture(scope="session")
def toy_run(tmp_path_factory: pytest.TempPathFactory) -> RunFacts:
    return shared_toy_run(tmp_path_factory.getbasetemp())



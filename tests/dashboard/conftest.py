"""Fixtures for the dashboard tests: runs written through the real archive (see tests/support)."""

from __future__ import annotations

import pytest

from tests.support.archive_run import RunFacts, cached_run


@pytest.fixture(scope="session")
def toy_run(tmp_path_factory: pytest.TempPathFactory) -> RunFacts:
    return cached_run(tmp_path_factory.getbasetemp(), "toy-run")



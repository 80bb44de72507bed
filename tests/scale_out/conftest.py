"""Fixtures of the scale-out tests: the scripted LLM server (the Ray cluster and the PostgreSQL
server are session fixtures in tests/conftest.py)."""

from __future__ import annotations

import pytest

from tests.support.llm_server import scripted_llm_server  # noqa: F401 - a fixture


@pytest.fixture
def server_factory(scripted_llm_server):  # noqa: F811 - the imported fixture
    return scripted_llm_server

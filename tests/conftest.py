"""Suite-wide settings, kept minimal: helpers belong next to the tests that use them."""

from __future__ import annotations

import os

import pytest

# Provider keys from the developer's shell must never make a test talk to a real LLM service;
# a test that needs a key sets one itself (and points it at a scripted server on 127.0.0.1).
_KEY_SUFFIXES = ("_API_KEY", "_API_BASE", "_BASE_URL")


@pytest.fixture(autouse=True)
def _no_provider_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.endswith(_KEY_SUFFIXES) or name in ("OLLAMA_HOST",):
            monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session", autouse=True)
def _sweep_sandboxes_of_killed_processes():
    """Crash tests kill runs with SIGKILL, which leaves their sandbox folders behind; remove
    those (only folders whose owner process is gone) when the session ends."""
    yield
    from evaluators.sandbox_dirs import sweep_stale_sandboxes

    sweep_stale_sandboxes()

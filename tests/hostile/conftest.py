"""Fixtures shared by the hostile-program tests."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest


@pytest.fixture
def host_file():
    """A file outside the allow-list (under /srv, else /opt), readable by everyone."""
    content = f"host-secret-{uuid.uuid4().hex}"
    for folder in (Path("/srv"), Path("/opt")):
        path = folder / f"evolve-hostile-{uuid.uuid4().hex}.txt"
        try:
            path.write_text(content)
            path.chmod(0o644)
        except OSError:
            continue
        yield path, content
        path.unlink(missing_ok=True)
        return
    pytest.skip("cannot place a file under /srv or /opt (needs write access there)")

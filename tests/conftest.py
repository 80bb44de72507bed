"""Suite-wide settings, kept minimal: helpers belong next to the tests that use them."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest

# Provider keys from the developer's shell must never make a test talk to a real LLM service;
# a test that needs a key sets one itself (and points it at a scripted server on 127.0.0.1).
_KEY_SUFFIXES = ("_API_KEY", "_API_BASE", "_BASE_URL")


@pytest.fixture(autouse=True)
def _no_provider_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.endswith(_KEY_SUFFIXES) or name in ("OLLAMA_HOST",):
            monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def ray_cluster():
    """A real two-node Ray cluster for the whole session (a start costs ~15 s), this process
    connected to it as the driver. Node 2 carries the custom resource `node_b`."""
    try:
        import ray
    except ImportError:
        pytest.skip("ray is not installed; `bash scripts/setup.sh --dev` installs it")
    from tests.support.ray_cluster import LocalRayCluster, wait_for_nodes

    cluster = LocalRayCluster(head_cpus=2)
    try:
        cluster.add_node(2, {"node_b": 4})
        # Ray adds the driver's working directory (here the repository) to every worker's
        # path: connect from the cluster's own folder so the workers never see the checkout.
        with contextlib.chdir(cluster.temp_dir):
            ray.init(address=cluster.address, log_to_driver=False)
        wait_for_nodes(2)
        yield cluster
    finally:
        if ray.is_initialized():
            ray.shutdown()
        cluster.stop()


@pytest.fixture(scope="session")
def postgres_server():
    """A real PostgreSQL server for the whole session, in a temp folder, stopped at the end."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("psycopg is not installed; `bash scripts/setup.sh --dev` installs it")
    from tests.support.postgres_server import PostgresServer, find_bindir

    bindir = find_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL's server programs (initdb, pg_ctl) are not installed and "
                    "could not be: `bash scripts/setup.sh --dev` installs Debian's postgresql "
                    "as root")
    server = PostgresServer(bindir)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def archive_url(request, tmp_path):
    """Where an archive test keeps its archive: a SQLite file, or a fresh database on the
    session's PostgreSQL server (the archive suite runs on both)."""
    if request.param == "sqlite":
        return str(tmp_path / "run" / "archive.sqlite")
    return request.getfixturevalue("postgres_server").database()


@pytest.fixture(scope="session", autouse=True)
def _sweep_sandboxes_of_killed_processes():
    """Crash tests kill runs with SIGKILL, which leaves their sandbox folders behind; remove
    those (only folders whose owner process is gone) when the session ends."""
    yield
    from evaluators.sandbox_dirs import sweep_stale_sandboxes

    sweep_stale_sandboxes()


@pytest.fixture
def write_program(tmp_path: Path):
    """Writes a candidate's source to a file and returns its path (for evaluator tests)."""
    def write(source: str, name: str = "candidate.py") -> str:
        path = tmp_path / name
        path.write_text(source)
        return str(path)
    return write

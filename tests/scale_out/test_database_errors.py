"""A database that cannot be opened is one line saying what to do, exit 2, whatever the
command; a password never reaches the archive or the run folder (real PostgreSQL server)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.engine.engine_support import FIXTURE
from tests.scale_out.test_shared_database import run_args

ROOT = Path(__file__).resolve().parents[2]


def evolve(*args: str, env_extra: dict[str, str] | None = None
           ) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if not k.endswith("_API_KEY") and not k.startswith("PG")}
    env.update(PYTHONPATH=str(ROOT), COLUMNS="300", HOME=os.environ.get("HOME", "/root"),
               **(env_extra or {}))
    return subprocess.run([sys.executable, "-m", "evolve", *args], capture_output=True,
                          text=True, env=env, timeout=180, cwd=ROOT)


def one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 2, done.stdout[-2000:] + done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: ")
    return lines[0]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_into(tmp_path: Path, url: str, **env: str) -> subprocess.CompletedProcess[str]:
    return evolve("run", str(FIXTURE), "--programs", "2", "--no-live",
                  "--run-dir", str(tmp_path / "run"), "--set", f'archive.url="{url}"',
                  env_extra=env)


def test_an_unreachable_server_is_one_line(tmp_path):
    line = one_error_line(run_into(
        tmp_path, f"postgresql+psycopg://evolve:hunter2@127.0.0.1:{free_port()}/db"))
    assert "cannot reach the database server 127.0.0.1:" in line and "archive.url" in line
    assert "hunter2" not in line


def test_a_missing_database_is_one_line(tmp_path, postgres_server):
    line = one_error_line(run_into(
        tmp_path, f"postgresql+psycopg://evolve@127.0.0.1:{postgres_server.port}/no_such_db"))
    assert "database 'no_such_db' does not exist" in line and "createdb" in line


@pytest.fixture
def guarded(postgres_server):
    """A database whose owner must give a password: (url without it, user, password)."""
    url = postgres_server.database()
    database = url.rsplit("/", 1)[1]
    user = postgres_server.password_user("s3cret-pw", database)
    return f"postgresql+psycopg://{user}@127.0.0.1:{postgres_server.port}/{database}", user


def test_a_wrong_password_is_one_line_naming_where_the_password_goes(tmp_path, guarded):
    url, user = guarded
    wrong = url.replace(f"//{user}@", f"//{user}:not-it@")
    line = one_error_line(run_into(tmp_path, wrong))
    assert f"refused the password of user {user}" in line and "PGPASSWORD" in line
    assert "not-it" not in line
    # No password at all: said as such.
    line = one_error_line(run_into(tmp_path, url))
    assert "wants a password" in line or "refused the password" in line


def test_the_password_is_never_stored_and_comes_from_the_environment(tmp_path, guarded):
    url, user = guarded
    with_password = url.replace(f"//{user}@", f"//{user}:s3cret-pw@")
    done = evolve(*run_args(tmp_path / "run", with_password, seed=1, programs=2))
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    engine = create_engine(with_password)
    try:
        with engine.connect() as conn:
            stored = conn.execute(text("SELECT config_toml FROM runs")).scalars().all()
            everything = " ".join(str(row) for row in conn.execute(text(
                "SELECT key, value FROM state")).all())
    finally:
        engine.dispose()
    assert stored and all("s3cret-pw" not in toml and url in toml for toml in stored)
    assert "s3cret-pw" not in everything
    for path in (tmp_path / "run").rglob("*"):
        if path.is_file():
            assert b"s3cret-pw" not in path.read_bytes(), path
    # Reading the run back: the password comes from the environment (PGPASSWORD).
    status = evolve("status", str(tmp_path / "run"), "--json",
                    env_extra={"PGPASSWORD": "s3cret-pw"})
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["status"] == "completed"
    without = evolve("status", str(tmp_path / "run"), "--json")
    assert without.returncode == 2 and "PGPASSWORD" in without.stderr

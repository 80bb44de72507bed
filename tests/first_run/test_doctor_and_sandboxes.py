"""`evolve doctor RUN_DIR` and the sweep of sandbox folders left by killed processes."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from evaluators.sandbox_dirs import PREFIX, stale_sandbox_dirs, sweep_stale_sandboxes
from evolve.cli import app
from tests.first_run.support import TOY, evolve
from tests.support.engine_run import shared_toy_run


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_sweep_removes_only_folders_whose_owner_is_gone(tmp_path):
    dead = tmp_path / f"{PREFIX}{_dead_pid()}-abc"
    alive = tmp_path / f"{PREFIX}{os.getpid()}-def"
    old_unowned = tmp_path / f"{PREFIX}x1y2z3"
    new_unowned = tmp_path / f"{PREFIX}q4r5s6"
    other = tmp_path / "not-a-sandbox-123"
    for folder in (dead, alive, old_unowned, new_unowned, other):
        (folder / "sub").mkdir(parents=True)
        (folder / "sub" / "program.py").write_text("x = 1\n")
    day_ago = time.time() - 2 * 24 * 3600
    os.utime(old_unowned, (day_ago, day_ago))
    assert stale_sandbox_dirs(tmp_path) == sorted([dead, old_unowned])
    assert sweep_stale_sandboxes(tmp_path) == 2
    assert not dead.exists() and not old_unowned.exists()
    assert alive.exists() and new_unowned.exists() and other.exists()


def test_a_run_sweeps_stale_sandboxes_at_start_and_leaves_none_of_its_own(tmp_path):
    tmp = tmp_path / "tmp"
    stale = tmp / f"{PREFIX}{_dead_pid()}-left"
    stale.mkdir(parents=True)
    done = evolve("run", str(TOY), "--programs", "2", "--run-dir", str(tmp_path / "r"),
                  cwd=tmp_path, TMPDIR=str(tmp))
    assert done.returncode == 0, done.stderr
    assert "removed 1 sandbox folder(s) left by processes that no longer run" in done.stdout
    assert not stale.exists()
    assert not [p for p in tmp.iterdir() if p.name.startswith(PREFIX)]


def _doctor(target: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["doctor", target], terminal_width=80)
    return result.exit_code, result.output


@pytest.fixture
def run_dir(tmp_path, tmp_path_factory):
    """A copy of the session's toy run (14 programs and the initial one)."""
    copy = tmp_path / "r"
    shutil.copytree(shared_toy_run(tmp_path_factory.getbasetemp()).run_dir, copy)
    return copy


def test_doctor_checks_a_run_directory(tmp_path, run_dir, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    import tempfile
    monkeypatch.setattr(tempfile, "tempdir", None)   # gettempdir() reads TMPDIR again

    code, text = _doctor(str(run_dir))
    assert code == 0, text
    lines = text.splitlines()
    assert lines[0].startswith("archive: ok:") and "integrity ok" in lines[0]
    assert any(line.startswith("runs: ok: 1 run(s); the last, run 1 on toy_objective, is "
                               "completed with 15 evaluated programs") for line in lines)
    assert any(line.startswith("lock: ok: free") for line in lines)
    assert any(line.startswith("isolation used: ") for line in lines)
    assert "stale sandboxes: ok: none" in text

    (tmp_path / "tmp" / f"{PREFIX}{_dead_pid()}-x").mkdir()
    fd = os.open(run_dir / ".lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        code, text = _doctor(str(run_dir))
    finally:
        os.close(fd)
    assert code == 0
    assert "lock: ok: held by a running evolve process" in text
    assert "stale sandboxes: warn: 1 folder(s)" in text


def test_doctor_finds_a_damaged_archive_and_refuses_a_folder_without_a_run(tmp_path, run_dir):
    archive = run_dir / "archive.sqlite"
    data = bytearray(archive.read_bytes())
    for offset in range(4096, len(data), 4096):       # scribble over every page after the first
        data[offset + 8:offset + 64] = b"\xff" * 56
    archive.write_bytes(bytes(data))
    code, text = _doctor(str(run_dir))
    assert code == 1 and text.startswith("archive: fail:")

    code, _ = _doctor(str(tmp_path / "empty-folder"))
    assert code == 2

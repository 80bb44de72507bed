"""A run killed with kill -9 is reported `crashed` (status `running`, lock free) by `evolve
status`, `evolve runs` and the dashboard's data, and `evolve resume` continues it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from db import Archive
from evolve.dashboard.data import load_run
from tests.engine.engine_support import stored_count
from tests.engine.test_fail_fast import ROOT, evolve, problem_with_evaluator

SLOW = """
_plain_evaluate = evaluate


def evaluate(program_path, stage):
    import time
    time.sleep(0.4)
    return _plain_evaluate(program_path, stage)
"""


def test_a_killed_run_is_crashed_everywhere_and_resumes(tmp_path):
    folder = problem_with_evaluator(tmp_path, SLOW)
    runs_folder = tmp_path / "runs"
    run_dir = runs_folder / "r"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    process = subprocess.Popen(
        [sys.executable, "-m", "evolve", "run", str(folder), "--programs", "40", "--no-live",
         "--run-dir", str(run_dir), "--set", "concurrency.evaluations=1"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if stored_count(run_dir) >= 3:
                break
            time.sleep(0.2)
        live = evolve("status", str(run_dir), "--json")
        assert json.loads(live.stdout)["status"] == "running"  # alive: not crashed
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()

    status = evolve("status", str(run_dir), "--json")
    assert status.returncode == 1 and json.loads(status.stdout)["status"] == "crashed"
    snapshot = json.loads(status.stdout)
    assert snapshot.get("eta_s") is None
    listed = evolve("runs", str(runs_folder), "--json")
    assert [row["status"] for row in json.loads(listed.stdout)] == ["crashed"]
    with Archive.open(run_dir / "archive.sqlite", create=False) as archive:
        assert archive.runs()[0].status == "running"  # what the archive itself holds
        assert load_run(archive, 1).run.status == "crashed"  # what the dashboard shows

    resumed = evolve("resume", str(run_dir), "--programs", "8", "--no-live")
    assert resumed.returncode == 0, resumed.stderr
    after = evolve("status", str(run_dir), "--json")
    assert after.returncode == 0 and json.loads(after.stdout)["status"] == "completed"


def test_a_run_folder_without_a_lock_file_but_status_running_is_crashed(tmp_path):
    from evolve.engine.run_files import shown_status

    assert shown_status("running", tmp_path) == "crashed"
    assert shown_status("completed", tmp_path) == "completed"
    assert shown_status("running", None) == "running"  # a database server: unknown folder
    (tmp_path / ".lock").write_text(str(os.getpid()))  # a live pid, but nobody holds the lock
    assert shown_status("running", Path(tmp_path)) == "crashed"

"""Run liveness from the heartbeat in the archive, the same on SQLite and PostgreSQL: a run
whose beats stopped is `crashed` in `evolve status` and the dashboard's data (no ETA, nothing
in flight), while the archive keeps the `running` it was left with."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from db import Archive
from db.liveness import HEARTBEAT_STATE, beat, heartbeat, server_epoch, shown_status
from evolve.dashboard.data import load_run
from tests.engine.engine_support import evolve_process
from tests.scale_out.test_shared_database import committed, recorded_run_id, run_args, run_status

ROOT = Path(__file__).resolve().parents[2]


def new_run(archive: Archive) -> int:
    return archive.create_run(problem="p", config_toml="", seed=0, isolation="rlimits")


def test_a_run_whose_beats_stopped_is_crashed_on_either_database(archive_url):
    with Archive.open(archive_url) as archive:
        run_id = new_run(archive)
        # Another machine's run (its process cannot be looked up here): only the beat's age.
        beat(archive, run_id, interval_s=1.0, host="another-host", pid=123456)
        assert heartbeat(archive, run_id).age_s < 5
        assert shown_status(archive, run_id, "running") == "running"
        stored = archive.get_state(run_id, HEARTBEAT_STATE)
        archive.set_state(run_id, HEARTBEAT_STATE, stored | {"at": server_epoch(archive) - 60})
        assert shown_status(archive, run_id, "running") == "crashed"
        assert shown_status(archive, run_id, "completed") == "completed"
        assert load_run(archive, run_id).run.status == "crashed"
        assert archive.get_run(run_id).status == "running"


def test_a_run_of_this_machine_is_crashed_as_soon_as_its_process_is_gone(archive_url):
    with Archive.open(archive_url) as archive:
        run_id = new_run(archive)
        beat(archive, run_id)                       # this process: alive
        assert shown_status(archive, run_id, "running") == "running"
        gone = subprocess.Popen([sys.executable, "-c", "pass"])
        gone.wait()
        beat(archive, run_id, pid=gone.pid)         # a fresh beat, but its writer is dead
        assert shown_status(archive, run_id, "running") == "crashed"


def evolve_json(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env.update(PYTHONPATH=str(ROOT), COLUMNS="80")
    return subprocess.run([sys.executable, "-m", "evolve", *args], capture_output=True,
                          text=True, env=env, timeout=120, cwd=ROOT)


def test_a_run_killed_while_writing_to_postgresql_shows_crashed(tmp_path, postgres_server):
    url = postgres_server.database()
    run_dir = tmp_path / "run"
    proc = evolve_process(*run_args(run_dir, url, seed=3, programs=400))
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if len(committed(url, recorded_run_id(run_dir))) >= 3:
                break
            time.sleep(0.1)
        assert proc.poll() is None, proc.communicate()[0][-3000:]
        live = evolve_json("status", str(run_dir), "--json")
        assert json.loads(live.stdout)["status"] == "running", live.stdout + live.stderr
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    run_id = recorded_run_id(run_dir)
    assert run_status(url, run_id) == "running"   # what the database holds
    status = evolve_json("status", str(run_dir), "--json")
    snapshot = json.loads(status.stdout)
    assert status.returncode == 1 and snapshot["status"] == "crashed", status.stdout
    assert snapshot.get("eta_s") is None
    with Archive.open(url, create=False) as archive:
        data = load_run(archive, run_id)
        assert data.run.status == "crashed" and data.in_flight() == {}

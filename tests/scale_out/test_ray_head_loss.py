"""Losing the Ray head mid-run stops `evolve run` cleanly, and `evolve resume` continues.

It starts its own one-node cluster (the session's cluster must survive the kill): about 30 s."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.support.ray_cluster import LocalRayCluster

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "engine" / "fixtures" / "target"


def programs(run_dir: Path) -> int:
    db = run_dir / "archive.sqlite"
    if not db.exists():
        return 0
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as conn:
        try:
            return conn.execute("SELECT COUNT(*) FROM programs").fetchone()[0]
        except sqlite3.OperationalError:
            return 0


def test_losing_the_head_stops_the_run_cleanly_and_resume_continues(tmp_path):
    pytest.importorskip("ray", reason="ray is not installed; `bash scripts/setup.sh --dev`")
    run_dir = tmp_path / "run"
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env["PYTHONPATH"] = str(ROOT)
    with LocalRayCluster(head_cpus=2) as cluster:
        proc = subprocess.Popen(
            [sys.executable, "-m", "evolve", "run", str(FIXTURE), "--programs", "400",
             "--run-dir", str(run_dir), "--no-live", "--seed", "3", "--ray-address",
             cluster.address, "--set", "concurrency.evaluations=2"],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 120
        while programs(run_dir) < 4 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert proc.poll() is None, proc.communicate()[0]
        for gcs in cluster.processes_titled(lambda title: "gcs_server" in title):
            try:
                gcs.kill()
            except psutil.NoSuchProcess:
                pass
        lost_at = time.monotonic()
        output = proc.communicate(timeout=120)[0]
        stopped_after = time.monotonic() - lost_at
    assert "Ray head" in output and "evolve resume" in output, output
    assert proc.returncode == 1, output   # the run did not complete (the one exit-code rule)
    assert stopped_after < 45  # before Ray's own 60 s limit would end the process
    with sqlite3.connect(run_dir / "archive.sqlite") as conn:
        assert conn.execute("SELECT status FROM runs").fetchone()[0] == "interrupted"
        stored = conn.execute("SELECT COUNT(*) FROM programs").fetchone()[0]
    assert 4 <= stored < 401
    resumed = subprocess.run(
        [sys.executable, "-m", "evolve", "resume", str(run_dir), "--programs", str(stored + 3),
         "--executor", "local", "--no-live"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    with sqlite3.connect(run_dir / "archive.sqlite") as conn:
        assert conn.execute("SELECT status FROM runs").fetchone()[0] == "completed"
        assert conn.execute("SELECT COUNT(*) FROM programs").fetchone()[0] >= stored + 3

"""The documented cluster set-up (docs/scale-out.md) with Ray's token authentication on: every
node and the driver share one token; `evolve doctor --executor ray` finds it on everywhere and a
problem evaluates there. (The session's test cluster runs without it, and doctor warns there:
tests/scale_out/test_ray_executor.py.)"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def test_doctor_finds_token_auth_on_and_a_problem_runs_with_it(tmp_path, monkeypatch):
    pytest.importorskip("ray")
    from tests.support.ray_cluster import LocalRayCluster

    token = secrets.token_hex(32)
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    monkeypatch.setenv("RAY_AUTH_TOKEN", token)
    cluster = LocalRayCluster(head_cpus=1)   # `ray start` with the environment above
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "300"}
    try:
        doctor = subprocess.run(
            [sys.executable, "-m", "evolve", "doctor", "--json", "--executor", "ray",
             "--ray-address", cluster.address, "--ollama-url", "127.0.0.1:9"],
            capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env)
        checks = {c["name"]: c for c in json.loads(doctor.stdout)}
        assert checks["ray"]["level"] == "ok", doctor.stdout + doctor.stderr
        assert checks["ray auth"]["level"] == "ok", checks["ray auth"]
        # Without the token the cluster refuses the driver.
        no_token = {k: v for k, v in env.items() if k != "RAY_AUTH_TOKEN"}
        no_token["HOME"] = str(tmp_path)  # no ~/.ray/auth_token either
        refused = subprocess.run(
            [sys.executable, "-m", "evolve", "doctor", "--json", "--executor", "ray",
             "--ray-address", cluster.address, "--ollama-url", "127.0.0.1:9"],
            capture_output=True, text=True, timeout=300, cwd=tmp_path, env=no_token)
        assert refused.stdout.strip(), (refused.returncode, refused.stderr[-3000:])
        refused_checks = {c["name"]: c for c in json.loads(refused.stdout)}
        assert refused_checks["ray"]["level"] == "fail", refused.stdout
        assert "RAY_AUTH_TOKEN" in refused_checks["ray"]["result"]
        check = subprocess.run(
            [sys.executable, "-m", "evolve", "problems", "check",
             str(REPO / "problems" / "circle_packing"), "--json", "--ray-address",
             cluster.address], capture_output=True, text=True, timeout=300, cwd=tmp_path,
            env=env)
        assert check.returncode == 0, check.stdout[-2000:] + check.stderr[-2000:]
    finally:
        cluster.stop()

"""A driver and a Ray node that run different code: the run stops at once, with one line that
names both versions, before anything is evaluated or stored.

A throw-away one-node cluster whose node imports a copy of the `evaluators` package with one
changed line (first on its PYTHONPATH): the same release number, other code."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from evaluators.project_version import project_version
from evaluators.ray_executor import NodeReport, VersionMismatch, check_versions

REPO = Path(__file__).resolve().parents[2]


def test_check_versions_names_both_versions_in_one_line():
    node = NodeReport("abcdef1234", "worker-1", 2, 0, "bwrap", "", {}, "0.1.0+aaaaaaaaaaaa")
    check_versions([node], "0.1.0+aaaaaaaaaaaa")
    with pytest.raises(VersionMismatch) as caught:
        check_versions([node], "0.1.0+bbbbbbbbbbbb")
    text = str(caught.value)
    assert "\n" not in text
    assert "0.1.0+aaaaaaaaaaaa" in text and "0.1.0+bbbbbbbbbbbb" in text and "worker-1" in text


def test_the_version_follows_the_code(tmp_path):
    copy = tmp_path / "code"
    shutil.copytree(REPO / "evaluators", copy / "evaluators",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO / "evolve" / "problem", copy / "evolve" / "problem",
                    ignore=shutil.ignore_patterns("__pycache__"))
    probe = ("import sys; sys.path.insert(0, sys.argv[1]); "
             "from evaluators.project_version import project_version; print(project_version())")
    same = subprocess.run([sys.executable, "-c", probe, str(copy)], capture_output=True,
                          text=True, check=True).stdout.strip()
    assert same == project_version()
    with (copy / "evaluators" / "sandbox.py").open("a") as handle:
        handle.write("\n# another commit\n")
    other = subprocess.run([sys.executable, "-c", probe, str(copy)], capture_output=True,
                           text=True, check=True).stdout.strip()
    assert other != project_version() and other.split("+")[0] == same.split("+")[0]


def test_a_node_with_other_code_stops_the_run_at_start(tmp_path):
    pytest.importorskip("ray")
    from tests.support.ray_cluster import LocalRayCluster

    copy = tmp_path / "other-checkout"
    for package in ("evaluators", "evolve", "db", "problems"):
        shutil.copytree(REPO / package, copy / package,
                        ignore=shutil.ignore_patterns("__pycache__"))
    with (copy / "evaluators" / "harness.py").open("a") as handle:
        handle.write("\n# a worker one commit ahead\n")
    saved = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = str(copy)   # the node's own environment: the other checkout
    try:
        cluster = LocalRayCluster(head_cpus=1)
    finally:
        if saved is None:
            os.environ.pop("PYTHONPATH")
        else:
            os.environ["PYTHONPATH"] = saved
    try:
        work = tmp_path / "driver"
        work.mkdir()
        done = subprocess.run(
            [sys.executable, "-m", "evolve", "problems", "check",
             str(REPO / "problems" / "circle_packing"), "--json", "--ray-address",
             cluster.address],
            capture_output=True, text=True, timeout=300, cwd=work,
            env={**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "300"})
    finally:
        cluster.stop()
    assert done.returncode == 2, done.stdout[-2000:] + done.stderr[-2000:]
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert project_version() in lines[0] and "this driver runs" in lines[0]
    assert "Traceback" not in done.stderr


def test_a_node_joining_later_checks_its_version_before_evaluating(ray_cluster):
    """The stage task of a node that the start-up probe never saw refuses to run for a
    driver of another version; the executor then stops the run (as two Ctrl-C would)."""
    import ray

    from evaluators.ray_executor import check_node_version

    @ray.remote(num_cpus=0)
    def on_a_node(driver: str) -> str:
        try:
            check_node_version(driver)
        except VersionMismatch as exc:
            return str(exc)
        return "ran"

    assert ray.get(on_a_node.remote(project_version()), timeout=60) == "ran"
    refused = ray.get(on_a_node.remote("0.1.0+000000000000"), timeout=60)
    assert "0.1.0+000000000000" in refused and project_version() in refused
    assert "\n" not in refused

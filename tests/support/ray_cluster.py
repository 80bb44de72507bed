"""A real two-node Ray cluster on this machine, started and torn down by the tests themselves.

`ray start --head` plus a second node joined to it, each with its own custom resource
(`head_node`, `node_b`) so a test can force where an evaluation runs. Both nodes keep their
state in one temporary folder; teardown ends exactly the processes that name that folder (never
`ray stop`, which would end every Ray on the machine).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ray_command() -> list[str]:
    script = Path(sys.executable).parent / "ray"
    return [str(script)] if script.exists() else [sys.executable, "-m", "ray.scripts.scripts"]


class LocalRayCluster:
    """Head + extra worker nodes on 127.0.0.1; `address` is what `ray.init` takes."""

    def __init__(self, head_cpus: int = 2, head_resources: dict[str, float] | None = None):
        # Short path: Ray's socket names must fit in 107 bytes.
        self.temp_dir = Path(tempfile.mkdtemp(prefix="rt-", dir="/tmp"))
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        # The nodes run from the installed environment only: the repository is NOT on their
        # path (neither PYTHONPATH nor the working directory), so a problem that imported
        # anything from the checkout instead of its shipped bundle would fail here.
        self.env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
        self.env["PYTHONPATH"] = os.pathsep.join(
            p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep)
            if p and Path(p).resolve() != REPO)
        self.env.pop("RAY_ADDRESS", None)
        self._start(["--head", f"--port={self.port}", "--node-ip-address=127.0.0.1",
                     "--include-dashboard=false",
                     f"--temp-dir={self.temp_dir}"], head_cpus, head_resources or {"head_node": 1})

    def _start(self, args: list[str], cpus: int, resources: dict[str, float]) -> None:
        cmd = [*ray_command(), "start", *args, f"--num-cpus={cpus}", "--num-gpus=0",
               f"--resources={json.dumps(resources)}", "--object-store-memory=100000000",
               "--disable-usage-stats"]
        done = subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=180,
                              cwd=self.temp_dir)
        if done.returncode != 0:
            self.stop()
            raise RuntimeError(f"`{' '.join(cmd)}` failed ({done.returncode}):\n"
                               f"{done.stdout[-2000:]}\n{done.stderr[-2000:]}")

    def add_node(self, cpus: int, resources: dict[str, float]) -> None:
        self._start([f"--address={self.address}", "--node-ip-address=127.0.0.1",
                     f"--temp-dir={self.temp_dir}"], cpus, resources)

    def processes(self) -> list[psutil.Process]:
        """This cluster's processes: those whose command line names its temp folder, and
        their children (the worker processes)."""
        marker = str(self.temp_dir)
        roots = []
        for proc in psutil.process_iter(["cmdline"]):
            try:
                if any(marker in part for part in proc.info["cmdline"] or ()):
                    roots.append(proc)
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        found = {p.pid: p for p in roots}
        for proc in roots:
            try:
                found.update({c.pid: c for c in proc.children(recursive=True)})
            except psutil.NoSuchProcess:
                continue
        return list(found.values())

    def processes_titled(self, match: Callable[[str], bool]) -> list[psutil.Process]:
        """This cluster's live processes whose command line (joined) satisfies `match`; one that
        exits (or is a zombie) while being looked at is left out."""
        found = []
        for proc in self.processes():
            try:
                title = " ".join(proc.cmdline())
            except (psutil.NoSuchProcess, psutil.AccessDenied):  # ZombieProcess included
                continue
            if match(title):
                found.append(proc)
        return found

    def workers_running(self, function_name: str) -> list[psutil.Process]:
        """Worker processes executing a task of `function_name` now (Ray titles them
        `ray::NAME`)."""
        return self.processes_titled(lambda title: title.startswith(f"ray::{function_name}"))

    def stop(self) -> None:
        # A throw-away cluster: a short grace period, then SIGKILL (its state is deleted anyway).
        procs = self.processes()
        for proc in procs:
            try:
                proc.send_signal(signal.SIGTERM)
            except psutil.NoSuchProcess:
                pass
        _, alive = psutil.wait_procs(procs, timeout=3)
        for proc in alive:
            try:
                proc.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(alive, timeout=5)
        shutil.rmtree(self.temp_dir, ignore_errors=True)

    def __enter__(self) -> LocalRayCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def wait_for_nodes(count: int, timeout_s: float = 60.0) -> None:
    import ray

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if sum(1 for n in ray.nodes() if n.get("Alive")) >= count:
            return
        time.sleep(0.2)
    raise RuntimeError(f"the Ray cluster did not reach {count} nodes in {timeout_s:g} s")

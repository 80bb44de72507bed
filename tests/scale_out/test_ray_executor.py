"""The Ray executor on a real two-node Ray cluster started by the tests (tests/conftest.py).

What must hold: a run on the cluster stores what a local run stores; a worker killed with
SIGKILL mid-evaluation is retried and nothing is lost; a worker that keeps dying becomes an
evaluator-error naming the node; a problem no node can run fails before the run starts.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from evaluators.result import FailureKind
from evolve.engine.in_flight import IN_FLIGHT_STATE
from evolve.problem.discovery import find_problem
from tests.engine.engine_support import engine_config, open_archive, prompt_hashed, run
from tests.engine.test_determinism import archive_contents
from tests.engine.test_fail_fast import problem_with_evaluator

SLEEP_PROBLEM = Path(__file__).resolve().parents[1] / "support" / "sleep_problem"
SLOW_EVALUATION = """
_plain_evaluate = evaluate


def evaluate(program_path, stage):
    import time
    time.sleep(0.25)
    return _plain_evaluate(program_path, stage)
"""
TASK_NAME = "_stage_task"


def sleep_code(seconds: float) -> str:
    text = (SLEEP_PROBLEM / "initial.py").read_text()
    return text.replace("SECONDS = 1.0", f"SECONDS = {seconds!r}")


def ray_executor(cluster, **kwargs):
    """A Ray executor on the test cluster; cold tasks unless asked (the fault tests kill the
    workers of `_stage_task`; the warm actors have their own tests below)."""
    from evaluators.ray_executor import RayExecutor

    kwargs.setdefault("warm_start", False)
    return RayExecutor(address=cluster.address, **kwargs)


class Killer(threading.Thread):
    """SIGKILLs the Ray worker running our stage task, `times` times (a new worker each time)."""

    def __init__(self, cluster, times: int):
        super().__init__(daemon=True)
        self.cluster, self.times, self.killed = cluster, times, []
        self.name_prefix = TASK_NAME
        self.stop = threading.Event()

    def run(self) -> None:
        while len(self.killed) < self.times and not self.stop.is_set():
            for proc in self.cluster.workers_running(self.name_prefix):
                if proc.pid not in self.killed:
                    time.sleep(0.3)  # let it get into the sandbox: die *mid*-evaluation
                    proc.send_signal(signal.SIGKILL)
                    self.killed.append(proc.pid)
                    break
            time.sleep(0.05)


class InFlightWatcher(threading.Thread):
    """Reads the run's published in-flight counts out of its archive, as the dashboard does
    (another connection, polling), for as long as the run goes on."""

    def __init__(self, path: Path):
        super().__init__(daemon=True)
        self.path, self.seen = path, []
        self.stop = threading.Event()

    def run(self) -> None:
        from db import Archive

        while not self.stop.wait(0.05):
            try:
                with Archive.open(self.path, create=False) as archive:
                    for run_row in archive.runs():
                        found = archive.get_state(run_row.id, IN_FLIGHT_STATE)
                        if found and found["nodes"]:
                            self.seen.append(found["nodes"])
            except Exception:  # the archive is still being created
                continue


def test_a_run_on_the_cluster_stores_what_a_local_run_stores(tmp_path, server_factory,
                                                             ray_cluster):
    # The replies are a function of the prompt (so both runs get the same ones), and vary with
    # the inspirations in it: 30 distinct programs are evaluated long before the run could stop
    # with "nothing new can be proposed" (budget.stall_after).
    server = server_factory(prompt_hashed())
    budget = 30
    # Each evaluation takes a quarter second, on both executors: warm Ray evaluations are as
    # quick as local ones, and the once-a-second publisher must get to see some in flight.
    problem = problem_with_evaluator(tmp_path, SLOW_EVALUATION)
    contents, snapshots, published = {}, {}, {}
    for name, executor in (("local", {"kind": "local"}),
                           ("ray", {"kind": "ray", "ray_address": ray_cluster.address})):
        run_dir = tmp_path / name
        config = engine_config(run_dir, server, problem=str(problem),
                               budget={"max_programs": budget},
                               concurrency={"proposals": 3, "evaluations": 3},
                               executor=executor)
        snapshots[name] = []
        watcher = InFlightWatcher(run_dir / "archive.sqlite")
        watcher.start()
        try:
            outcome = run(config, run_dir, snapshots=snapshots[name])
        finally:
            watcher.stop.set()
            watcher.join()
        published[name] = watcher.seen
        assert outcome.status == "completed" and outcome.programs == budget
        contents[name] = archive_contents(run_dir)
        with open_archive(run_dir) as archive:  # cleared when the run stopped
            assert archive.get_state(outcome.run_id, IN_FLIGHT_STATE) == {"nodes": {}}
    local, on_ray = contents["local"], contents["ray"]
    statuses = [row["status"] for row in local["programs"].values()]
    assert statuses.count("evaluated") == budget + 1  # the initial program and the budget
    assert len({row["code_hash"] for row in local["programs"].values()
                if row["status"] == "evaluated"}) == budget + 1  # 30 distinct programs
    for key in local["programs"]:
        assert on_ray["programs"][key] == local["programs"][key], key
    assert on_ray == local
    # The live view's per-node counts: none locally; on Ray, real nodes, never above the limit.
    assert all(not snap.placement for snap in snapshots["local"])
    placements = [snap.placement for snap in snapshots["ray"] if snap.placement]
    assert placements, "no report ever saw an evaluation in flight"
    labels = {label for placement in placements for label in placement}
    assert all(label.split("/")[1] in {n["NodeID"][:6] for n in __import__("ray").nodes()}
               for label in labels)
    assert max(sum(p.values()) for p in placements) <= 3
    # What the dashboard reads: the same per-node labels, published in the archive.
    assert published["ray"], "the run never published an evaluation in flight"
    assert {label.split("/")[1] for nodes in published["ray"] for label in nodes} <= \
        {n["NodeID"][:6] for n in __import__("ray").nodes()}
    assert max(sum(nodes.values()) for nodes in published["ray"]) <= 3
    # A local run of 30 quick programs may end before the once-a-second publisher sees one in
    # flight; whatever it did publish is this machine (tests/dashboard/test_in_flight.py shows
    # a slow local run's counts).
    assert {label for nodes in published["local"] for label in nodes} <= {socket.gethostname()}


def test_the_problem_folder_travels_once_and_each_node_records_its_isolation(ray_cluster):
    from evaluators.problem_bundle import unpacked_dir

    executor = ray_executor(ray_cluster, max_parallel=4)
    problem = find_problem(str(SLEEP_PROBLEM))

    async def evaluate_all():
        return await asyncio.gather(*[executor.evaluate(problem, sleep_code(0.01 * i))
                                      for i in range(6)])

    results = asyncio.run(evaluate_all())
    assert [r.score for r in results] == [0.01 * i for i in range(6)]
    assert len(executor._bundles) == 1  # one object per problem, not one per evaluation
    bundle, _ = executor._bundles[str(problem.root)]
    assert (unpacked_dir(bundle.digest) / bundle.problem_path / "evaluate.py").is_file()
    levels = {n.isolation for n in executor.nodes}
    assert {s.isolation for r in results for s in r.stages} <= levels
    assert len(executor.nodes) == 2 and all(n.isolation for n in executor.nodes)


def test_a_worker_killed_mid_evaluation_is_retried_and_nothing_is_lost(ray_cluster):
    executor = ray_executor(ray_cluster, max_parallel=2, resources={"node_b": 1})
    problem = find_problem(str(SLEEP_PROBLEM))
    killer = Killer(ray_cluster, times=1)

    async def evaluate_all():
        killer.start()
        return await asyncio.gather(*[executor.evaluate(problem, sleep_code(1.0 + 0.1 * i))
                                      for i in range(3)])

    try:
        results = asyncio.run(evaluate_all())
    finally:
        killer.stop.set()
    assert len(killer.killed) == 1
    assert [r.score for r in results] == [1.0, 1.1, 1.2]
    assert all(r.valid for r in results)
    assert executor.retried == 1


def test_a_worker_that_keeps_dying_is_an_evaluator_error_naming_the_node(ray_cluster):
    import ray

    node_b = next(n["NodeID"] for n in ray.nodes()
                  if n.get("Alive") and "node_b" in (n.get("Resources") or {}))
    executor = ray_executor(ray_cluster, max_parallel=1, resources={"node_b": 1}, retries=1)
    problem = find_problem(str(SLEEP_PROBLEM))
    killer = Killer(ray_cluster, times=2)
    killer.start()
    try:
        result = asyncio.run(executor.evaluate(problem, sleep_code(3.0)))
    finally:
        killer.stop.set()
    assert len(killer.killed) == 2
    assert result.failure == FailureKind.EVALUATOR_ERROR
    assert "died 2 times" in result.reason and node_b in result.reason
    assert "WorkerCrashedError" in result.reason


def test_a_gpu_problem_on_a_cluster_without_gpus_fails_at_start(tmp_path, ray_cluster):
    from evolve.cli import app

    problem_dir = tmp_path / "gpu_sleep"
    shutil.copytree(SLEEP_PROBLEM, problem_dir)
    toml = problem_dir / "problem.toml"
    toml.write_text(toml.read_text().replace("cpu_seconds = 10", 'cpu_seconds = 10\ngpu = "required"'))
    started = time.monotonic()
    result = CliRunner().invoke(app, ["run", str(problem_dir), "--executor", "ray",
                                      "--ray-address", ray_cluster.address,
                                      "--run-dir", str(tmp_path / "run"), "--no-live",
                                      "--programs", "3"])
    assert result.exit_code == 2, result.output
    assert "no node of the Ray cluster can run" in result.output
    assert "1 GPU" in result.output and "0 GPU" in result.output
    assert time.monotonic() - started < 30
    assert not (tmp_path / "run" / "run.json").exists()  # nothing was started


def test_back_pressure_keeps_at_most_max_parallel_tasks_in_flight(ray_cluster):
    executor = ray_executor(ray_cluster, max_parallel=2)
    problem = find_problem(str(SLEEP_PROBLEM))
    peak = 0

    async def watch(done: asyncio.Event) -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, sum(executor.in_flight.values()))
            await asyncio.sleep(0.02)

    async def evaluate_all():
        done = asyncio.Event()
        watcher = asyncio.create_task(watch(done))
        results = await asyncio.gather(*[executor.evaluate(problem, sleep_code(0.4))
                                         for _ in range(6)])
        done.set()
        await watcher
        return results

    results = asyncio.run(evaluate_all())
    assert all(r.valid for r in results)
    assert peak == 2
    assert executor.max_parallel == 2


@pytest.mark.parametrize("kind", ["ray", "auto"])
def test_make_executor_builds_a_ray_executor_from_the_config(kind, ray_cluster, monkeypatch):
    from evaluators.executors import make_executor
    from evaluators.ray_executor import RayExecutor
    from evolve.config import load_config

    monkeypatch.setenv("RAY_ADDRESS", ray_cluster.address)
    config = load_config(None, [f'executor.kind="{kind}"'])
    executor = make_executor(config.sandbox, config.concurrency, config.executor)
    assert isinstance(executor, RayExecutor)
    assert executor.max_parallel == 4  # the cluster's CPUs: 2 per node


def test_doctor_reports_every_node_of_the_cluster(ray_cluster):
    import json

    import ray

    from evolve.cli import app

    result = CliRunner().invoke(app, ["doctor", "--json", "--executor", "ray",
                                      "--ray-address", ray_cluster.address,
                                      "--ollama-url", "127.0.0.1:9"])
    checks = {c["name"]: c for c in json.loads(result.output)}
    assert checks["ray"]["level"] == "ok"
    assert "2 node(s), 4 CPU, 0 GPU" in checks["ray"]["result"]
    nodes = [c for name, c in checks.items() if name.startswith("node ")]
    assert len(nodes) == 2
    assert any("node_b=4" in c["result"] for c in nodes)
    assert all("sandbox " in c["result"] for c in nodes)
    # The test cluster runs without token authentication: doctor says so, and how to fix it.
    assert checks["ray auth"]["level"] == "warn"
    assert "RAY_AUTH_MODE=token" in checks["ray auth"]["hint"]
    assert not [name for name in checks if name.startswith("version ")]  # same code everywhere
    assert ray.is_initialized()  # doctor left the session's connection alone


def test_a_cancelled_evaluation_stops_its_task_on_the_cluster(ray_cluster):
    executor = ray_executor(ray_cluster, max_parallel=1, resources={"node_b": 1})
    problem = find_problem(str(SLEEP_PROBLEM))

    async def cancel_midway():
        task = asyncio.ensure_future(executor.evaluate(problem, sleep_code(20.0)))
        deadline = time.monotonic() + 30
        while not executor.in_flight and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert executor.in_flight, "the task never started"
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(cancel_midway())
    deadline = time.monotonic() + 15
    while ray_cluster.workers_running(TASK_NAME) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not ray_cluster.workers_running(TASK_NAME)
    assert not executor.in_flight


def test_a_gpu_optional_problem_asks_ray_for_a_gpu_only_as_sandbox_gpu_says(tmp_path,
                                                                           ray_cluster):
    from dataclasses import replace

    problem_dir = tmp_path / "optional_gpu_sleep"
    shutil.copytree(SLEEP_PROBLEM, problem_dir)
    toml = problem_dir / "problem.toml"
    toml.write_text(toml.read_text().replace("cpu_seconds = 10",
                                             'cpu_seconds = 10\ngpu = "optional"'))
    problem = find_problem(str(problem_dir))
    wanted = {}
    for policy in ("never", "auto", "always"):
        executor = ray_executor(ray_cluster, gpu_policy=policy)
        # The test cluster as a mixed one: its first node with a GPU, the other without.
        executor.nodes = [replace(executor.nodes[0], gpus=1.0), *executor.nodes[1:]]
        wanted[policy] = executor.request(problem)["num_gpus"]
        if policy == "auto":
            assert "only 1 of 2 node(s)" in executor.gpu_plan(problem).line(problem.name)
        asyncio.run(executor.aclose())
    assert wanted == {"never": 0, "auto": 0, "always": 1}


def test_each_node_removes_sandbox_folders_left_by_dead_processes_when_it_joins(ray_cluster):
    import subprocess
    import sys
    import tempfile

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    tmp = Path(tempfile.gettempdir())
    stale = [tmp / f"evolve-sbx-{dead.pid}-node{i}" for i in range(2)]
    live = tmp / f"evolve-sbx-{os.getpid()}-still-mine"
    for folder in [*stale, live]:
        (folder / "work").mkdir(parents=True)
    try:
        executor = ray_executor(ray_cluster)
        asyncio.run(executor.aclose())
        assert not any(folder.exists() for folder in stale)
        assert live.is_dir()  # its owner still runs
        # Removed by the nodes themselves (the driver sweeps nothing here), counted per node.
        assert sum(n.swept for n in executor.nodes) >= len(stale)
    finally:
        shutil.rmtree(live, ignore_errors=True)


def test_warm_actors_evaluate_on_every_node_and_stay_warm(ray_cluster):
    import ray

    executor = ray_executor(ray_cluster, max_parallel=4, warm_start=True)
    problem = find_problem(str(SLEEP_PROBLEM))

    def pids(actors):
        return {key: ray.get(a.place.remote(), timeout=60)["pid"] for key, a in actors.items()}

    async def two_waves():
        try:
            first = await asyncio.gather(*[executor.evaluate(problem, sleep_code(0.3))
                                           for _ in range(8)])
            actors = dict(executor._actors)
            before = await asyncio.to_thread(pids, actors)
            again = await asyncio.gather(*[executor.evaluate(problem, sleep_code(0.2))
                                           for _ in range(4)])
            return first, again, actors, before, dict(executor._actors), \
                await asyncio.to_thread(pids, actors)
        finally:
            await executor.aclose()

    first, again, actors, before, actors_after, after = asyncio.run(two_waves())
    assert all(r.valid and r.score == 0.3 for r in first), [r.reason for r in first]
    assert all(r.valid and r.score == 0.2 for r in again), [r.reason for r in again]
    assert len(actors) == 2  # one per node: the least loaded node gets each evaluation
    assert actors_after == actors and after == before  # the same long-lived actors served
    assert {s.isolation for r in first for s in r.stages} <= {n.isolation
                                                              for n in executor.nodes}


def test_a_warm_actor_killed_mid_evaluation_is_replaced_and_nothing_is_lost(ray_cluster):
    executor = ray_executor(ray_cluster, max_parallel=1, warm_start=True,
                            resources={"node_b": 1})
    problem = find_problem(str(SLEEP_PROBLEM))
    killer = Killer(ray_cluster, times=1)
    killer.name_prefix = "WarmEvaluator"

    async def warm_then_killed():
        try:
            warm = await executor.evaluate(problem, sleep_code(0.1))  # the actor is up
            killer.start()
            return warm, await executor.evaluate(problem, sleep_code(1.5))
        finally:
            killer.stop.set()
            await executor.aclose()

    warm, result = asyncio.run(warm_then_killed())
    assert warm.valid
    assert killer.killed, "no warm actor was found to kill"
    assert result.valid and result.score == 1.5, result.reason
    assert executor.retried == 1


@pytest.mark.parametrize("name,stage", [("txn", "full"), ("spot_single", "quick")])
def test_a_problem_importing_its_own_package_evaluates_on_a_warm_actor(name, stage,
                                                                       ray_cluster):
    """txn imports `problems.txn.model`, spot_single the shared `problems._spot_sim`: the
    warm judge and candidate interpreters on the node import them from the shipped bundle
    (the workers have no checkout on their path), and every stage is forked warm."""
    executor = ray_executor(ray_cluster, max_parallel=2, warm_start=True,
                            resources={"node_b": 1})
    problem = find_problem(str(Path(__file__).resolve().parents[2] / "problems" / name))

    async def twice():
        try:
            found = await asyncio.gather(*[executor.evaluate(problem, problem.initial_code(),
                                                             stages=[stage]) for _ in range(2)])
            return found, dict(executor._actors)
        finally:
            await executor.aclose()

    results, actors = asyncio.run(twice())
    assert all(r.valid for r in results), [r.reason[:500] for r in results]
    assert results[0].score == results[1].score
    assert executor.stages_run == {"warm": 2}, executor.stages_run
    assert len(actors) == 1  # node_b's actor for this problem's bundle served both


def test_a_warm_actor_imports_a_problems_package_from_its_bundle_alone(tmp_path, ray_cluster):
    """A problem inside a package no node has (`shipped_pkg`), whose evaluator imports a
    helper of that package by name: the warm interpreter on the node imports it from the
    unpacked bundle (the helper says where it was loaded from)."""
    from evaluators.problem_bundle import bundle_problem, unpacked_dir

    package = tmp_path / "shipped_pkg"
    shutil.copytree(SLEEP_PROBLEM, package / "sleeper")
    (package / "__init__.py").write_text("")
    (package / "helper.py").write_text("def origin() -> str:\n    return __file__\n")
    evaluator = package / "sleeper" / "evaluate.py"
    evaluator.write_text(evaluator.read_text() + (
        "\n\n_sleep_evaluate = evaluate\n\n\n"
        "def evaluate(program_path, stage):\n"
        "    from shipped_pkg.helper import origin\n\n"
        "    return {**_sleep_evaluate(program_path, stage), 'feedback': origin()}\n"))
    executor = ray_executor(ray_cluster, max_parallel=1, warm_start=True)
    problem = find_problem(str(package / "sleeper"))

    async def once():
        try:
            return await executor.evaluate(problem, sleep_code(0.05))
        finally:
            await executor.aclose()

    result = asyncio.run(once())
    assert result.valid, result.reason
    bundle = bundle_problem(problem.root)
    assert bundle.problem_path == "shipped_pkg/sleeper"
    assert result.stages[0].feedback == str(unpacked_dir(bundle.digest) / "shipped_pkg"
                                            / "helper.py")
    assert executor.stages_run == {"warm": 1}, executor.stages_run

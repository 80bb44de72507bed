"""Evaluations as Ray tasks on a cluster: the same sandboxed harness, run on a worker node.

Each stage of the cascade is one Ray task. The task runs `run_sandboxed` on whichever node Ray
picks, with the isolation that node offers (detected there, recorded on every stage result). The
problem folder travels once per run: its content-addressed bundle is put into the object store
when the executor first sees the problem, and a node unpacks it once (`problem_bundle.py`).

A stage's needs become Ray resource requests (1 CPU, the problem's `memory_mb` as `memory`,
`gpus_per_job` as `num_gpus`, plus `executor.resources`), so a GPU stage lands on a GPU node and
CUDA_VISIBLE_DEVICES is the one Ray assigned. A request no node can ever satisfy is refused before
the run starts (`preflight`), where Ray itself would wait forever.

Faults: the task is a generator that first reports where it runs (node, pid), then the outcome.
When the worker process or its node dies, the stage is tried again (`retries`, default once);
after that it is recorded as an `evaluator-error` naming the node and Ray's reason. Back-pressure:
at most `max_parallel` tasks in flight (default: the cluster's CPU count).

Losing the head: Ray ends a driver whose GCS stays unreachable for
`gcs_rpc_server_reconnect_timeout_s` (60 s). Before that, a watchdog thread that finds the GCS
port closed several times in a row asks the run to stop at once, the way two Ctrl-C do (SIGTERM
twice to this process, whose handlers `evolve run` installs): in-flight evaluations are dropped,
the archive records the stop, and `evolve resume` continues once the cluster is back.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import ray
import ray.exceptions as ray_errors
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from evaluators import gpu_policy as gpu_policy_mod
from evaluators import isolation as isolation_mod
from evaluators.cascade import run_cascade, select_stages, stage_result
from evaluators.gpu_policy import GpuPlan
from evaluators.problem_bundle import (
    ProblemBundle,
    bundle_problem,
)
from evaluators.project_version import project_version
from evaluators.ray_node import (
    VersionMismatch,
    bundle_here,
    check_node_version,
    node_place,
    run_stage_here,
    sweep_this_node,
    token_auth_enabled,
)
from evaluators.ray_warm import NodeSlots, WarmEvaluator
from evaluators.result import EvalResult, FailureKind, StageResult
from evaluators.sandbox import SandboxLimits, SandboxOutcome
from evaluators.self_signal import send_stop_signals
from evaluators.stage_limits import stage_limits
from evolve.problem.spec import ProblemSpec, StageSpec

# The worker or its node went away: worth another try on another worker.
RETRYABLE = (ray_errors.WorkerCrashedError, ray_errors.NodeDiedError,
             ray_errors.LocalRayletDiedError, ray_errors.ObjectLostError,
             ray_errors.OwnerDiedError, ray_errors.OutOfMemoryError)
MIB = 1024 * 1024


@dataclass(frozen=True)
class NodeReport:
    """What one node offers, for `evolve doctor --executor ray` and the run's record."""

    node_id: str
    host: str
    cpus: float
    gpus: float
    isolation: str
    description: str
    custom: dict[str, float]
    version: str = ""   # the project version its workers run (`project_version`)
    token_auth: bool = False  # Ray's token authentication is on for this node
    swept: int = 0      # stale sandbox folders the node removed when the run found it


@ray.remote(max_retries=0)
def _stage_task(bundle: list[Any], digest: str, problem_path: str, evaluator_file: str,
                code: str, stage: str, limits: SandboxLimits, isolation: str,
                extra_env: dict[str, str], gpu: bool, hidden: tuple[str, ...] = (),
                driver_version: str = ""):
    yield node_place()
    # A node that joined after the run started was not probed: it checks here, before running.
    check_node_version(driver_version)
    yield run_stage_here(bundle, digest, problem_path, evaluator_file=evaluator_file, code=code,
                         stage=stage, limits=limits, isolation=isolation, extra_env=extra_env,
                         gpu=gpu, hidden=hidden)


@ray.remote(num_cpus=0, max_retries=0)
def _probe_node(isolation: str) -> tuple[str, str, str, str, str, bool, int]:
    swept = sweep_this_node(again=True)
    level, description = isolation_mod.detect_isolation(isolation)
    where = node_place()
    return (where["node_id"], where["host"], level, description, project_version(),
            token_auth_enabled(), swept)


@ray.remote(num_cpus=0, max_retries=0)
def _check_bundle(bundle: list[Any], digest: str, problem_path: str) -> str:
    """Unpack the problem's bundle on this node (its hash checked) and say what it holds."""
    root = bundle_here(bundle, digest)
    if not (root / problem_path / "problem.toml").is_file():
        raise ValueError(f"the unpacked problem bundle {digest[:12]} has no {problem_path}")
    return digest


def check_versions(nodes: Sequence[NodeReport], driver: str) -> None:
    """Raise `VersionMismatch`, one line naming both versions, unless every node runs
    `driver`'s version."""
    for node in nodes:
        if node.version != driver:
            raise VersionMismatch(
                f"node {node.host} ({node.node_id[:8]}) runs adrs-evolve {node.version or '?'} "
                f"but this driver runs {driver}; install the same version (same commit) on "
                f"every node and restart its Ray worker (`ray stop; ray start ...`)")


def connect(address: str | None) -> bool:
    """Connect this process to the cluster (None: RAY_ADDRESS, else a Ray on this machine).
    True when this call connected (so the caller disconnects at the end)."""
    if ray.is_initialized():
        return False
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address and ":" in address and "://" not in address and not _port_open(address, 5.0):
        # ray.init would retry for minutes before saying so.
        raise ConnectionError(f"cannot reach the Ray cluster at {address} (nothing listens "
                              f"there); start it with `ray start --head` or fix "
                              f"executor.ray_address / --ray-address")
    try:
        ray.init(address=address, log_to_driver=False, configure_logging=False,
                 include_dashboard=False if address is None else None)
    except ray_errors.AuthenticationError as exc:
        raise ConnectionError(f"the Ray cluster at {address or 'RAY_ADDRESS'} refused this "
                              f"driver's token (token authentication is on there): run with "
                              f"RAY_AUTH_MODE=token and the cluster's token in RAY_AUTH_TOKEN "
                              f"or ~/.ray/auth_token") from exc
    except (ConnectionError, RuntimeError) as exc:
        raise ConnectionError(f"cannot reach the Ray cluster at {address or 'RAY_ADDRESS'}: "
                              f"{exc}; start it with `ray start --head` or fix "
                              f"executor.ray_address / --ray-address") from exc
    return True


def cluster_nodes(isolation: str = "auto", timeout_s: float = 60.0) -> list[NodeReport]:
    """Every alive node with its resources and the sandbox isolation it offers."""
    alive = [n for n in ray.nodes() if n.get("Alive")]
    probes = [_probe_node.options(scheduling_strategy=NodeAffinitySchedulingStrategy(
        n["NodeID"], soft=False)).remote(isolation) for n in alive]
    found = {node_id: rest for node_id, *rest in ray.get(probes, timeout=timeout_s)}
    reports = []
    for node in alive:
        resources = dict(node.get("Resources") or {})
        host, level, text, version, auth, swept = found.get(
            node["NodeID"], (node.get("NodeManagerHostname", "?"), "?", "?", "", False, 0))
        custom = {k: v for k, v in resources.items()
                  if k not in ("CPU", "GPU", "memory", "object_store_memory")
                  and not k.startswith("node:")}
        reports.append(NodeReport(node["NodeID"], host, float(resources.get("CPU", 0)),
                                  float(resources.get("GPU", 0)), level, text, custom, version,
                                  auth, swept))
    return reports


def _port_open(address: str, timeout_s: float = 1.0) -> bool:
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout_s):
            return True
    except (OSError, ValueError):
        return False


def stop_this_run(reason: str) -> None:
    """Ask the run in this process to stop at once, as two Ctrl-C would; only while something
    handles SIGTERM (`evolve run` does), so a bare script or a run that already ended is
    never killed by it (`evaluators.self_signal`)."""
    send_stop_signals(times=2, pause_s=0.2)


class HeadWatchdog(threading.Thread):
    """Checks the GCS port every `interval_s`; after `misses` closed checks in a row, calls
    `on_lost` once. Runs in a daemon thread: a blocked event loop cannot hide the loss."""

    def __init__(self, gcs_address: str, on_lost: Callable[[str], None],
                 interval_s: float = 2.0, misses: int = 3):
        super().__init__(daemon=True, name="ray-head-watchdog")
        self.gcs_address, self.on_lost = gcs_address, on_lost
        self.interval_s, self.misses = interval_s, misses
        self.lost: str | None = None
        self._stop = threading.Event()

    def run(self) -> None:
        missed = 0
        while not self._stop.wait(self.interval_s):
            if not ray.is_initialized():
                return  # this process disconnected on purpose: nothing to watch
            missed = 0 if _port_open(self.gcs_address) else missed + 1
            if missed >= self.misses:
                self.lost = (f"the Ray head (GCS at {self.gcs_address}) is unreachable; the run "
                             f"stopped and `evolve resume RUN_DIR` continues it once the cluster "
                             f"is back")
                self.on_lost(self.lost)
                return

    def stop(self) -> None:
        self._stop.set()


class RayExecutor:
    """The `Executor` protocol on a Ray cluster."""

    def __init__(self, address: str | None = None, max_parallel: int | None = None,
                 isolation: str = "auto", memory_mb: int | None = None,
                 cpu_seconds: int | None = None, timeout_factor: float = 1.0,
                 resources: dict[str, float] | None = None, retries: int = 1,
                 gpu_policy: str = "auto", warm_start: bool = True):
        self._owns_connection = connect(address)
        self.requested_isolation = isolation
        self.nodes = cluster_nodes(isolation)
        # Every node must evaluate with the driver's code, checked before anything runs.
        self.version = project_version()
        try:
            check_versions(self.nodes, self.version)
        except VersionMismatch:
            if self._owns_connection:
                ray.shutdown()
            raise
        levels = sorted({n.isolation for n in self.nodes})
        # The run's record: one level when every node agrees, else each one (per-evaluation
        # levels are on every stage result anyway).
        self.isolation = levels[0] if len(levels) == 1 else "ray:" + "+".join(levels)
        self.isolation_description = "; ".join(f"{n.host}: {n.description}" for n in self.nodes)
        cpus = int(sum(n.cpus for n in self.nodes)) or 1
        self.max_parallel = max_parallel or cpus
        self.memory_mb = memory_mb
        self.cpu_seconds = cpu_seconds
        self.timeout_factor = timeout_factor
        self.resources = dict(resources or {})
        self.retries = retries
        self.gpu_policy = gpu_policy
        self.version_error: str | None = None   # a node with other code joined mid-run
        # Warm evaluation (evaluators/ray_warm.py): one actor per (bundle digest, node).
        self.warm_start = warm_start
        self._actors: dict[tuple[str, str], Any] = {}
        self._node_slots = NodeSlots({n.node_id: int(n.cpus) for n in self.nodes})
        self.retried = 0                        # stage attempts repeated after a worker died
        # Stages evaluated, by path: "warm" (forked from a node's warm interpreter) or "cold"
        # (a fresh interpreter: a GPU stage, warm start off, or no warm interpreter there).
        self.stages_run: Counter[str] = Counter()
        self.in_flight: Counter[str] = Counter()  # running tasks per node id
        self._bundles: dict[str, tuple[ProblemBundle, Any]] = {}
        self._slots: asyncio.Semaphore | None = None
        self.watchdog = HeadWatchdog(ray.get_runtime_context().gcs_address, self._stop_run)
        self.watchdog.start()

    def _stop_run(self, reason: str) -> None:
        """The cluster cannot go on with this run (its head is gone, a node runs other code)."""
        print(f"error: {reason}", file=sys.stderr, flush=True)
        stop_this_run(reason)

    def _version_lost(self, reason: str) -> None:
        if self.version_error is None:
            self.version_error = reason
            self._stop_run(reason)

    def _our_code_failed(self, stage: str, what: str, where: dict[str, Any],
                         exc: BaseException) -> StageResult:
        """A Ray task or actor of ours failed on its node: a node with other code that joined
        mid-run stops the run at once, as at start; any other failure of our own code there (a
        missing package, a corrupted bundle) is not the candidate's fault and not retried."""
        cause = getattr(exc, "cause", None)
        if isinstance(cause, VersionMismatch):
            self._version_lost(str(cause))
            return StageResult(stage=stage, failure=FailureKind.EVALUATOR_ERROR,
                               isolation=self.isolation, reason=str(cause))
        return StageResult(stage=stage, failure=FailureKind.EVALUATOR_ERROR,
                           isolation=self.isolation,
                           reason=f"the Ray {what} failed: {_failure_text(where, exc)}")

    def placement(self) -> dict[str, int]:
        """Tasks in flight per node, labelled `host/node-id-prefix`, for the live view."""
        hosts = {n.node_id: n.host for n in self.nodes}
        return {f"{hosts.get(node, '?')}/{node[:6]}": count
                for node, count in sorted(self.in_flight.items()) if count > 0}

    # -- what a stage asks Ray for ------------------------------------------------------

    def gpu_plan(self, problem: ProblemSpec) -> GpuPlan:
        """Whether this run's evaluations of `problem` ask Ray for a GPU (the same for all:
        a GPU-optional problem on a mixed cluster does not queue behind the GPU nodes unless
        sandbox.gpu=always)."""
        return gpu_policy_mod.plan(problem, self.gpu_policy, [n.gpus for n in self.nodes])

    def _gpus_wanted(self, problem: ProblemSpec) -> int:
        found = self.gpu_plan(problem)
        return 0 if found.error else found.gpus

    def request(self, problem: ProblemSpec) -> dict[str, Any]:
        """The Ray resource request of one evaluation of `problem`."""
        memory_mb = self.memory_mb or problem.resources.memory_mb
        return {"num_cpus": 1, "num_gpus": self._gpus_wanted(problem),
                "memory": memory_mb * MIB, "resources": dict(self.resources)}

    def preflight(self, problem: ProblemSpec) -> None:
        """Refuse a problem no node can ever run, before the run starts (Ray would otherwise
        keep the task pending forever)."""
        gpu_plan = self.gpu_plan(problem)
        if gpu_plan.error:
            raise ValueError(f"no node of the Ray cluster can run an evaluation of "
                             f"'{problem.name}': {gpu_plan.error} (cluster: "
                             + "; ".join(f"{n.host}: {n.gpus:g} GPU" for n in self.nodes) + ")")
        request = self.request(problem)
        if any(self._fits(node, request) for node in self.nodes):
            self._check_bundle_everywhere(problem)
            return
        raise ValueError(
            f"no node of the Ray cluster can run an evaluation of '{problem.name}': it asks for "
            f"{_describe(request)}; the cluster has "
            + "; ".join(f"{n.host} ({n.node_id[:8]}): {n.cpus:g} CPU, {n.gpus:g} GPU"
                        + "".join(f", {k}={v:g}" for k, v in n.custom.items())
                        for n in self.nodes)
            + " (add a node with these resources, or lower the problem's needs)")

    @staticmethod
    def _fits(node: NodeReport, request: dict[str, Any]) -> bool:
        if node.cpus < request["num_cpus"] or node.gpus < request["num_gpus"]:
            return False
        return all(node.custom.get(name, 0) >= amount
                   for name, amount in request["resources"].items())

    def _check_bundle_everywhere(self, problem: ProblemSpec) -> None:
        """Every node unpacks the problem's bundle now and checks its hash: a bundle that
        arrives altered stops the run before its first evaluation, not in the middle."""
        bundle, ref = self._bundle(problem)
        checks = [_check_bundle.options(scheduling_strategy=NodeAffinitySchedulingStrategy(
            node.node_id, soft=False)).remote([ref], bundle.digest, bundle.problem_path)
            for node in self.nodes]
        try:
            ray.get(checks, timeout=120)
        except (ray_errors.RayError, TimeoutError) as exc:
            first = str(exc).strip().splitlines()
            raise ValueError(f"the bundle of problem '{problem.name}' ({bundle.digest[:12]}) "
                             f"could not be unpacked on every node: "
                             f"{first[-1][:300] if first else type(exc).__name__}") from exc

    def _bundle(self, problem: ProblemSpec) -> tuple[ProblemBundle, Any]:
        key = str(problem.root)
        if key not in self._bundles:
            bundle = bundle_problem(problem.root)
            self._bundles[key] = (bundle, ray.put(bundle))
        return self._bundles[key]

    # -- the protocol ---------------------------------------------------------------------

    async def evaluate(self, problem: ProblemSpec, code: str, *,
                       stages: Sequence[str] | None = None) -> EvalResult:
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.max_parallel)
        selected = select_stages(problem, stages)
        run_stage = lambda stage: self._run_stage(problem, code, stage)  # noqa: E731
        # The problem's declared final score (problem.toml [score]) where this version has one:
        # the cascade must end exactly as the local executor's does.
        declared = getattr(problem.config, "score", None)
        if declared is not None:
            return await run_cascade(selected, run_stage, declared)
        return await run_cascade(selected, run_stage)

    async def _run_stage(self, problem: ProblemSpec, code: str, stage: StageSpec) -> StageResult:
        assert self._slots is not None
        request = self.request(problem)
        gpu_plan = self.gpu_plan(problem)
        if gpu_plan.error:
            return StageResult(stage=stage.name, failure=FailureKind.EVALUATOR_ERROR,
                               isolation=self.isolation, reason=gpu_plan.error)
        gpu = bool(request["num_gpus"])
        limits = stage_limits(problem, stage, gpu=gpu, memory_mb=self.memory_mb,
                              cpu_seconds=self.cpu_seconds, timeout_factor=self.timeout_factor)
        extra_env = {"EVOLVE_ALLOW_INTROSPECTION": "1"} \
            if problem.resources.allow_introspection else {}
        bundle, ref = self._bundle(problem)
        if self.warm_start and not gpu:
            return await self._run_warm(problem, code, stage, request, bundle, ref, limits,
                                        extra_env)
        task = _stage_task.options(**request)
        failures: list[str] = []
        async with self._slots:
            for _attempt in range(self.retries + 1):
                generator = task.remote([ref], bundle.digest, bundle.problem_path,
                                        problem.config.problem.evaluator,
                                        code, stage.name, limits, self.requested_isolation,
                                        extra_env, gpu, tuple(problem.config.problem.hidden),
                                        driver_version=self.version)
                where: dict[str, Any] = {}
                try:
                    where = await (await generator.__anext__())
                    self.in_flight[where["node_id"]] += 1
                    try:
                        outcome: SandboxOutcome = await (await generator.__anext__())
                    finally:
                        self.in_flight[where["node_id"]] -= 1
                        if self.in_flight[where["node_id"]] <= 0:
                            del self.in_flight[where["node_id"]]
                    self.stages_run["warm" if outcome.warm else "cold"] += 1
                    return stage_result(stage, outcome, limits.timeout_s)
                except asyncio.CancelledError:
                    # The run stops at once: do not leave the task running on the cluster.
                    _cancel(generator)
                    raise
                except RETRYABLE as exc:
                    failures.append(_failure_text(where, exc))
                    self.retried += 1
                except ray_errors.RayError as exc:
                    return self._our_code_failed(stage.name, "task", where, exc)
        self.retried -= 1  # the last failure was not followed by a retry
        return StageResult(
            stage=stage.name, failure=FailureKind.EVALUATOR_ERROR, isolation=self.isolation,
            reason=f"the Ray worker died {len(failures)} times in stage '{stage.name}': "
                   + " | ".join(failures))

    def _actor(self, digest: str, node_id: str) -> Any:
        key = (digest, node_id)
        if key not in self._actors:
            node = next(n for n in self.nodes if n.node_id == node_id)
            self._actors[key] = WarmEvaluator.options(
                scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False),
                max_concurrency=max(int(node.cpus) * 2, 4)).remote(self.requested_isolation)
        return self._actors[key]

    async def _run_warm(self, problem: ProblemSpec, code: str, stage: StageSpec,
                        request: dict[str, Any], bundle: ProblemBundle, ref: Any,
                        limits: SandboxLimits, extra_env: dict[str, str]) -> StageResult:
        """One stage on a node's warm actor (evaluators/ray_warm.py), with the same retries
        and failure records as a cold task."""
        assert self._slots is not None
        allowed = [n.node_id for n in self.nodes if self._fits(n, request)]
        kwargs = dict(evaluator_file=problem.config.problem.evaluator, code=code,
                      stage=stage.name, limits=limits, isolation=self.requested_isolation,
                      extra_env=extra_env, gpu=False, hidden=tuple(problem.config.problem.hidden))
        failures: list[str] = []
        async with self._slots:
            for _attempt in range(self.retries + 1):
                node = await self._node_slots.take(allowed)
                self.in_flight[node] += 1
                host = next((n.host for n in self.nodes if n.node_id == node), "?")
                where = {"node_id": node, "host": host, "pid": "actor"}
                call = None
                try:
                    actor = self._actor(bundle.digest, node)
                    call = actor.run.remote([ref], bundle.digest, bundle.problem_path,
                                            self.version, kwargs)
                    outcome: SandboxOutcome = await call
                    self.stages_run["warm" if outcome.warm else "cold"] += 1
                    return stage_result(stage, outcome, limits.timeout_s)
                except asyncio.CancelledError:
                    if call is not None:
                        _cancel(call)
                    raise
                except (ray_errors.RayActorError, *RETRYABLE) as exc:
                    # The actor (its worker) or its node died: a fresh actor next time.
                    self._actors.pop((bundle.digest, node), None)
                    failures.append(_failure_text(where, exc))
                    self.retried += 1
                except ray_errors.RayError as exc:
                    return self._our_code_failed(stage.name, "actor", where, exc)
                finally:
                    self.in_flight[node] -= 1
                    if self.in_flight[node] <= 0:
                        del self.in_flight[node]
                    await self._node_slots.give(node)
        self.retried -= 1  # the last failure was not followed by a retry
        return StageResult(
            stage=stage.name, failure=FailureKind.EVALUATOR_ERROR, isolation=self.isolation,
            reason=f"the Ray worker died {len(failures)} times in stage '{stage.name}': "
                   + " | ".join(failures))

    async def aclose(self) -> None:
        self.watchdog.stop()
        self._bundles.clear()
        actors, self._actors = list(self._actors.values()), {}
        if actors and ray.is_initialized() and self.watchdog.lost is None:
            # Their warm interpreters end with them (WarmPool.close), then the actors.
            try:
                await asyncio.wait_for(asyncio.gather(*(a.close.remote() for a in actors),
                                                      return_exceptions=True), 30)
            except TimeoutError:
                pass
            for actor in actors:
                try:
                    ray.kill(actor)
                except Exception:  # noqa: BLE001 - already gone
                    pass
        # Without a head, a clean disconnect cannot happen: leave it to the process exit.
        if self._owns_connection and ray.is_initialized() and self.watchdog.lost is None:
            ray.shutdown()


def _cancel(generator: Any) -> None:
    try:
        ray.cancel(generator, force=True)
    except Exception:  # noqa: BLE001 - already finished, or the head is gone: nothing to stop
        pass


def _describe(request: dict[str, Any]) -> str:
    parts = [f"{request['num_cpus']} CPU", f"{request['num_gpus']} GPU",
             f"{request['memory'] // MIB} MiB memory"]
    parts += [f"{k}={v:g}" for k, v in request["resources"].items()]
    return ", ".join(parts)


def _failure_text(where: dict[str, Any], exc: BaseException) -> str:
    node = where.get("node_id")
    place = f"node {node} ({where.get('host')}, pid {where.get('pid')})" if node \
        else "before it started on a node"
    reason = str(exc).strip().splitlines()
    return f"{type(exc).__name__} on {place}: {reason[0][:300] if reason else ''}"

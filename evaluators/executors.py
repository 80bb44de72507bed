"""Executors run the cascade for one program; the local one runs sandboxes on this machine.

`Executor` is the protocol the controller codes against (`evaluators/ray_executor.py` is the
Ray implementation).
`LocalExecutor` runs up to M sandboxes at once (threads under asyncio, each waiting on its own
sandboxed child) and hands out GPU slots through `CUDA_VISIBLE_DEVICES`.
"""

from __future__ import annotations

import asyncio
import functools
import os
import shutil
import subprocess
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Protocol

from evaluators import isolation as isolation_mod
from evaluators import warm
from evaluators.cascade import run_cascade, select_stages, stage_result
from evaluators.result import EvalResult, FailureKind, StageResult
from evaluators.sandbox import SandboxLimits, run_sandboxed
from evaluators.warm_pool import WarmPool
from evolve.problem.spec import GpuNeed, ProblemSpec, StageSpec

if TYPE_CHECKING:
    from evolve.config import ConcurrencyConfig, ExecutorConfig, SandboxConfig


class Executor(Protocol):
    isolation: str

    async def evaluate(self, problem: ProblemSpec, code: str, *,
                       stages: Sequence[str] | None = None) -> EvalResult: ...

    async def aclose(self) -> None: ...


@functools.cache
def visible_gpus() -> tuple[str, ...]:
    """GPU ids this process may use: CUDA_VISIBLE_DEVICES if set, else `nvidia-smi -L`."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        ids = [g.strip() for g in env.split(",") if g.strip()]
        return tuple(ids) if ids and ids[0] != "-1" else ()
    smi = shutil.which("nvidia-smi")
    if not smi:
        return ()
    try:
        out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ()
    return tuple(str(i) for i, line in enumerate(out.splitlines()) if line.startswith("GPU "))


def stage_limits(problem: ProblemSpec, stage: StageSpec, *, gpu: bool, memory_mb: int | None,
                 cpu_seconds: int | None, timeout_factor: float) -> SandboxLimits:
    """The sandbox limits of one stage: the problem's own, overridden by the run's config."""
    res = problem.resources
    return SandboxLimits(
        timeout_s=stage.timeout_s * timeout_factor,
        # CUDA reserves huge virtual address ranges: an address-space limit breaks it.
        memory_mb=None if gpu else (memory_mb or res.memory_mb),
        cpu_seconds=cpu_seconds or res.cpu_seconds,
        max_processes=res.max_processes, max_file_mb=res.max_file_mb,
        max_open_files=res.max_open_files, max_output_kb=res.max_output_kb)


class LocalExecutor:
    """Sandboxed evaluations on this machine, at most `max_parallel` at once."""

    def __init__(self, max_parallel: int | None = None, isolation: str = "auto",
                 memory_mb: int | None = None, cpu_seconds: int | None = None,
                 timeout_factor: float = 1.0, gpus: Sequence[str] | None = None,
                 warm_start: bool = True):
        self.max_parallel = max_parallel or os.cpu_count() or 1
        self.isolation, self.isolation_description = isolation_mod.detect_isolation(isolation)
        # Same-uid candidates (weaker levels) may not read our environment or memory via /proc.
        isolation_mod.protect_this_process()
        self.memory_mb = memory_mb
        self.cpu_seconds = cpu_seconds
        self.timeout_factor = timeout_factor
        self.gpus = tuple(visible_gpus() if gpus is None else gpus)
        # A pre-imported interpreter per problem that forks each evaluation (evaluators.warm),
        # where it gives the same isolation; otherwise a fresh interpreter per stage.
        self._warm = WarmPool() if warm_start and warm.supported(self.isolation) else None
        self._threads = ThreadPoolExecutor(max_workers=self.max_parallel,
                                           thread_name_prefix="sandbox")
        self._slots: asyncio.Semaphore | None = None
        self._gpu_pool: asyncio.Queue[str] | None = None

    def _ensure_pools(self) -> None:
        # Created lazily so they belong to the running event loop.
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.max_parallel)
            self._gpu_pool = asyncio.Queue()
            for gpu in self.gpus:
                self._gpu_pool.put_nowait(gpu)

    def limits_for(self, problem: ProblemSpec, stage: StageSpec, *, gpu: bool) -> SandboxLimits:
        return stage_limits(problem, stage, gpu=gpu, memory_mb=self.memory_mb,
                            cpu_seconds=self.cpu_seconds, timeout_factor=self.timeout_factor)

    async def evaluate(self, problem: ProblemSpec, code: str, *,
                       stages: Sequence[str] | None = None) -> EvalResult:
        """Run the cascade for `code`; candidate failures come back as results, never raise."""
        self._ensure_pools()
        selected = select_stages(problem, stages)
        return await run_cascade(selected, lambda stage: self._run_stage(problem, code, stage),
                                 problem.config.score)

    async def _run_stage(self, problem: ProblemSpec, code: str, stage: StageSpec) -> StageResult:
        assert self._slots is not None and self._gpu_pool is not None
        need = problem.gpu
        wanted = problem.resources.gpus_per_job if need != GpuNeed.NONE else 0
        if need == GpuNeed.REQUIRED and len(self.gpus) < max(wanted, 1):
            return StageResult(stage=stage.name, failure=FailureKind.EVALUATOR_ERROR,
                               isolation=self.isolation,
                               reason=f"problem '{problem.name}' needs {max(wanted, 1)} GPU(s); "
                                      f"{len(self.gpus)} visible (CUDA_VISIBLE_DEVICES / "
                                      f"nvidia-smi -L)")
        if need == GpuNeed.OPTIONAL and len(self.gpus) < wanted:
            wanted = 0
        async with self._slots:
            taken = [await self._gpu_pool.get() for _ in range(wanted)]
            try:
                limits = self.limits_for(problem, stage, gpu=bool(taken))
                extra_env = {"CUDA_VISIBLE_DEVICES": ",".join(taken)}
                if problem.resources.allow_introspection:
                    extra_env["EVOLVE_ALLOW_INTROSPECTION"] = "1"
                loop = asyncio.get_running_loop()
                try:
                    # The warm pool runs GPU stages cold itself (CUDA does not survive a
                    # fork); both runners take the same arguments, `gpu` and `hidden` included.
                    runner = self._warm.run if self._warm is not None else run_sandboxed
                    outcome = await loop.run_in_executor(self._threads, functools.partial(
                        runner, problem_dir=problem.root,
                        evaluator_file=problem.config.problem.evaluator, code=code,
                        stage=stage.name, limits=limits, level=self.isolation,
                        extra_env=extra_env, gpu=bool(taken),
                        hidden=tuple(problem.config.problem.hidden)))
                except Exception as exc:  # noqa: BLE001 - a sandbox fault is a result, not a crash
                    return StageResult(stage=stage.name, failure=FailureKind.EVALUATOR_ERROR,
                                       isolation=self.isolation,
                                       reason=f"the sandbox failed: {type(exc).__name__}: {exc}")
            finally:
                for gpu in taken:
                    self._gpu_pool.put_nowait(gpu)
        return stage_result(stage, outcome, limits.timeout_s)

    async def aclose(self) -> None:
        self._threads.shutdown(wait=True)
        if self._warm is not None:
            self._warm.close()


def executor_kind(executor: ExecutorConfig | None) -> str:
    """`local` or `ray`: `auto` is Ray when a cluster address is configured or in RAY_ADDRESS."""
    kind = executor.kind if executor is not None else "local"
    if kind == "auto":
        return "ray" if (executor and executor.ray_address) or os.environ.get("RAY_ADDRESS") \
            else "local"
    return kind


def make_executor(sandbox: SandboxConfig, concurrency: ConcurrencyConfig,
                  executor: ExecutorConfig | None = None) -> Executor:
    """The executor the config asks for: `local`, `ray`, or `auto` (Ray when RAY_ADDRESS is
    set). Ray is imported only when used: it is an optional extra."""
    kind = executor_kind(executor)
    if kind == "ray":
        assert executor is not None
        from evaluators.ray_executor import RayExecutor

        return RayExecutor(address=executor.ray_address, max_parallel=concurrency.evaluations,
                           isolation=sandbox.isolation, memory_mb=sandbox.memory_mb,
                           cpu_seconds=sandbox.cpu_seconds,
                           timeout_factor=sandbox.timeout_factor,
                           resources=dict(executor.resources), retries=executor.retries)
    return LocalExecutor(max_parallel=concurrency.evaluations, isolation=sandbox.isolation,
                         memory_mb=sandbox.memory_mb, cpu_seconds=sandbox.cpu_seconds,
                         timeout_factor=sandbox.timeout_factor, warm_start=sandbox.warm_start)

"""The sandbox limits of one stage, shared by every executor (local and Ray): the problem's
own limits, overridden by the run's config. Its own module so the executors do not import each
other."""

from __future__ import annotations

from evaluators.sandbox import SandboxLimits
from evolve.problem.spec import ProblemSpec, StageSpec


def stage_limits(problem: ProblemSpec, stage: StageSpec, *, gpu: bool, memory_mb: int | None,
                 cpu_seconds: int | None, timeout_factor: float) -> SandboxLimits:
    res = problem.resources
    return SandboxLimits(
        timeout_s=stage.timeout_s * timeout_factor,
        # CUDA reserves huge virtual address ranges: an address-space limit breaks it.
        memory_mb=None if gpu else (memory_mb or res.memory_mb),
        cpu_seconds=cpu_seconds or res.cpu_seconds,
        max_processes=res.max_processes, max_file_mb=res.max_file_mb,
        max_open_files=res.max_open_files, max_output_kb=res.max_output_kb)

"""Whether the evaluations of a run ask for a GPU: decided once per run, from the problem's need
(`[resources] gpu`), the run's `sandbox.gpu` (never | auto | always) and the GPUs there are.

A GPU-optional problem's results must be comparable within a run, so it uses a GPU for every
evaluation of the run or for none. `auto` uses one only where every node could give it one (a
single GPU machine, an all-GPU cluster); on a mixed cluster it evaluates on CPUs everywhere
rather than queueing every evaluation behind the GPU nodes (`always` does that on purpose).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from evolve.problem.spec import GpuNeed, ProblemSpec

POLICIES = ("never", "auto", "always")


@dataclass(frozen=True)
class GpuPlan:
    gpus: int          # GPUs each evaluation asks for (0: none)
    reason: str        # one line for the run's log: which rule decided it
    error: str = ""    # the run cannot work with this policy on these machines

    def line(self, problem: str) -> str:
        use = f"{self.gpus} GPU per evaluation" if self.gpus else "no GPU (CPU only)"
        return f"gpu: {problem} uses {use}: {self.reason}"


def plan(problem: ProblemSpec, policy: str, node_gpus: Sequence[float]) -> GpuPlan:
    """`node_gpus`: the GPUs of each machine evaluations may run on."""
    need = problem.gpu
    per_job = max(problem.resources.gpus_per_job, 1)
    fits = [gpus >= per_job for gpus in node_gpus]
    where = f"{sum(fits)} of {len(fits)} node(s) have {per_job} GPU(s)"
    if need == GpuNeed.NONE:
        return GpuPlan(0, "the problem uses no GPU")
    if need == GpuNeed.REQUIRED:
        if policy == "never":
            return GpuPlan(0, "sandbox.gpu=never", error=(
                f"problem '{problem.name}' needs a GPU but sandbox.gpu=never; "
                f"use --set sandbox.gpu=auto"))
        if not any(fits):
            return GpuPlan(per_job, "the problem needs a GPU", error=(
                f"problem '{problem.name}' needs {per_job} GPU(s); {where}"))
        return GpuPlan(per_job, f"the problem needs a GPU ({where})")
    if policy == "never":
        return GpuPlan(0, "GPU-optional problem, sandbox.gpu=never")
    if policy == "always":
        if not any(fits):
            return GpuPlan(per_job, "sandbox.gpu=always", error=(
                f"sandbox.gpu=always but no machine has {per_job} GPU(s) for "
                f"'{problem.name}'; use --set sandbox.gpu=auto"))
        return GpuPlan(per_job, f"GPU-optional problem, sandbox.gpu=always ({where})")
    if fits and all(fits):
        return GpuPlan(per_job, f"GPU-optional problem, sandbox.gpu=auto: {where}")
    if any(fits):
        return GpuPlan(0, f"GPU-optional problem, sandbox.gpu=auto: only {where}, so every "
                          f"evaluation runs on CPU and all stay comparable (--set "
                          f"sandbox.gpu=always to use the GPU nodes only)")
    return GpuPlan(0, f"GPU-optional problem, sandbox.gpu=auto: {where}")

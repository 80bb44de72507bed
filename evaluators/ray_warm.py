"""Warm evaluation on Ray: a long-lived actor per node and problem bundle holding a `WarmPool`.

A cold Ray stage starts a task, then a fresh interpreter in the sandbox that imports the
evaluator. A `WarmEvaluator` actor, pinned to its node, keeps the local executor's warm pool
(`evaluators/warm_pool.py`: a pre-imported interpreter inside the same sandbox view that forks
each evaluation) alive for the whole run, so an evaluation on Ray costs one actor call plus a
fork: the same isolation as a local warm evaluation, on whichever node it is placed.

Where the warm path applies: CPU stages (CUDA does not survive a fork; GPU stages stay cold
tasks, with the GPU Ray assigns), at isolation levels the warm pool supports, for every
problem: the judge and candidate interpreters start with the stage's Python path (the shipped
bundle first, `problem_bundle.python_path`), so a problem that imports its own package or a
shared helper (`problems.txn.workload`, `problems._spot_sim`) gets the shipped modules, as a
cold task does. Each outcome says whether it was forked warm (`SandboxOutcome.warm`; counted
in `RayExecutor.stages_run`).

Placement: the executor gives each node at most as many evaluations at once as it has CPUs
(`NodeSlots`), on the least loaded node that fits the run's custom resources.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from typing import Any

import ray

from evaluators.ray_node import check_node_version, node_place, run_stage_here
from evaluators.sandbox import SandboxOutcome


@ray.remote(num_cpus=0, max_restarts=0, max_task_retries=0)
class WarmEvaluator:
    """One per (node, problem bundle): evaluations forked from warm interpreters there."""

    def __init__(self, isolation: str) -> None:
        from evaluators import isolation as isolation_mod
        from evaluators import warm
        from evaluators.warm_pool import WarmPool

        level, _ = isolation_mod.detect_isolation(isolation)
        self.pool = WarmPool() if warm.supported(level) else None

    def place(self) -> dict[str, Any]:
        return node_place()

    def run(self, bundle: list[Any], digest: str, problem_path: str, driver_version: str,
            kwargs: dict[str, Any]) -> SandboxOutcome:
        check_node_version(driver_version)
        if self.pool is None:
            return run_stage_here(bundle, digest, problem_path, **kwargs)
        return run_stage_here(bundle, digest, problem_path, runner=self.pool.run, **kwargs)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close()


class NodeSlots:
    """At most `capacity[node]` evaluations at once per node; `take` waits for the least
    loaded node among `allowed`."""

    def __init__(self, capacity: dict[str, int]):
        self.capacity = {node: max(int(n), 1) for node, n in capacity.items()}
        self.busy: Counter[str] = Counter()
        self._changed: asyncio.Condition | None = None

    async def take(self, allowed: Sequence[str]) -> str:
        if self._changed is None:
            self._changed = asyncio.Condition()
        async with self._changed:
            while True:
                free = [n for n in allowed if self.busy[n] < self.capacity.get(n, 1)]
                if free:
                    node = min(free, key=lambda n: self.busy[n] / self.capacity.get(n, 1))
                    self.busy[node] += 1
                    return node
                await self._changed.wait()

    async def give(self, node: str) -> None:
        assert self._changed is not None
        async with self._changed:
            self.busy[node] -= 1
            self._changed.notify_all()

"""Every built-in problem runs on the Ray test cluster, whose workers have no checkout on their
path: each problem travels as a self-contained bundle (its package and the helpers it imports,
e.g. `problems/_spot_sim`) and is imported from it.

The quick check evaluates each initial program's first stage (the fast one) through the Ray
executor, each forked from a node's warm interpreters; the full `evolve problems check NAME --ray-address` of every problem (all stages, all
baselines) is marked slow."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from evaluators.problem_bundle import bundle_problem, unpacked_dir
from evolve.problem.discovery import find_problem

REPO = Path(__file__).resolve().parents[2]
BUILTIN = sorted(p.parent.name for p in (REPO / "problems").glob("*/problem.toml"))


def test_the_workers_do_not_have_the_checkout_on_their_path(ray_cluster):
    import ray

    @ray.remote(num_cpus=0)
    def worker_path() -> list[str]:
        import sys

        return list(sys.path)

    paths = ray.get(worker_path.remote(), timeout=60)
    assert str(REPO) not in [str(Path(p).resolve()) for p in paths if p]


def test_every_builtin_problem_runs_its_first_stage_on_the_cluster(ray_cluster):
    from evaluators.ray_executor import RayExecutor

    assert {"txn", "serving", "eplb", "moe_lbl", "spot_single", "circle_packing"} <= set(BUILTIN)
    executor = RayExecutor(address=ray_cluster.address, max_parallel=2)
    problems = [find_problem(str(REPO / "problems" / name)) for name in BUILTIN]

    async def first_stages():
        try:
            return await asyncio.gather(*(
                executor.evaluate(spec, spec.initial_code(), stages=[spec.stages[0].name])
                for spec in problems))
        finally:
            await executor.aclose()

    results = asyncio.run(first_stages())
    failed = {spec.name: (r.failure, r.reason[:300]) for spec, r in zip(problems, results,
                                                                        strict=True) if not r.valid}
    assert not failed
    # Each forked from the node's warm interpreters, started with the bundle on their path.
    assert executor.stages_run == {"warm": len(problems)}, executor.stages_run
    # Each ran from its shipped bundle, under its real import name, on a node without it.
    for spec in problems:
        bundle = bundle_problem(spec.root)
        assert bundle.problem_path == f"problems/{spec.root.name}"
        assert (unpacked_dir(bundle.digest) / bundle.problem_path / "problem.toml").is_file()


@pytest.mark.slow
@pytest.mark.parametrize("name", BUILTIN)
def test_problems_check_passes_through_the_ray_executor(name, ray_cluster, tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    with contextlib.chdir(tmp_path):  # not from the checkout: Ray would ship the cwd's path
        done = subprocess.run(
            [sys.executable, "-m", "evolve", "problems", "check", str(REPO / "problems" / name),
             "--json", "--ray-address", ray_cluster.address],
            capture_output=True, text=True, timeout=1800, env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(done.stdout[done.stdout.index("{"):])
    assert report["ok"]

"""Scale-out: evaluation throughput of the local executor vs the Ray executor, in one run.

1. Throughput with an evaluator whose candidate sleeps 1 s (the sandbox, the harness and the
   problem are the real ones, `tests/support/sleep_problem`): the local executor with 2 slots,
   then Ray with 2, 4 and 8 slots on a local cluster of several nodes (a head and worker nodes
   on this machine, 2 logical CPUs each). Each configuration evaluates `waves x slots` programs
   after a warm-up wave; reported: programs per minute, the ratio to ideal (slots x 60 per
   minute: every slot busy sleeping all the time), and Ray's 2 -> 8 scaling against ideal 4x.
2. Per-evaluation overhead on a trivial evaluator (sleep 0 s): the median wall time of one
   evaluation, one at a time, local warm vs Ray warm (a long-lived actor per node,
   evaluators/ray_warm.py) and Ray cold (a task per stage), interleaved and all with the
   cluster up (its daemons take CPU from a local evaluation too); the difference is what Ray
   adds. Also the part of each evaluation outside the sandbox (end to end minus the stages' own
   wall time, measured on the node), which the evaluation's own noise does not blur.
3. With `--problem NAME` (a built-in problem or a folder), the same comparison on that
   problem's initial program (its first stage, or `--stage`): e.g. txn, which imports its own
   package (`problems.txn.model`), shipped to the nodes in its bundle. Ray's warm stages are
   counted (`RayExecutor.stages_run`), so a fall-back to cold evaluation shows.

    python benchmarks/scale_out.py [--waves 4] [--trivial 15] [--slots 2 4 8]
                                   [--problem txn [--stage full] [--problem-repeats 8]]

Sleeping candidates use no CPU, so the slots may exceed the cores; what remains is the sandbox
start (bubblewrap, a Python interpreter) on each evaluation, which a machine with few cores
pays for in the ratio to ideal.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from evaluators.executors import LocalExecutor  # noqa: E402
from evolve.problem.discovery import find_problem  # noqa: E402
from tests.support.ray_cluster import LocalRayCluster, wait_for_nodes  # noqa: E402

PROBLEM = ROOT / "tests" / "support" / "sleep_problem"


def code(seconds: float, tag: int) -> str:
    text = (PROBLEM / "initial.py").read_text()
    # A distinct program each time (a comment), as a run would send.
    return text.replace("SECONDS = 1.0", f"SECONDS = {seconds!r}  # {tag}")


async def throughput(executor, problem, slots: int, waves: int) -> float:
    """Programs per minute with `slots` evaluations in flight, after one warm-up wave."""
    await asyncio.gather(*[executor.evaluate(problem, code(1.0, -i)) for i in range(slots)])
    count = waves * slots
    start = time.perf_counter()
    results = await asyncio.gather(*[executor.evaluate(problem, code(1.0, i))
                                     for i in range(count)])
    elapsed = time.perf_counter() - start
    bad = [r.reason for r in results if not r.valid]
    if bad:
        raise SystemExit(f"{len(bad)} evaluations failed, e.g. {bad[0]}")
    return count / elapsed * 60


async def closing(executor, work):
    """`work`, then the executor closed on the same event loop (its actors end)."""
    try:
        return await work
    finally:
        await executor.aclose()


def trivial(i: int) -> str:
    return code(0.0, i)


def initial_program(problem):
    """The problem's initial program, made distinct per evaluation by a trailing comment."""
    text = problem.initial_code()
    return lambda i: f"{text.rstrip()}\n# evaluation {i}\n"


@dataclass
class Overhead:
    """Medians of one evaluation, one at a time: its wall time end to end, and the part of it
    outside the sandbox (end to end minus the stages' own wall time, measured on the node):
    what the executor, and Ray, add."""

    total_s: float
    outside_s: float


async def per_evaluation(executors: dict, problem, repeats: int, program=trivial,
                         stages: list[str] | None = None) -> dict[str, Overhead]:
    """Each executor evaluates `program(i)` in turn, one evaluation at a time, interleaved
    (local, Ray warm, Ray cold, local, ...): a machine whose load drifts slows them alike."""
    rows: dict[str, list[tuple[float, float]]] = {name: [] for name in executors}
    for i in range(repeats + 1):
        for name, executor in executors.items():
            start = time.perf_counter()
            result = await executor.evaluate(problem, program(i), stages=stages)
            total = time.perf_counter() - start
            if not result.valid:
                raise SystemExit(f"{name} evaluation of {problem.name} failed: {result.reason}")
            rows[name].append((total, total - sum(s.wall_s for s in result.stages)))
    # The first round warms caches, zygotes and actors.
    return {name: Overhead(statistics.median(t for t, _ in found[1:]),
                           statistics.median(o for _, o in found[1:]))
            for name, found in rows.items()}


async def compare(cluster_address: str, problem, repeats: int, program=trivial,
                  stages: list[str] | None = None) -> tuple[dict[str, Overhead], str]:
    """Local warm, Ray warm and Ray cold on one problem, all with the cluster up; also Ray
    warm's stage counts (a fall-back to cold shows there)."""
    from evaluators.ray_executor import RayExecutor

    executors = {"local warm": LocalExecutor(max_parallel=1),
                 "ray warm": RayExecutor(address=cluster_address, max_parallel=1),
                 "ray cold": RayExecutor(address=cluster_address, max_parallel=1,
                                         warm_start=False)}
    try:
        found = await per_evaluation(executors, problem, repeats, program, stages)
    finally:
        for executor in executors.values():
            await executor.aclose()
    ran = executors["ray warm"].stages_run
    return found, f"{ran['warm']} stage(s) forked warm, {ran['cold']} cold"


def print_overheads(title: str, found: dict[str, Overhead], stages_text: str,
                    target: str = "") -> None:
    print(f"\n{title}")
    local = found["local warm"]
    for name, item in found.items():
        line = (f"  {name:<11}{item.total_s * 1000:>6.0f} ms  (outside the sandbox "
                f"{item.outside_s * 1000:>4.0f} ms)")
        if name != "local warm":
            line += (f"  Ray adds {(item.total_s - local.total_s) * 1000:.0f} ms end to end, "
                     f"{(item.outside_s - local.outside_s) * 1000:.0f} ms outside the sandbox")
        if name == "ray warm":
            line += f"{target}; {stages_text}"
        print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--waves", type=int, default=4)
    parser.add_argument("--trivial", type=int, default=15)
    parser.add_argument("--slots", type=int, nargs="+", default=[2, 4, 8])
    parser.add_argument("--problem", help="also measure the overhead on this problem's initial "
                                          "program (a built-in name or a folder)")
    parser.add_argument("--stage", help="the --problem stage to run (default: its first)")
    parser.add_argument("--problem-repeats", type=int, default=8)
    args = parser.parse_args()
    problem = find_problem(str(PROBLEM))
    other = find_problem(args.problem) if args.problem else None
    other_stages = [args.stage or other.stages[0].name] if other else None

    local = LocalExecutor(max_parallel=2)
    local_rate = asyncio.run(closing(local, throughput(local, problem, 2, args.waves)))
    print(f"isolation: {local.isolation}; sleep evaluator 1 s; {args.waves} waves per setting",
          flush=True)

    import ray

    from evaluators.ray_executor import RayExecutor

    nodes = max(1, (max(args.slots) + 1) // 2)
    print(f"starting a local Ray cluster: {nodes} node(s) x 2 CPUs ...", flush=True)
    with LocalRayCluster(head_cpus=2) as cluster:
        for _ in range(nodes - 1):
            cluster.add_node(2, {"worker": 1})
        ray.init(address=cluster.address, log_to_driver=False)
        try:
            wait_for_nodes(nodes)
            rates = {}
            for slots in args.slots:
                executor = RayExecutor(address=cluster.address, max_parallel=slots)
                rates[slots] = asyncio.run(closing(executor, throughput(
                    executor, problem, slots, args.waves)))
            trivial_found = asyncio.run(compare(cluster.address, problem, args.trivial))
            other_found = asyncio.run(compare(
                cluster.address, other, args.problem_repeats, initial_program(other),
                other_stages)) if other is not None else None
        finally:
            ray.shutdown()

    print()
    print(f"{'executor':<10}{'slots':>6}{'programs/min':>15}{'ideal':>8}{'of ideal':>10}")
    print(f"{'local':<10}{2:>6}{local_rate:>15.1f}{120:>8}{local_rate / 120:>10.0%}")
    for slots, rate in rates.items():
        ideal = slots * 60
        print(f"{'ray':<10}{slots:>6}{rate:>15.1f}{ideal:>8}{rate / ideal:>10.0%}")
    low, high = min(rates), max(rates)
    if high > low:
        scaling = rates[high] / rates[low]
        print(f"\nray {low} -> {high} slots: {scaling:.2f}x of an ideal {high / low:.0f}x "
              f"({scaling / (high / low):.0%} of ideal)")
    print(f"ray {low} slots vs local 2 slots: {rates[low] / local_rate:.2f}x"
          if low == 2 else "")
    print_overheads(f"per evaluation (trivial evaluator, one at a time, interleaved, median "
                    f"of {args.trivial}):", *trivial_found, target=" (target: under 30 ms)")
    if other is not None and other_found is not None:
        print_overheads(f"per evaluation of {other.name}'s initial program (stage "
                        f"{other_stages[0]}, one at a time, interleaved, median of "
                        f"{args.problem_repeats}):", *other_found)


if __name__ == "__main__":
    main()

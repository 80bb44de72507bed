"""Scale-out: evaluation throughput of the local executor vs the Ray executor, in one run.

1. Throughput with an evaluator whose candidate sleeps 1 s (the sandbox, the harness and the
   problem are the real ones, `tests/support/sleep_problem`): the local executor with 2 slots,
   then Ray with 2, 4 and 8 slots on a local cluster of several nodes (a head and worker nodes
   on this machine, 2 logical CPUs each). Each configuration evaluates `waves x slots` programs
   after a warm-up wave; reported: programs per minute, the ratio to ideal (slots x 60 per
   minute: every slot busy sleeping all the time), and Ray's 2 -> 8 scaling against ideal 4x.
2. Per-evaluation overhead on a trivial evaluator (sleep 0 s): the median wall time of one
   evaluation, run one after the other, local warm vs Ray warm (a long-lived actor per node,
   evaluators/ray_warm.py) and Ray cold (a task per stage); the difference is what Ray adds.
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


async def per_evaluation(executor, problem, repeats: int, program=trivial,
                         stages: list[str] | None = None) -> float:
    """Median wall seconds of one evaluation of `program(i)`, one at a time."""
    times = []
    for i in range(repeats + 1):
        start = time.perf_counter()
        result = await executor.evaluate(problem, program(i), stages=stages)
        if not result.valid:
            raise SystemExit(f"evaluation of {problem.name} failed: {result.reason}")
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])  # the first one warms caches and workers


def initial_program(problem):
    """The problem's initial program, made distinct per evaluation by a trailing comment."""
    text = problem.initial_code()
    return lambda i: f"{text.rstrip()}\n# evaluation {i}\n"


def stages_text(executor) -> str:
    found = executor.stages_run
    return f"{found['warm']} stage(s) forked warm, {found['cold']} cold"


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
    local_rate = asyncio.run(throughput(local, problem, 2, args.waves))
    local_trivial = asyncio.run(per_evaluation(local, problem, args.trivial))
    local_other = asyncio.run(per_evaluation(local, other, args.problem_repeats,
                                             initial_program(other), other_stages)) \
        if other else 0.0
    asyncio.run(local.aclose())
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
            # Warm (the default: a long-lived actor per node) and cold (a task per stage).
            executor = RayExecutor(address=cluster.address, max_parallel=1)
            ray_trivial = asyncio.run(closing(executor, per_evaluation(
                executor, problem, args.trivial)))
            warm_stages = stages_text(executor)
            executor = RayExecutor(address=cluster.address, max_parallel=1, warm_start=False)
            ray_cold = asyncio.run(closing(executor, per_evaluation(
                executor, problem, args.trivial)))
            if other is not None:
                executor = RayExecutor(address=cluster.address, max_parallel=1)
                ray_other = asyncio.run(closing(executor, per_evaluation(
                    executor, other, args.problem_repeats, initial_program(other),
                    other_stages)))
                other_warm_stages = stages_text(executor)
                executor = RayExecutor(address=cluster.address, max_parallel=1,
                                       warm_start=False)
                ray_other_cold = asyncio.run(closing(executor, per_evaluation(
                    executor, other, args.problem_repeats, initial_program(other),
                    other_stages)))
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
    print(f"\nper evaluation (trivial evaluator, one at a time, median of {args.trivial}):")
    print(f"  local warm {local_trivial * 1000:.0f} ms, ray warm {ray_trivial * 1000:.0f} ms: "
          f"Ray adds {(ray_trivial - local_trivial) * 1000:.0f} ms "
          f"({ray_trivial / local_trivial:.2f}x; target: under 30 ms; {warm_stages})")
    print(f"  ray cold (a task and a fresh interpreter per stage) {ray_cold * 1000:.0f} ms: "
          f"adds {(ray_cold - local_trivial) * 1000:.0f} ms")
    if other is not None:
        print(f"\nper evaluation of {other.name}'s initial program (stage "
              f"{other_stages[0]}, one at a time, median of {args.problem_repeats}):")
        print(f"  local warm {local_other * 1000:.0f} ms, ray warm {ray_other * 1000:.0f} ms: "
              f"Ray adds {(ray_other - local_other) * 1000:.0f} ms "
              f"({ray_other / local_other:.2f}x; {other_warm_stages})")
        print(f"  ray cold {ray_other_cold * 1000:.0f} ms: adds "
              f"{(ray_other_cold - local_other) * 1000:.0f} ms")


if __name__ == "__main__":
    main()

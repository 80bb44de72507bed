"""Sandbox overhead of this checkout against another one (say, main before a change), measured
in one run: the wall time of one evaluation of an empty candidate, warm and cold, at one
isolation level.

Each checkout gets a worker process that imports its own `evaluators` and keeps its own warm
interpreter; the workers take turns evaluation by evaluation (load changes on the machine hit
both alike), and the medians are compared.

    git worktree add /tmp/evolve-main main    # or any other checkout
    python benchmarks/sandbox_overhead_ab.py /tmp/evolve-main [--repeats 30] [--level bwrap]
        [--problem trusting_judge_problem]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

WORKER = r'''
import json, os, resource, sys, time
from pathlib import Path
from evaluators.sandbox import SandboxLimits, run_sandboxed
from evaluators.warm import supported
from evaluators.warm_pool import WarmPool

level, problem = sys.argv[1], Path(sys.argv[2])
code = 'def report():\n    return {"score": 0.0, "valid": True, "metrics": {}, "feedback": ""}\n'
limits = SandboxLimits(timeout_s=30, memory_mb=512, cpu_seconds=30)
pool = WarmPool() if supported(level) else None


def tree_cpu(root):
    total, frontier, tick = 0.0, [root], os.sysconf("SC_CLK_TCK")
    while frontier:
        pid = frontier.pop()
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{pid}/task/{pid}/children") as f:
                frontier += [int(c) for c in f.read().split()]
        except OSError:
            continue
        total += sum(int(x) for x in fields[11:15]) / tick
    return total


def cpu_now():
    """This process, its reaped children and the warm interpreters' trees (as in
    sandbox_overhead.py; cold bubblewrap runs' own children escape it)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    total = own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime
    if pool is not None:
        total += sum(tree_cpu(i.proc.pid) for i in pool._interpreters.values())
    return total


for line in sys.stdin:
    run = pool.run if line.strip() == "warm" and pool else run_sandboxed
    cpu_before = cpu_now()
    start = time.perf_counter()
    outcome = run(problem_dir=problem, evaluator_file="evaluate.py", code=code, stage="only",
                  limits=limits, level=level)
    elapsed = time.perf_counter() - start
    cpu = cpu_now() - cpu_before
    ok = bool(outcome.result and outcome.result.get("valid"))
    inside = outcome.result.get("harness_wall_s", 0.0) if outcome.result else 0.0
    print(json.dumps({"s": elapsed, "inside": inside, "cpu": cpu, "ok": ok,
                      "why": "" if ok else str(outcome)[-300:]}), flush=True)
if pool:
    pool.close()
'''


class Worker:
    def __init__(self, checkout: Path, level: str, problem_name: str = "trusting_problem"):
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        env["PYTHONPATH"] = str(checkout)
        problem = checkout / "tests" / "fixtures" / problem_name
        self.proc = subprocess.Popen([sys.executable, "-c", WORKER, level, str(problem)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     env=env, cwd=checkout)

    def time(self, path: str) -> tuple[float, float, float]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(path + "\n")
        self.proc.stdin.flush()
        reply = json.loads(self.proc.stdout.readline())
        if not reply["ok"]:
            raise SystemExit(f"an evaluation failed: {reply['why']}")
        return reply["s"], reply["inside"], reply["cpu"]

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old", type=Path, help="the other checkout (the baseline)")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--level", default="bwrap")
    parser.add_argument("--problem", default="trusting_problem",
                        help="a problem under tests/fixtures: trusting_problem (the in-process "
                             "API) or trusting_judge_problem (judge and candidate in two "
                             "processes)")
    args = parser.parse_args()
    workers = {"old": Worker(args.old.resolve(), args.level, args.problem),
               "new": Worker(ROOT, args.level, args.problem)}
    samples: dict[str, list[float]] = {}
    inside: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}
    try:
        for worker in workers.values():
            worker.time("warm")  # starts the warm interpreter (not counted)
            worker.time("cold")
        for _ in range(args.repeats):
            for path in ("warm", "cold"):
                for name, worker in workers.items():
                    wall, harness, used = worker.time(path)
                    samples.setdefault(f"{name} {path}", []).append(wall)
                    inside.setdefault(f"{name} {path}", []).append(harness)
                    cpu.setdefault(f"{name} {path}", []).append(used)
    finally:
        for worker in workers.values():
            worker.close()
    medians = {k: 1000 * statistics.median(v) for k, v in samples.items()}
    best = {k: 1000 * min(v) for k, v in samples.items()}  # the closest to an idle machine's
    harness = {k: 1000 * statistics.median(v) for k, v in inside.items()}
    # CPU: the mean (ticks of 10 ms make single samples coarse).
    cpu_ms = {k: 1000 * statistics.mean(v) for k, v in cpu.items()}
    print(f"empty candidate ({args.problem}), {args.level} level, median of {args.repeats} "
          f"interleaved runs (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    for path in ("warm", "cold"):
        old, new = medians[f"old {path}"], medians[f"new {path}"]
        print(f"{path}: wall old {old:.1f} ms, new {new:.1f} ms, new/old {new / old:.2f}x (best "
              f"old {best[f'old {path}']:.1f} ms, new {best[f'new {path}']:.1f} ms; of which the "
              f"harness inside the sandbox: old {harness[f'old {path}']:.1f} ms, new "
              f"{harness[f'new {path}']:.1f} ms)")
        if path == "warm":
            old_cpu, new_cpu = cpu_ms["old warm"], cpu_ms["new warm"]
            print(f"      CPU old {old_cpu:.1f} ms, new {new_cpu:.1f} ms, new/old "
                  f"{new_cpu / old_cpu:.2f}x")


if __name__ == "__main__":
    main()

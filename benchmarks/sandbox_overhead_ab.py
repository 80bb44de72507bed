"""Sandbox overhead of this checkout against another one (say, main before a change), measured
in one run: the wall time of one evaluation of an empty candidate, warm and cold, at one
isolation level.

Each checkout gets a worker process that imports its own `evaluators` and keeps its own warm
interpreter; the workers take turns evaluation by evaluation (load changes on the machine hit
both alike), and the medians are compared.

    git worktree add /tmp/evolve-main main    # or any other checkout
    python benchmarks/sandbox_overhead_ab.py /tmp/evolve-main [--repeats 30] [--level bwrap]
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
import json, sys, time
from pathlib import Path
from evaluators.sandbox import SandboxLimits, run_sandboxed
from evaluators.warm import supported
from evaluators.warm_pool import WarmPool

level, problem = sys.argv[1], Path(sys.argv[2])
code = 'def report():\n    return {"score": 0.0, "valid": True, "metrics": {}, "feedback": ""}\n'
limits = SandboxLimits(timeout_s=30, memory_mb=512, cpu_seconds=30)
pool = WarmPool() if supported(level) else None
for line in sys.stdin:
    run = pool.run if line.strip() == "warm" and pool else run_sandboxed
    start = time.perf_counter()
    outcome = run(problem_dir=problem, evaluator_file="evaluate.py", code=code, stage="only",
                  limits=limits, level=level)
    elapsed = time.perf_counter() - start
    ok = bool(outcome.result and outcome.result.get("valid"))
    inside = outcome.result.get("harness_wall_s", 0.0) if outcome.result else 0.0
    print(json.dumps({"s": elapsed, "inside": inside, "ok": ok,
                      "why": "" if ok else str(outcome)[-300:]}), flush=True)
if pool:
    pool.close()
'''


class Worker:
    def __init__(self, checkout: Path, level: str):
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        env["PYTHONPATH"] = str(checkout)
        problem = checkout / "tests" / "fixtures" / "trusting_problem"
        self.proc = subprocess.Popen([sys.executable, "-c", WORKER, level, str(problem)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     env=env, cwd=checkout)

    def time(self, path: str) -> tuple[float, float]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(path + "\n")
        self.proc.stdin.flush()
        reply = json.loads(self.proc.stdout.readline())
        if not reply["ok"]:
            raise SystemExit(f"an evaluation failed: {reply['why']}")
        return reply["s"], reply["inside"]

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old", type=Path, help="the other checkout (the baseline)")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--level", default="bwrap")
    args = parser.parse_args()
    workers = {"old": Worker(args.old.resolve(), args.level), "new": Worker(ROOT, args.level)}
    samples: dict[str, list[float]] = {}
    inside: dict[str, list[float]] = {}
    try:
        for worker in workers.values():
            worker.time("warm")  # starts the warm interpreter (not counted)
            worker.time("cold")
        for _ in range(args.repeats):
            for path in ("warm", "cold"):
                for name, worker in workers.items():
                    wall, harness = worker.time(path)
                    samples.setdefault(f"{name} {path}", []).append(wall)
                    inside.setdefault(f"{name} {path}", []).append(harness)
    finally:
        for worker in workers.values():
            worker.close()
    medians = {k: 1000 * statistics.median(v) for k, v in samples.items()}
    harness = {k: 1000 * statistics.median(v) for k, v in inside.items()}
    print(f"empty candidate, {args.level} level, median of {args.repeats} interleaved runs "
          f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    for path in ("warm", "cold"):
        old, new = medians[f"old {path}"], medians[f"new {path}"]
        print(f"{path}: old {old:.1f} ms, new {new:.1f} ms, new/old {new / old:.2f}x (of which "
              f"the harness inside the sandbox: old {harness[f'old {path}']:.1f} ms, new "
              f"{harness[f'new {path}']:.1f} ms)")


if __name__ == "__main__":
    main()

"""Sandbox overhead per evaluation, at each isolation level available here.

The candidate does nothing (an empty `report()`); the baseline is a plain `subprocess.run` of the
very same harness command (`python -m evaluators.harness PROBLEM PROGRAM STAGE`) without any
sandbox. Both are measured in this run, repeated, and the medians compared.

    python benchmarks/sandbox_overhead.py [--repeats 15]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from evaluators.isolation import available_levels, detect_isolation  # noqa: E402
from evaluators.sandbox import SandboxLimits, run_sandboxed  # noqa: E402

PROBLEM = ROOT / "tests" / "fixtures" / "trusting_problem"
EMPTY = 'def report():\n    return {"score": 0.0, "valid": True, "metrics": {}, "feedback": ""}\n'


def plain_run(program: Path) -> float:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-s", "-m", "evaluators.harness", str(PROBLEM),
                           str(program), "only"], env=env, capture_output=True, cwd=program.parent)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0 or b'"valid": true' not in proc.stdout:
        raise SystemExit(f"baseline run failed: {proc.stdout!r} {proc.stderr!r}")
    return elapsed


def sandboxed_run(level: str) -> float:
    limits = SandboxLimits(timeout_s=30, memory_mb=512, cpu_seconds=30)
    start = time.perf_counter()
    outcome = run_sandboxed(problem_dir=PROBLEM, evaluator_file="evaluate.py", code=EMPTY,
                            stage="only", limits=limits, level=level)
    elapsed = time.perf_counter() - start
    if not (outcome.result and outcome.result.get("valid")):
        raise SystemExit(f"sandboxed run at {level} failed: {outcome}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        program = Path(tmp) / "program.py"
        program.write_text(EMPTY)
        plain_run(program)  # warm caches
        levels = available_levels()
        samples: dict[str, list[float]] = {"plain": [], **{lv: [] for lv in levels}}
        # Interleave so load changes on the machine hit every variant alike.
        for _ in range(args.repeats):
            samples["plain"].append(plain_run(program))
            for level in levels:
                samples[level].append(sandboxed_run(level))
    base = statistics.median(samples["plain"])
    print(f"sandbox overhead per evaluation, empty candidate, median of {args.repeats} "
          f"(best level here: {detect_isolation()[0]})")
    print(f"{'variant':<10} {'median ms':>10} {'ratio':>7}")
    for name, values in samples.items():
        median = statistics.median(values)
        print(f"{name:<10} {median * 1000:>10.1f} {median / base:>7.2f}")


if __name__ == "__main__":
    main()

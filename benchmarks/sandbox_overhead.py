"""Sandbox overhead per evaluation, at each isolation level available here, cold and warm.

The candidate does nothing (an empty `report()`). Per level two paths are timed, wall clock of
one whole evaluation as the executor runs it:
- cold: `run_sandboxed`, a fresh `python -m evaluators.harness` per evaluation (today's path
  before the warm interpreter, still used where the warm path is not available);
- warm: `WarmPool.run`, a fork of a pre-imported interpreter inside the same sandbox
  (`evaluators.warm`; needs root, else it is skipped).
Each sandboxed variant runs twice: on the in-process API (`trusting_problem`: the candidate
imported into the evaluator's process, the old design) and on the judge/candidate API
(`trusting_judge_problem`: a judge process and a candidate process under two uids, one
channel); the table prints new/old.
The baseline is a plain `subprocess.run` of the very same harness command without any sandbox.
All variants are measured in this run, interleaved (load changes hit every variant alike),
repeated, and the medians compared (the best of the repeats is shown too: on a shared machine
the closest to an idle one's); the warm interpreter's one-off start is not counted.
A warm interpreter sets up the next evaluation (`evaluators.warm_fork`) once one is over, while
the run does other work: its CPU is counted with the evaluation before it (the CPU column waits
for it), its wall time is not on any evaluation's path.
On a shared machine wall time mostly measures waiting for a core, so the CPU the evaluation
costs is shown too: of this process and every process of the evaluation (the reaped children's
rusage; for the warm path the zygote's whole process tree read from /proc), summed over the
repeats and divided by them. On an idle machine an evaluation's wall time is close to it.
(Not shown for cold bubblewrap runs: bubblewrap's own children are reaped without rusage
reaching this process.) On a busy machine, `chrt -f 10 python benchmarks/sandbox_overhead.py`
(as root; a few seconds of real-time priority, children included) lets wall times approach an
idle machine's; `nice` does not, as each evaluation starts a session of its own (autogroups).

    python benchmarks/sandbox_overhead.py [--repeats 15]
"""

from __future__ import annotations

import argparse
import os
import resource
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
from evaluators.warm import supported as warm_supported  # noqa: E402
from evaluators.warm_pool import WarmPool  # noqa: E402

TARGET_MS = 25.0

PROBLEM = ROOT / "tests" / "fixtures" / "trusting_problem"
JUDGE_PROBLEM = ROOT / "tests" / "fixtures" / "trusting_judge_problem"
EMPTY = 'def report():\n    return {"score": 0.0, "valid": True, "metrics": {}, "feedback": ""}\n'


def _tree_cpu(root: int) -> float:
    """CPU seconds of `root` and its live descendants, each with its reaped children."""
    total, frontier = 0.0, [root]
    tick = os.sysconf("SC_CLK_TCK")
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


def cpu_now(pool: WarmPool | None = None) -> float:
    """This process, its reaped children and (when given) every warm interpreter's tree."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    total = own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime
    if pool is not None:
        total += sum(_tree_cpu(interp.proc.pid) for interp in pool._interpreters.values())
    return total


def plain_run(program: Path) -> float:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-s", "-m", "evaluators.harness", str(PROBLEM),
                           str(program), "only"], env=env, capture_output=True, cwd=program.parent)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0 or b'"valid": true' not in proc.stdout:
        raise SystemExit(f"baseline run failed: {proc.stdout!r} {proc.stderr!r}")
    return elapsed


def sandboxed_run(level: str, pool: WarmPool | None = None, problem: Path = PROBLEM) -> float:
    limits = SandboxLimits(timeout_s=30, memory_mb=512, cpu_seconds=30)
    run = pool.run if pool is not None else run_sandboxed
    start = time.perf_counter()
    outcome = run(problem_dir=problem, evaluator_file="evaluate.py", code=EMPTY,
                  stage="only", limits=limits, level=level)
    elapsed = time.perf_counter() - start
    if not (outcome.result and outcome.result.get("valid")):
        raise SystemExit(f"sandboxed run at {level} failed: {outcome}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        program = Path(tmp) / "program.py"
        program.write_text(EMPTY)
        plain_run(program)  # warm caches
        levels = available_levels()
        pool = WarmPool()
        warm_levels = [lv for lv in levels if warm_supported(lv)]
        samples: dict[str, list[float]] = {"plain": []}
        cpu: dict[str, float] = {"plain": 0.0}
        for level in levels:
            for api in ("", " new"):
                samples[f"{level} cold{api}"] = []
                cpu[f"{level} cold{api}"] = 0.0
                if level in warm_levels:
                    samples[f"{level} warm{api}"] = []
                    cpu[f"{level} warm{api}"] = 0.0
            if level in warm_levels:
                # Starts the warm interpreters (not counted).
                sandboxed_run(level, pool)
                sandboxed_run(level, pool, JUDGE_PROBLEM)
        try:
            # Interleave so load changes on the machine hit every variant alike.
            def timed(name: str, run: object, *run_args: object) -> None:
                before = cpu_now(pool)
                samples[name].append(run(*run_args))  # type: ignore[operator]
                if " warm" in name:
                    # The zygotes' set-up of the next evaluation, begun as this one ended:
                    # its CPU is this evaluation's (no wall time of it is counted).
                    time.sleep(0.05)
                cpu[name] += (cpu_now(pool) - before) / args.repeats

            for _ in range(args.repeats):
                timed("plain", plain_run, program)
                for level in levels:
                    timed(f"{level} cold", sandboxed_run, level)
                    timed(f"{level} cold new", sandboxed_run, level, None, JUDGE_PROBLEM)
                    if level in warm_levels:
                        timed(f"{level} warm", sandboxed_run, level, pool)
                        timed(f"{level} warm new", sandboxed_run, level, pool, JUDGE_PROBLEM)
        finally:
            pool.close()
    medians = {name: statistics.median(values) for name, values in samples.items()}
    best_of = {name: min(values) for name, values in samples.items()}
    base = medians["plain"]
    print(f"sandbox overhead per evaluation, empty candidate, median of {args.repeats} "
          f"(best level here: {detect_isolation()[0]}); load average "
          f"{' '.join(f'{x:.2f}' for x in load_before)} at the start, "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())} at the end, {os.cpu_count()} cores")
    print("'new': judge and candidate in two processes; the others: the in-process API")
    print(f"{'variant':<18} {'wall ms':>8} {'best ms':>8} {'/plain':>7} {'cold/warm':>10} "
          f"{'new/old':>8} {'CPU ms':>7} {'cold/warm':>10}")
    # bubblewrap's own children are reaped without rusage reaching this process.
    unseen = ({f"{levels[0]} cold", f"{levels[0]} cold new"} if levels[0] == "bwrap"
              else set())
    for name, median in medians.items():
        speedup = cpu_speedup = ratio = ""
        cpu_ms = "n/a" if name in unseen else f"{cpu[name] * 1000:.1f}"
        if " warm" in name:
            cold = name.replace(" warm", " cold")
            speedup = f"{medians[cold] / median:>9.2f}x"
            if cold not in unseen:
                cpu_speedup = f"{cpu[cold] / cpu[name]:>9.2f}x"
        if name.endswith(" new"):
            ratio = f"{median / medians[name[:-4]]:>7.2f}x"
        print(f"{name:<18} {median * 1000:>8.1f} {best_of[name] * 1000:>8.1f} "
              f"{median / base:>7.2f} {speedup:>10} {ratio:>8} {cpu_ms:>7} {cpu_speedup:>10}")
    best = levels[0]
    if f"{best} warm" in medians:
        old_ms = 1000 * medians[f"{best} warm"]
        warm_ms = 1000 * medians[f"{best} warm new"]
        warm_cpu = 1000 * cpu[f"{best} warm new"]
        print(f"\nfull isolation ({best}), judge and candidate in two processes: warm "
              f"{warm_ms:.1f} ms wall per evaluation, best {1000 * best_of[f'{best} warm new']:.1f} "
              f"(target < {TARGET_MS:g} ms: "
              f"{'met' if warm_ms < TARGET_MS else 'NOT met'}); in-process API {old_ms:.1f} ms, "
              f"new/old {warm_ms / old_ms:.2f}x; cold new "
              f"{1000 * medians[f'{best} cold new']:.1f} ms; warm new CPU {warm_cpu:.1f} ms "
              f"(load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    else:
        print(f"\nno warm path here (it needs root): {best} runs cold")


if __name__ == "__main__":
    main()

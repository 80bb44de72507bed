"""Time one full evaluation of each baseline of the built-in problems, on one core.

Usage: python benchmarks/evaluators.py [--repeat N] [problem ...]

Prints, per (problem, program): wall seconds of one `evaluate(program, last stage)` call (the
evaluator module is imported first, as the harness does, and not counted), the ratio to the
3 s target, and the ratio to a floor measured in the same run: the same number of bare policy
calls the evaluation made (what no simulator can beat). Other problems add entries to ENTRIES.

For a problem on the judge/candidate API, `evaluate` runs the judge against a candidate in a
separate process (no sandbox: the channel and the lockstep are what is timed; starting the
candidate's process is counted). The spot problems' rows also time, in the same run, the path
before the judge/candidate split (spot_single's evaluator up to commit 33bb659, spot_multi's up
to f23a53b: the policy imported into the evaluator's process, `run_single` / `run_multi`
per run; for spot_single the stage's grid then the leaderboard's) and print new/old, in wall
seconds and in CPU seconds (of every process of the evaluation). Each of those is measured
`--repeat` times (default 3), old and new alternately, and the fastest of each is kept: on a
shared machine the slower ones mostly measure other people's work. The load average is printed
before and after.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from evolve.problem.spec import load_problem  # noqa: E402

TARGET_S = 3.0

# (problem folder under problems/, program path inside it); the stage is the problem's last.
ENTRIES: list[tuple[str, str]] = [
    ("spot_single", "initial.py"),
    ("spot_single", "baselines/uniform_progress.py"),
    ("spot_single", "baselines/on_demand.py"),
    ("spot_multi", "initial.py"),
    ("spot_multi", "baselines/uniform_progress_rr.py"),
    ("spot_multi", "baselines/on_demand.py"),
    ("txn", "baselines/given_order.py"),
    ("txn", "baselines/greedy.py"),
    ("txn", "baselines/random_best.py"),
]


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _bare_policy_calls(program: Path, calls: int) -> float:
    """Seconds for `calls` calls of the program's decide() on a fixed state (same-run floor)."""
    from problems._spot_sim.state import MultiSpotState, Scenario

    module = _load(program, "_bench_floor")
    scenario = Scenario(gap_s=600, deadline_s=600 * 312, task_s=172800, restart_overhead_s=720,
                        on_demand_price=3.06, spot_price=0.9731, num_regions=2)
    state = MultiSpotState(scenario, 2)
    state._avail_now, state._price_now, state._avail = b"\x01\x01", (1.0, 1.0), 1
    decide = module.Policy(scenario).decide
    start = time.perf_counter()
    for _ in range(calls):
        decide(state)
    return time.perf_counter() - start


def _policy_calls(problem: str, program: Path, stage: str) -> int | None:
    """How many decide() calls a spot evaluation makes (counted by wrapping the policy)."""
    if not problem.startswith("spot_"):
        return None
    evaluator = _load(REPO / "problems" / problem / "evaluate.py", "_bench_count")
    module = _load(program, "_bench_count_prog")
    count = 0
    for run in evaluator.RUNS[stage]:
        decide = module.Policy(run.scenario).decide

        def counting(state, decide=decide):
            nonlocal count
            count += 1
            return decide(state)
        evaluator._run_one(counting, run)
    return count


def _cpu() -> float:
    """CPU seconds of this process and its reaped children (a local candidate's processes)."""
    import resource

    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(
        resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _in_process_seconds(problem: str, program: Path, stage: str
                        ) -> tuple[float, float, float] | None:
    """(wall seconds, score, CPU seconds) of a spot problem's stage with the policy in the
    evaluator's process, as before the judge/candidate split (the old path)."""
    if not problem.startswith("spot_"):
        return None
    from problems._spot_sim.evaluation import evaluate_policy

    evaluator = _load(REPO / "problems" / problem / "evaluate.py", "_bench_old")
    start, cpu = time.perf_counter(), _cpu()
    result = evaluate_policy(str(program), evaluator.RUNS[stage], evaluator._run_one,
                             evaluator.OPTIMUM)
    if stage == "full" and hasattr(evaluator, "LEADERBOARD_RUNS"):   # spot_single's second grid
        evaluate_policy(str(program), evaluator.LEADERBOARD_RUNS, evaluator._run_one, {})
    return time.perf_counter() - start, result["score"], _cpu() - cpu


def _timed_evaluation(evaluator, program: Path, stage: str) -> tuple[float, dict, float]:
    """(wall seconds, result, CPU seconds) of one `evaluate(program, stage)`."""
    start, cpu = time.perf_counter(), _cpu()
    result = evaluator.evaluate(str(program), stage)
    return time.perf_counter() - start, result, _cpu() - cpu


def _load_average() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv: list[str]) -> None:
    repeat = 3
    if argv[:1] == ["--repeat"]:
        repeat, argv = max(1, int(argv[1])), argv[2:]
    selected = argv
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})   # one core, as the target says
    entries = [e for e in ENTRIES if not selected or e[0] in selected]
    print(f"{_load_average()}; old and new: fastest of {repeat}", flush=True)
    print(f"{'problem':<12} {'program':<32} {'stage':<6} {'seconds':>8} {'/3s':>6} "
          f"{'calls':>8} {'/floor':>7} {'old s':>7} {'new/old':>7} {'CPU new/old':>11}  score")
    for i, (problem, rel) in enumerate(entries):
        spec = load_problem(REPO / "problems" / problem)
        stage = spec.stages[-1].name
        program = spec.root / rel
        evaluator = _load(spec.evaluator_path, f"_bench_eval_{i}")
        seconds, result, cpu = _timed_evaluation(evaluator, program, stage)
        old = _in_process_seconds(problem, program, stage)
        for _ in range(repeat - 1 if old else 0):  # alternately, so both see the same load
            again = _timed_evaluation(evaluator, program, stage)
            seconds, cpu = min(seconds, again[0]), min(cpu, again[2])
            old_again = _in_process_seconds(problem, program, stage)
            old = (min(old[0], old_again[0]), old[1], min(old[2], old_again[2]))
        calls = _policy_calls(problem, program, stage)
        floor = f"{seconds / _bare_policy_calls(program, calls):7.1f}" if calls else f"{'-':>7}"
        # On a busy machine wall time mostly measures waiting for a core (the judge, the
        # candidate's host and the candidate hand each step over); CPU is what an idle one pays.
        versus = (f"{old[0]:7.3f} {seconds / old[0]:6.2f}x {cpu / old[2]:10.2f}x" if old
                  else f"{'-':>7} {'-':>7} {'-':>11}")
        same = "" if old is None or old[1] == result["score"] else f" (old score {old[1]:.4f})"
        print(f"{problem:<12} {rel:<32} {stage:<6} {seconds:8.3f} {seconds / TARGET_S:6.2f} "
              f"{calls if calls else '-':>8} {floor} {versus}  {result['score']:.4f}"
              f"{'' if result['valid'] else ' (invalid)'}{same}", flush=True)
    print(_load_average())


if __name__ == "__main__":
    main(sys.argv[1:])

"""The `serving` problem: stage cost, and how the baselines rank as KV memory gets tighter.

    python benchmarks/serving_problem.py [--memory 1.0 0.5 0.33] [--old-ref REF]

- stages: the quick and full stages of round robin, Llumnix and the initial program, old
  against new in one run. Old: the in-process evaluator of `--old-ref` (its problems/serving,
  taken with `git archive`, run in a child process: the policy imported into the evaluator's
  process). New: this tree's `judge` with the policy in separate local processes (one per
  load level of a trace; no sandbox: the channel and the lockstep are what is timed). Printed per row: the score and whether
  every metric of the old evaluator's is the same in the new one, wall seconds, CPU seconds
  (new: the judge's + the candidate's process and its host's) and new/old ratios.
- memory: for each KV-memory fraction of the default instance, the full stage's scenarios are
  rebuilt (capacity re-measured) and every baseline, plus Llumnix without migration, is run.
  Printed per scenario: P99 TTFT, mean E2E, P99 E2E and preemptions, relative to round robin
  in the same run, so the effect of migration (Llumnix vs Llumnix without it) is visible at
  each load level.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from problems.serving.cluster import DEFAULT_CONFIG  # noqa: E402
from problems.serving.run import bound, simulate  # noqa: E402
from problems.serving.scenarios import STAGES, make_scenarios  # noqa: E402

PROBLEM = ROOT / "problems" / "serving"


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# The last commit whose serving evaluator ran the policy in the evaluator's process (issue 24).
IN_PROCESS_REF = "524c011b2853c6601e4600b86f9a2cc3d61c9fe3"
STAGE_PROGRAMS = ("baselines/round_robin.py", "baselines/llumnix.py", "initial.py")
_OLD_RUNNER = """
import importlib.util, json, sys, time
spec = importlib.util.spec_from_file_location("old_serving_evaluate", sys.argv[1])
evaluator = importlib.util.module_from_spec(spec)
spec.loader.exec_module(evaluator)
out = []
for program, stage in json.loads(sys.argv[2]):
    wall, cpu = time.perf_counter(), time.process_time()
    result = evaluator.evaluate(program, stage)
    out.append({"score": result["score"], "metrics": result["metrics"],
                "wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu})
print(json.dumps(out))
"""


def _old(ref: str, jobs: list[tuple[str, str]]) -> list[dict]:
    """The old evaluator (problems/serving at `ref`) on every job, in one child process."""
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "problems/__init__.py",
                                  "problems/serving"], check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([tmp, str(ROOT)])}
        done = subprocess.run([sys.executable, "-c", _OLD_RUNNER,
                               str(Path(tmp) / "problems" / "serving" / "evaluate.py"),
                               json.dumps(jobs)], env=env, check=True, capture_output=True,
                              text=True, cwd=tmp)
        return json.loads(done.stdout)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _new(jobs: list[tuple[str, str]]) -> list[dict]:
    evaluator = _load(PROBLEM / "evaluate.py", "_bench_serving_eval")
    out = []
    for program, stage in jobs:
        wall, cpu, children = time.perf_counter(), time.process_time(), _children_cpu()
        result = evaluator.evaluate(program, stage)
        out.append({"score": result["score"], "metrics": result["metrics"],
                    "wall": time.perf_counter() - wall,
                    "judge_cpu": time.process_time() - cpu,
                    "candidate_cpu": result["metrics"].get("candidate_cpu_s", 0.0),
                    "cpu": time.process_time() - cpu + _children_cpu() - children})
    return out


def _same_figures(old: dict, new: dict) -> bool:
    timing = {"evaluation_seconds", "candidate_cpu_s", "messages"}
    return all(new["metrics"].get(k) == v for k, v in old["metrics"].items()
               if k not in timing) and old["score"] == new["score"]


def stages(ref: str) -> None:
    jobs = [(str(PROBLEM / program), stage) for stage in ("quick", "full")
            for program in STAGE_PROGRAMS]
    old, new = _old(ref, jobs), _new(jobs)
    print(f"old: {ref[:12]}'s in-process evaluator; new: this tree's judge, policy in its own "
          f"process (CPU = judge + candidate + its host)")
    print(f"{'stage':5s} {'program':24s} {'score':>8s} {'same':>4s} | {'old wall':>8s} "
          f"{'old cpu':>7s} | {'new wall':>8s} {'new cpu':>7s} {'judge':>6s} {'cand':>6s} "
          f"{'msgs':>6s} | {'wall x':>6s} {'cpu x':>6s}")
    for (program, stage), o, n in zip(jobs, old, new, strict=True):
        name = Path(program).relative_to(PROBLEM).as_posix()
        print(f"{stage:5s} {name:24s} {n['score']:8.4f} {'yes' if _same_figures(o, n) else 'NO':>4s} | "
              f"{o['wall']:8.2f} {o['cpu']:7.2f} | {n['wall']:8.2f} {n['cpu']:7.2f} "
              f"{n['judge_cpu']:6.2f} {n['candidate_cpu']:6.2f} {n['metrics'].get('messages', 0):6d} | "
              f"{n['wall'] / o['wall']:6.2f} {n['cpu'] / o['cpu']:6.2f}")


def memory(fractions: list[float]) -> None:
    baselines = {p.stem: _load(p, f"_bench_serving_{p.stem}")
                 for p in sorted((PROBLEM / "baselines").glob("*.py"))}
    llumnix = baselines["llumnix"]
    policies = {name: (m.dispatch, getattr(m, "migrate", None)) for name, m in baselines.items()}
    policies["llumnix_no_migration"] = (llumnix.dispatch, None)
    for fraction in fractions:
        spec = replace(DEFAULT_CONFIG.spec,
                       total_blocks=int(DEFAULT_CONFIG.spec.total_blocks * fraction))
        config = replace(DEFAULT_CONFIG, spec=spec)
        print(f"\nKV memory x{fraction} ({spec.total_blocks} blocks per instance); "
              f"figures relative to round robin (P99 TTFT, mean E2E, P99 E2E), preemptions")
        for scenario in make_scenarios(STAGES["full"], config):
            rr = simulate(scenario, *policies["round_robin"], config=config)
            rows = {"bound": bound(scenario, config)}
            rows.update({name: simulate(scenario, *fns, config=config)
                         for name, fns in policies.items() if name != "round_robin"})
            print(f"  {scenario.key:9s} round robin: P99 TTFT {rr.ttft_p99:7.3f}s  mean E2E "
                  f"{rr.e2e_mean:7.3f}s  P99 E2E {rr.e2e_p99:7.3f}s  preemptions {rr.preemptions}")
            for name, fig in rows.items():
                print(f"    {name:22s} {fig.ttft_p99 / rr.ttft_p99:6.3f} {fig.e2e_mean / rr.e2e_mean:6.3f} "
                      f"{fig.e2e_p99 / rr.e2e_p99:6.3f}  {fig.preemptions:6d}  migrations {fig.migrations}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--memory", type=float, nargs="*", default=[1.0, 0.5, 0.33])
    parser.add_argument("--skip-stages", action="store_true")
    parser.add_argument("--old-ref", default=IN_PROCESS_REF,
                        help="the git ref whose in-process evaluator is the old one (default: "
                             "the last commit before serving moved to judge and candidate)")
    args = parser.parse_args()
    if not args.skip_stages:
        stages(args.old_ref)
    if args.memory:
        memory(args.memory)


if __name__ == "__main__":
    main()

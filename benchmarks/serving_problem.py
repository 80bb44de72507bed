"""The `serving` problem: stage cost, and how the baselines rank as KV memory gets tighter.

    python benchmarks/serving_problem.py [--memory 1.0 0.5 0.33]

- stages: CPU seconds of the quick and full stages (round robin and Llumnix, through the
  problem's evaluate.py), as a fraction of their budgets (2 s and 20 s).
- memory: for each KV-memory fraction of the default instance, the full stage's scenarios are
  rebuilt (capacity re-measured) and every baseline, plus Llumnix without migration, is run.
  Printed per scenario: P99 TTFT, mean E2E, P99 E2E and preemptions, relative to round robin
  in the same run, so the effect of migration (Llumnix vs Llumnix without it) is visible at
  each load level.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
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


def stages() -> None:
    evaluator = _load(PROBLEM / "evaluate.py", "_bench_serving_eval")
    budgets = {"quick": 2.0, "full": 20.0}
    for name in ("round_robin", "llumnix"):
        for stage, budget in budgets.items():
            start = time.process_time()
            result = evaluator.evaluate(str(PROBLEM / "baselines" / f"{name}.py"), stage)
            cpu = time.process_time() - start
            print(f"stage {stage:5s} {name:12s} score {result['score']:8.4f}  cpu {cpu:6.2f}s "
                  f"= {cpu / budget:.2f} of the {budget:.0f} s budget")


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
    args = parser.parse_args()
    if not args.skip_stages:
        stages()
    memory(args.memory)


if __name__ == "__main__":
    main()

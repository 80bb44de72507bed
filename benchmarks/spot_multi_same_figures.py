"""spot_multi's judge against the in-process evaluator: the same figures, evaluation by evaluation.

Usage: python benchmarks/spot_multi_same_figures.py

For the initial program and every baseline, both stages and both rule sets (ours, the
leaderboard's), runs the policy in the evaluator's own process (`evaluate_policy` with
`run_multi` / `run_multi_leaderboard` per run: the path before the judge/candidate split) and
the judge against a candidate process (`evaluate`), and compares score, validity and every
metric but the timing ones (`evaluation_seconds`, and `candidate_cpu_s`, which only the judge
reports). Prints one line per evaluation and "N of N the same"; exits 1 on any difference.
A check rather than a test: 20 full evaluations take about 10 s of CPU.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from problems._spot_sim.evaluation import evaluate_policy  # noqa: E402

HERE = REPO / "problems" / "spot_multi"
TIMING = {"evaluation_seconds", "candidate_cpu_s"}


def _evaluator():
    spec = importlib.util.spec_from_file_location("_same_figures_eval", HERE / "evaluate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _figures(result: dict) -> tuple:
    metrics = {k: v for k, v in result["metrics"].items() if k not in TIMING}
    return result["score"], result["valid"], metrics


def main() -> int:
    ev = _evaluator()
    programs = [HERE / "initial.py", *sorted((HERE / "baselines").glob("[!_]*.py"))]
    same = total = 0
    for program in programs:
        for stage in ("quick", "full"):
            for rules in ("ours", "leaderboard"):
                ours = rules == "ours"
                local = evaluate_policy(str(program), ev.RUNS[stage],
                                        ev._run_one if ours else ev._run_one_leaderboard,
                                        ev.OPTIMUM if ours else {}, drop_failed_runs=not ours)
                judged = ev.evaluate(str(program), stage, rules=rules)
                equal = _figures(local) == _figures(judged)
                same += equal
                total += 1
                print(f"{program.stem:<24} {stage:<6} {rules:<12} "
                      f"{'same' if equal else 'DIFFERENT'}  score {judged['score']:.4f}"
                      f"{'' if judged['valid'] else ' (invalid)'}", flush=True)
                if not equal:
                    print(f"    in-process {_figures(local)}\n    judge      {_figures(judged)}")
    print(f"{same} of {total} the same")
    return 0 if same == total else 1


if __name__ == "__main__":
    sys.exit(main())

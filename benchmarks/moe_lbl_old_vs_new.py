"""moe_lbl before and after the judge/candidate split (issue 24), measured in one run.

Usage:
    git archive main problems evaluators evolve | tar -x -C /tmp/moe_old   # the old code
    python benchmarks/moe_lbl_old_vs_new.py --old-root /tmp/moe_old [--config cpu]
        [--stages full seeds] [--programs initial no_balancing ...] [--json OUT]

For every program and stage, the old evaluator (`evaluate(program, stage)` of the tree under
--old-root: the candidate imported into the evaluator's process) and the new one (this tree's
`evaluate`: the judge here, the candidate in a separate local process) run one after the other,
each in a fresh interpreter with the evaluator imported first (not timed). Prints per seed the
score, validation cross-entropy and imbalance of both and their difference, and per stage the
wall seconds of the `evaluate` call and the CPU seconds of the evaluator's process plus its
children (the new candidate process), old against new.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
PROBLEM = REPO / "problems" / "moe_lbl"
SEEDS = {"quick": (0,), "full": (0, 1), "seeds": (2, 3)}
FIGURES = ("score", "val_ce", "imbalance_l1")

_RUN_ONE = """
import json, resource, sys, time
from problems.moe_lbl.evaluate import evaluate
program, stage, config = sys.argv[1:4]
def cpu():
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime
cpu0, wall0 = cpu(), time.perf_counter()
out = evaluate(program, stage, config_name=config)
wall, used = time.perf_counter() - wall0, cpu() - cpu0
print("RESULT " + json.dumps({"valid": out["valid"], "score": out["score"],
      "metrics": out["metrics"], "feedback": out["feedback"][:300], "wall_s": wall,
      "cpu_s": used}))
"""


def programs() -> dict[str, Path]:
    found = {"initial": PROBLEM / "initial.py"}
    found.update({p.stem: p for p in sorted((PROBLEM / "baselines").glob("*.py"))})
    return found


def run_one(root: Path, program: Path, stage: str, config: str) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(root)}
    proc = subprocess.run([sys.executable, "-c", _RUN_ONE, str(program), stage, config],
                          cwd=root, env=env, capture_output=True, text=True, check=False)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    raise RuntimeError(f"{root}: {program.name} {stage} failed:\n{proc.stderr[-3000:]}")


def seed_figures(out: dict[str, Any], stage: str) -> dict[int, dict[str, float]]:
    metrics = out["metrics"]
    return {seed: {key: metrics.get(f"{key}_seed{seed}", float("nan")) for key in FIGURES}
            for seed in SEEDS[stage]}


def _candidate_s(out: dict[str, Any]) -> float:
    metrics = out["metrics"]
    return float(metrics.get("candidate_seconds",
                             metrics.get("candidate_seconds_seeds_stage", float("nan"))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--old-root", type=Path, required=True,
                        help="a tree holding the old problems/, evaluators/ and evolve/")
    parser.add_argument("--config", default="cpu")
    parser.add_argument("--stages", nargs="+", default=["full", "seeds"])
    parser.add_argument("--programs", nargs="+", default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    chosen = programs()
    if args.programs:
        chosen = {name: chosen[name] for name in args.programs}
    rows: list[dict[str, Any]] = []
    print(f"config {args.config}; old = {args.old_root}, new = {REPO}")
    print(f"{'program':14} {'seed':>4} {'score old':>11} {'score new':>11} {'diff':>9} "
          f"{'val CE old':>10} {'val CE new':>10} {'imb old':>8} {'imb new':>8}")
    for name, path in chosen.items():
        for stage in args.stages:
            old = run_one(args.old_root, path, stage, args.config)
            new = run_one(REPO, path, stage, args.config)
            row = {"program": name, "stage": stage, "old": old, "new": new}
            rows.append(row)
            if not (old["valid"] and new["valid"]):
                print(f"{name:14} {stage}: valid old {old['valid']} new {new['valid']}: "
                      f"{old['feedback']} | {new['feedback']}")
                continue
            a, b = seed_figures(old, stage), seed_figures(new, stage)
            for seed in SEEDS[stage]:
                print(f"{name:14} {seed:>4} {a[seed]['score']:>11.6f} {b[seed]['score']:>11.6f} "
                      f"{b[seed]['score'] - a[seed]['score']:>9.2e} "
                      f"{a[seed]['val_ce']:>10.6f} {b[seed]['val_ce']:>10.6f} "
                      f"{a[seed]['imbalance_l1']:>8.5f} {b[seed]['imbalance_l1']:>8.5f}")
            print(f"{'':14} {stage} stage: wall {old['wall_s']:.1f} s -> {new['wall_s']:.1f} s "
                  f"(x{new['wall_s'] / old['wall_s']:.2f}), CPU {old['cpu_s']:.1f} s -> "
                  f"{new['cpu_s']:.1f} s (x{new['cpu_s'] / old['cpu_s']:.2f}); candidate "
                  f"{_candidate_s(old):.2f} s -> {_candidate_s(new):.2f} s")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()

"""Score the initial program and every baseline over several seeds and print the spread.

    python -m problems.moe_lbl.run_baselines [--seeds 0 1 2] [--stage full] [--jobs 2]
        [--config cpu|gpu|tiny] [--trace-dir DIR] [--json OUT.json] [--write-reference]

Each (program, seed) is one call of `evaluate.evaluate` for that seed alone (`only_seed`) in its
own process. `--trace-dir` also writes every run's per-step expert loads in
vLLM's `load_history` format (`DIR/<program>_seed<N>.json`). `--write-reference` stores the
global-batch program's score per seed in `reference.json` for this configuration (the table the
evaluator's `paired_diff_vs_global_batch` is taken against). The summary prints every program's
paired difference to the reference and to `no_balancing` (same seed), with the signal-to-noise
ratio the README states.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
COLUMNS = ("val_ce", "imbalance_l1", "max_vio_global", "max_vio_batch", "max_vio_batch_train",
           "micro_imbalance_l1", "specialisation_mi_bits", "drop_fraction",
           "train_drop_fraction", "score", "evaluation_seconds")


def _run_one(job: tuple[str, str, int, str, str | None, str | None]) -> dict[str, Any]:
    name, path, seed, stage, config, trace_dir = job
    from problems.moe_lbl.evaluate import evaluate  # imported in the worker, as the harness does

    trace = None if trace_dir is None else Path(trace_dir) / f"{name}_seed{seed}.json"
    started = time.perf_counter()
    cpu_started = time.process_time()
    result = evaluate(path, stage, seed=seed, config_name=config, trace_path=trace,
                      only_seed=True)
    result["wall_s"] = time.perf_counter() - started
    result["cpu_s"] = time.process_time() - cpu_started
    return {"program": name, "seed": seed, **result}


def programs() -> dict[str, Path]:
    found = {"initial": HERE / "initial.py"}
    found.update({p.stem: p for p in sorted((HERE / "baselines").glob("*.py"))
                  if not p.name.startswith("_")})
    return found


def summarise(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for name in dict.fromkeys(r["program"] for r in runs):
        mine = [r for r in runs if r["program"] == name]
        row: dict[str, Any] = {"program": name, "seeds": [r["seed"] for r in mine],
                               "valid": all(r["valid"] for r in mine)}
        for key in COLUMNS:
            values = [r["metrics"][key] for r in mine if key in r["metrics"]]
            if values:
                row[key] = {"mean": statistics.fmean(values),
                            "std": statistics.stdev(values) if len(values) > 1 else 0.0,
                            "min": min(values), "max": max(values)}
        row["cpu_s"] = statistics.fmean(r["cpu_s"] for r in mine)
        row["wall_s"] = statistics.fmean(r["wall_s"] for r in mine)
        rows.append(row)
    return rows


def paired_differences(runs: list[dict[str, Any]], reference: str) -> dict[str, dict[str, float]]:
    """Score minus the reference's score on the same seed, per program: seeds share data order
    and initialisation, so this spread (not the raw one) says whether a difference is real.
    `std` is the sample standard deviation over seeds of the per-seed difference (the paired
    noise of one seed); `std_mean` = std / sqrt(n), that of the n-seed mean; `ratio` = mean / std
    and `ratio_mean` = mean / std_mean; `ratio_full` and `ratio_score` divide by the noise of the
    `full` stage's mean (2 seeds) and of the program's score (4 seeds), seeds taken as
    independent."""
    from problems.moe_lbl.evaluate import STAGE_SEED_OFFSETS

    full_seeds = len(STAGE_SEED_OFFSETS["full"])
    score_seeds = full_seeds + len(STAGE_SEED_OFFSETS["seeds"])
    ref = {r["seed"]: r["score"] for r in runs if r["program"] == reference and r["valid"]}
    out = {}
    for name in dict.fromkeys(r["program"] for r in runs):
        diffs = [r["score"] - ref[r["seed"]] for r in runs
                 if r["program"] == name and r["valid"] and r["seed"] in ref]
        if diffs and name != reference:
            mean = statistics.fmean(diffs)
            std = statistics.stdev(diffs) if len(diffs) > 1 else 0.0
            std_mean = std / len(diffs) ** 0.5
            out[name] = {"mean": mean, "std": std, "std_mean": std_mean,
                         "ratio": mean / std if std else math.inf,
                         "ratio_mean": mean / std_mean if std_mean else math.inf,
                         "ratio_full": mean / std * full_seeds ** 0.5 if std else math.inf,
                         "ratio_score": mean / std * score_seeds ** 0.5 if std else math.inf,
                         "min": min(diffs), "max": max(diffs), "n": len(diffs),
                         "per_seed": diffs}
    return out


def write_reference(runs: list[dict[str, Any]], config_name: str, path: Path) -> dict[str, float]:
    """Store the reference program's score per seed for `config_name` (merged with the seeds
    already there when the configuration is unchanged, replaced otherwise)."""
    from problems.moe_lbl.evaluate import REFERENCE_PROGRAM, config_fingerprint
    from problems.moe_lbl.trainer import CONFIGS

    fingerprint = config_fingerprint(CONFIGS[config_name])
    scores = {str(r["seed"]): r["score"] for r in runs
              if r["program"] == REFERENCE_PROGRAM and r["valid"]}
    if not scores:
        raise SystemExit(f"--write-reference needs valid runs of {REFERENCE_PROGRAM}")
    table = json.loads(path.read_text()) if path.is_file() else {}
    table.setdefault("program", REFERENCE_PROGRAM)
    configs = table.setdefault("configs", {})
    old = configs.get(config_name, {})
    kept = old.get("scores", {}) if old.get("fingerprint") == fingerprint else {}
    merged = dict(sorted({**kept, **scores}.items(), key=lambda kv: int(kv[0])))
    configs[config_name] = {"fingerprint": fingerprint, "scores": merged}
    path.write_text(json.dumps(table, indent=1, sort_keys=True) + "\n")
    return merged


def print_table(rows: list[dict[str, Any]]) -> None:
    head = f"{'program':<14}" + "".join(f"{c[:14]:>22}" for c in COLUMNS[:-1]) + \
        f"{'cpu_s':>8}{'wall_s':>8}"
    print(head)
    for row in rows:
        cells = []
        for c in COLUMNS[:-1]:
            s = row.get(c)
            cells.append(f"{s['mean']:>13.4f} ± {s['std']:.4f}" if s else f"{'-':>22}")
        print(f"{row['program']:<14}" + "".join(f"{x:>22}" for x in cells) +
              f"{row['cpu_s']:>8.1f}{row['wall_s']:>8.1f}")
    print("(mean ± sample standard deviation over the seeds)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--stage", default="full", choices=["quick", "full"])
    parser.add_argument("--config", default=None, choices=["cpu", "gpu", "tiny"],
                        help="default: gpu when CUDA is available, else cpu")
    parser.add_argument("--jobs", type=int, default=1, help="evaluations run at once")
    parser.add_argument("--only", nargs="*", help="program names to run (default: all)")
    parser.add_argument("--reference", default="global_batch",
                        help="program the paired score differences are taken against")
    parser.add_argument("--trace-dir", default=None)
    parser.add_argument("--json", default=None, help="write every run and the summary here")
    parser.add_argument("--write-reference", action="store_true",
                        help="store the reference program's per-seed scores in reference.json")
    args = parser.parse_args()
    progs = {k: v for k, v in programs().items() if not args.only or k in args.only}
    jobs = [(name, str(path), seed, args.stage, args.config, args.trace_dir)
            for name, path in progs.items() for seed in args.seeds]
    runs = []
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=args.jobs, mp_context=ctx) as pool:
        for run in pool.map(_run_one, jobs):
            m = run["metrics"]
            status = (f"score {run['score']:.4f} CE {m['val_ce']:.4f} imb "
                      f"{m['imbalance_l1']:.4f} MI {m['specialisation_mi_bits']:.4f}"
                      if run["valid"] else f"INVALID: {run['feedback']}")
            print(f"{run['program']} seed {run['seed']}: {status} "
                  f"({run['cpu_s']:.1f} s CPU, {run['wall_s']:.1f} s wall)", flush=True)
            runs.append(run)
    rows = summarise(runs)
    print_table(rows)
    paired = {}
    for reference in dict.fromkeys([args.reference, "no_balancing"]):
        paired[reference] = paired_differences(runs, reference)
        if paired[reference]:
            print(f"score minus {reference}'s score on the same seed (mean ± std over seeds; "
                  "signal / noise of one run, of the full stage's 2-seed mean, of the 4-seed "
                  "score, of the mean over these seeds):")
        for name, d in paired[reference].items():
            print(f"  {name:<14} {d['mean']:+.4f} ± {d['std']:.4f}  ratio {d['ratio']:.2f}  "
                  f"full {d['ratio_full']:.2f}  score {d['ratio_score']:.2f}  "
                  f"mean {d['ratio_mean']:.2f}  per seed "
                  + " ".join(f"{x:+.4f}" for x in d["per_seed"]))
    if args.write_reference:
        from problems.moe_lbl.trainer import pick_config

        name = args.config or ("gpu" if pick_config()[1] == "cuda" else "cpu")
        from problems.moe_lbl.evaluate import REFERENCE_PATH

        scores = write_reference(runs, name, REFERENCE_PATH)
        print(f"wrote {REFERENCE_PATH.name}: {name} seeds {', '.join(scores)}")
    if args.json:
        Path(args.json).write_text(json.dumps({"runs": runs, "summary": rows, "paired": paired},
                                              indent=1))


if __name__ == "__main__":
    main()

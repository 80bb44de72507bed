"""Evaluator of the MoE load-balancing-loss problem.

`evaluate(program_path, stage)` loads the candidate, trains the MoE language model with the
candidate's `balancing_loss` as its balancing objective (see `interface.py`), and scores the
trained model with the evaluator's own measurements:

    score = -(validation cross-entropy [nats/byte] + LAMBDA * global-batch load imbalance)

Stages: "quick" (3 optimizer steps: the outputs are scalar, finite, differentiable and of the
right shape), "full" (the whole training run, seed 0) and "seeds" (the whole run for seeds 0,
1 and 2; the score is their mean and the metrics carry the spread). The CPU configuration is
used unless CUDA is available, in which case the larger GPU configuration runs.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

import problems.moe_lbl.metrics as _metrics_module
import problems.moe_lbl.trainer as _trainer_module
from evaluators.harness_api import clock, get_function, load_candidate
from problems.moe_lbl.load_trace import write_load_history
from problems.moe_lbl.trainer import (
    CandidateFailure,
    TrainResult,
    pick_config,
    quick_config,
    train,
)

# One unit of L1 imbalance (sum_i |f_i - 1/E|) costs as much as LAMBDA nats/byte of
# cross-entropy. See README ("Why lambda").
LAMBDA = 0.1
FUNCTION = "balancing_loss"
STAGES = ("quick", "full", "seeds")
SPREAD_SEEDS = 3
SPREAD_KEYS = ("score", "val_ce", "imbalance_l1", "max_over_mean", "specialisation_mi_bits")
INVALID_SCORE = -1e9
QUICK_STEPS = 3

# Genuine objects the measurement depends on, captured before any candidate is imported; if a
# candidate rebinds one of them, its result is rejected.
_GUARDED: dict[str, tuple[object, str, object]] = {
    f"{owner.__name__}.{attr}": (owner, attr, getattr(owner, attr))
    for owner, attrs in (
        (_trainer_module, ("train", "evaluate_model", "imbalance_l1", "max_over_mean",
                           "mutual_information_bits", "check_output", "_bincount")),
        (_metrics_module, ("imbalance_l1", "max_over_mean", "mutual_information_bits")),
        (torch, ("bincount", "topk", "stack", "zeros")),
        (F, ("cross_entropy",)),
    )
    for attr in attrs
}


def _tampered() -> list[str]:
    return [name for name, (owner, attr, obj) in _GUARDED.items()
            if getattr(owner, attr, None) is not obj]


def score_of(val_ce: float, imbalance: float) -> float:
    return -(val_ce + LAMBDA * imbalance)


def _invalid(reason: str) -> dict[str, Any]:
    return {"score": INVALID_SCORE, "valid": False, "metrics": {}, "feedback": reason}


def _run_seed(loss_fn: Any, config: Any, seed: int, device: str
              ) -> tuple[dict[str, float], TrainResult] | str:
    """Train and measure one seed; a string is the reason the program is invalid."""
    start = clock()
    try:
        result = train(loss_fn, config, seed, device=device, clock=clock)
    except CandidateFailure as exc:
        return str(exc)
    elapsed = clock() - start
    tampered = _tampered()
    if tampered:
        return ("the program changed the evaluator's own functions "
                f"({', '.join(tampered)}); a balancing loss must not touch them")
    m = result.metrics
    if not all(math.isfinite(v) for v in m.values()):
        bad = sorted(k for k, v in m.items() if not math.isfinite(v))
        return f"training diverged: non-finite {', '.join(bad)}"
    metrics = {**m, "score": score_of(m["val_ce"], m["imbalance_l1"]), "lambda": LAMBDA,
               "seed": float(seed), "evaluation_seconds": elapsed}
    return metrics, result


def _feedback(label: str, m: dict[str, float], notes: list[str]) -> str:
    domains = ", ".join(f"{k.removeprefix('val_ce_')} {v:.3f}" for k, v in m.items()
                        if k.startswith("val_ce_") and not k.endswith("_std"))
    text = (
        f"{label}: {int(m['steps'])} steps. Validation cross-entropy {m['val_ce']:.4f} nats/byte "
        f"({domains}). Global-batch load imbalance (sum |f_i - 1/E|) {m['imbalance_l1']:.4f}, "
        f"max/mean load {m['max_over_mean']:.3f}; single-domain micro-batch imbalance "
        f"{m['micro_imbalance_l1']:.4f}. Domain-expert mutual information "
        f"{m['specialisation_mi_bits']:.4f} bits. Score = -(CE + {LAMBDA} * imbalance) = "
        f"{m['score']:.4f}. Time inside balancing_loss: {m['candidate_seconds']:.2f} s of "
        f"{m['train_seconds']:.1f} s training."
    )
    if notes:
        text += " Note: " + "; ".join(notes) + "."
    return text


def _aggregate(per_seed: list[dict[str, float]]) -> dict[str, float]:
    """Means of every metric, plus the spread of the ones that decide the score."""
    out = {k: statistics.fmean(m[k] for m in per_seed) for k in per_seed[0] if k != "seed"}
    for key in SPREAD_KEYS:
        values = [m[key] for m in per_seed]
        out[f"{key}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
        out[f"{key}_min"], out[f"{key}_max"] = min(values), max(values)
    out["seeds"] = float(len(per_seed))
    return out


def evaluate(program_path: str, stage: str, *, seed: int = 0, config_name: str | None = None,
             trace_path: str | Path | None = None) -> dict[str, Any]:
    """Score one program. `seed`, `config_name` and `trace_path` are for scripts and tests;
    the sandboxed harness passes only the first two arguments. The "seeds" stage trains seeds
    seed, seed+1, seed+2 and scores their mean."""
    if stage not in STAGES:
        raise ValueError(f"unknown stage '{stage}'; this problem has stages {STAGES}")
    module = load_candidate(program_path)  # CandidateLoadError goes to the harness as is
    loss_fn = get_function(module, FUNCTION)
    config, device = pick_config(config_name)
    if stage == "quick":
        config = quick_config(config, QUICK_STEPS)
    seeds = [seed + i for i in range(SPREAD_SEEDS)] if stage == "seeds" else [seed]
    per_seed: list[dict[str, float]] = []
    notes: list[str] = []
    for current in seeds:
        outcome = _run_seed(loss_fn, config, current, device)
        if isinstance(outcome, str):
            return _invalid(outcome if len(seeds) == 1 else f"seed {current}: {outcome}")
        metrics, result = outcome
        per_seed.append(metrics)
        notes = result.notes
        if trace_path is not None and current == seed:
            write_load_history(trace_path, result.load_history, source="problems/moe_lbl",
                               program=Path(program_path).name, seed=current, stage=stage,
                               top_k=config.model.top_k)
    if len(per_seed) == 1:
        metrics = per_seed[0]
        return {"score": metrics["score"], "valid": True, "metrics": metrics,
                "feedback": _feedback(stage, metrics, notes)}
    metrics = _aggregate(per_seed)
    spread = (f" Over seeds {seeds}: score {metrics['score']:.4f} ± {metrics['score_std']:.4f}, "
              f"CE {metrics['val_ce']:.4f} ± {metrics['val_ce_std']:.4f}, imbalance "
              f"{metrics['imbalance_l1']:.4f} ± {metrics['imbalance_l1_std']:.4f} "
              "(mean ± standard deviation).")
    return {"score": metrics["score"], "valid": True, "metrics": metrics,
            "feedback": _feedback(f"{stage} (mean of {len(seeds)} seeds)", metrics, notes) + spread}

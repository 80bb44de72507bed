"""Evaluator of the transaction-scheduling problem.

The candidate returns an order for each workload; we check it is a permutation and compute the
makespan ourselves with the execution model (the published evaluator trusted the makespan the
candidate reported). Score: 0 for the given order, 1 at the lower bound (sum over workloads).
"""

from __future__ import annotations

import traceback
from pathlib import Path

from evaluators.harness_api import clock, get_function, load_candidate
from problems.txn.model import Workload, check_order, load_workloads, lower_bound, makespan

HERE = Path(__file__).resolve().parent
# Loaded (and the reference figures computed) before any candidate code is imported.
WORKLOADS = load_workloads(HERE / "data" / "workloads.json")
GIVEN = {name: makespan(txns, range(len(txns))) for name, txns in WORKLOADS.items()}
BOUND = {name: lower_bound(txns) for name, txns in WORKLOADS.items()}
GIVEN_TOTAL = sum(GIVEN.values())    # 537
BOUND_TOTAL = sum(BOUND.values())    # 46
STAGES = {"full": tuple(WORKLOADS)}


def _fail(message: str, metrics: dict | None = None) -> dict:
    return {"score": 0.0, "valid": False, "metrics": metrics or {}, "feedback": message}


def evaluate(program_path: str, stage: str, *, _check=check_order, _makespan=makespan,
             _clock=clock) -> dict:
    # The references above are bound when this module is imported, before any candidate runs,
    # so a candidate that rebinds names in problems.txn.model changes nothing here.
    if stage not in STAGES:
        return _fail(f"unknown stage {stage!r}; this problem has stages {sorted(STAGES)}")
    try:
        module = load_candidate(program_path)
        schedule = get_function(module, "schedule")
    except Exception as exc:  # syntax, import or a missing function: a recorded failure
        return _fail(f"could not load the program: {exc}")

    metrics: dict[str, float] = {}
    total = 0
    candidate_s = 0.0
    for name in STAGES[stage]:
        txns = WORKLOADS[name]
        start = _clock()
        try:
            order = schedule(Workload(name, txns))
        except Exception:
            tail = traceback.format_exc(limit=-3)
            return _fail(f"schedule() raised on {name}:\n{tail}", metrics)
        candidate_s += _clock() - start
        try:
            order = _check(order, len(txns))
        except ValueError as exc:
            return _fail(f"{name}: {exc}", metrics)
        span = _makespan(txns, order)
        metrics[f"makespan_{name}"] = span
        total += span

    given = sum(GIVEN[n] for n in STAGES[stage])
    bound = sum(BOUND[n] for n in STAGES[stage])
    score = (given - total) / (given - bound)
    metrics.update({
        "total_makespan": total,
        "given_order_makespan": given,
        "lower_bound": bound,
        "gap_to_bound": total - bound,
        "candidate_seconds": round(candidate_s, 4),
    })
    parts = ", ".join(f"{n}={metrics[f'makespan_{n}']}" for n in STAGES[stage])
    feedback = (f"total makespan {total} ({parts}); the given order gives {given}, "
                f"the lower bound (longest transaction per workload) is {bound}")
    return {"score": score, "valid": True, "metrics": metrics, "feedback": feedback}

"""Judge of the transaction-scheduling problem.

The candidate runs in its own process; for each workload the judge sends the transactions as
text and the candidate's process rebuilds its `Workload` (with the makespan helpers) from them.
The candidate returns an order; we check it is a permutation and compute the makespan ourselves
with the execution model (the published evaluator trusted the makespan the candidate reported).
Score: 0 for the given order, 1 at the lower bound (sum over workloads).
"""

from __future__ import annotations

from pathlib import Path

from evaluators.harness_api import Built, Candidate, CandidateError, evaluate_locally
from problems.txn.model import check_order, load_workloads, lower_bound, makespan

HERE = Path(__file__).resolve().parent
# Loaded (and the reference figures computed) before any candidate code is imported.
WORKLOADS = load_workloads(HERE / "data" / "workloads.json")
GIVEN = {name: makespan(txns, range(len(txns))) for name, txns in WORKLOADS.items()}
BOUND = {name: lower_bound(txns) for name, txns in WORKLOADS.items()}
GIVEN_TOTAL = sum(GIVEN.values())    # 537
BOUND_TOTAL = sum(BOUND.values())    # 46
STAGES = {"full": tuple(WORKLOADS)}
# The ADRS Leaderboard scores 0-100 against an "effective optimum" a tenth of the way from the
# lower bound to the given order: 46 + 0.1 x (537 - 46) = 95.1. Reported for comparison only.
LEADERBOARD_OPTIMUM_SHARE = 0.1


def leaderboard_score(total: float, given: float, bound: float) -> float:
    """0 at the given order, 100 at the leaderboard's effective optimum, clamped to 0-100."""
    effective = bound + LEADERBOARD_OPTIMUM_SHARE * (given - bound)
    return min(100.0, max(0.0, 100.0 * (given - total) / (given - effective)))


def _fail(message: str, metrics: dict | None = None) -> dict:
    return {"score": 0.0, "valid": False, "metrics": metrics or {}, "feedback": message}


def judge(candidate: Candidate, stage: str) -> dict:
    if stage not in STAGES:
        return _fail(f"unknown stage {stage!r}; this problem has stages {sorted(STAGES)}")
    metrics: dict[str, float] = {}
    total = 0
    candidate_s = 0.0
    for name in STAGES[stage]:
        txns = WORKLOADS[name]
        workload = Built("problems.txn.model:workload_from_text", name,
                         [[t.name, t.text] for t in txns])
        try:
            order = candidate.call("schedule", workload)
        except CandidateError as exc:
            return _fail(f"schedule() on {name}: {exc}", metrics)
        candidate_s += candidate.last_cpu_s
        try:
            order = check_order(order, len(txns))
        except ValueError as exc:
            return _fail(f"{name}: {exc}", metrics)
        span = makespan(txns, order)
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
        "leaderboard_score": round(leaderboard_score(total, given, bound), 2),
    })
    parts = ", ".join(f"{n}={metrics[f'makespan_{n}']}" for n in STAGES[stage])
    feedback = (f"total makespan {total} ({parts}); the given order gives {given}, "
                f"the lower bound (longest transaction per workload) is {bound}")
    return {"score": score, "valid": True, "metrics": metrics, "feedback": feedback}


def evaluate(program_path: str, stage: str) -> dict:
    """The judge against a local, unsandboxed candidate process (scripts and tests)."""
    return evaluate_locally(judge, program_path, stage)

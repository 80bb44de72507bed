"""Judge of the cloudcast problem: stages "quick" (two jobs) and "full" (the five jobs).

The candidate runs in its own process. For every job the judge sends the source, destinations,
partitions and the network's edges as plain tuples; the candidate's process rebuilds its fresh
`networkx.DiGraph` from them (`build_graph`) and calls `search_algorithm(src, dsts, G,
num_partitions)`, which returns one route per destination and partition. The routes come back
as data; they are copied into plain data, checked (an invalid route makes the program invalid,
naming the job, destination and partition) and simulated with the leaderboard's rules. Score
(full) = the ADRS Leaderboard's 0-100 score of the total cost.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from evaluators.harness_api import Built, Candidate, CandidateError, evaluate_locally
from problems.cloudcast.bound import job_bound
from problems.cloudcast.network import JOB_NAMES, load_edges, load_jobs
from problems.cloudcast.routes import SHAPE, InvalidRoutes, check_routes, copy_routes
from problems.cloudcast.scoring import leaderboard_score, share_of_gap
from problems.cloudcast.simulate import edge_table, simulate

HERE = Path(__file__).resolve().parent
FUNCTION = "search_algorithm"
# Loaded (and the references computed) before any candidate code is imported.
EDGES = load_edges(HERE / "data")
TABLE = edge_table(EDGES)
NODES = frozenset(u for u, _ in TABLE) | frozenset(v for _, v in TABLE)
JOBS = load_jobs(HERE / "data")
DIRECT = {name: simulate(job, {d: [[job.src, d]] * job.num_partitions for d in job.dsts},
                         TABLE).total_cost for name, job in JOBS.items()}
BOUNDS = {name: job_bound(job, EDGES).total_cost for name, job in JOBS.items()}
# One job within a provider and one across all three: a cheap check of the routes' validity.
STAGES = {"quick": ("intra_aws", "inter_agz"), "full": JOB_NAMES}


def _graph() -> Built:
    """The candidate's graph, made in its process from plain edge tuples: a fresh one for every
    job, so its edits to it change nothing later."""
    return Built("problems.cloudcast.network:build_graph", [list(edge) for edge in EDGES])


def _invalid(feedback: str, metrics: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"score": 0.0, "valid": False, "metrics": metrics or {}, "feedback": feedback}


def judge(candidate: Candidate, stage: str) -> dict[str, Any]:
    if stage not in STAGES:
        return _invalid(f"unknown stage {stage!r}; this problem has stages {sorted(STAGES)}")
    metrics: dict[str, float] = {}
    lines = []
    total = candidate_s = 0.0
    for name in STAGES[stage]:
        job = JOBS[name]
        try:
            raw = candidate.call(FUNCTION, job.src, list(job.dsts), _graph(), job.num_partitions)
        except CandidateError as exc:  # the candidate's own failure is a result, not a crash
            if exc.kind == "invalid-output":  # what it returned does not travel as data
                return _invalid(f"invalid routes: job {name}: {SHAPE}; {exc}", metrics)
            if exc.kind == "crash" and getattr(exc, "detail", None):  # its own exception
                return _invalid(f"{FUNCTION} raised on job {name}: {exc.detail}", metrics)
            return _invalid(f"{FUNCTION} on job {name}: {exc}", metrics)
        candidate_s += candidate.last_cpu_s  # the candidate's own CPU time for this call
        try:
            routes = copy_routes(raw, job, max_nodes=len(NODES))
        except InvalidRoutes as exc:
            return _invalid(f"invalid routes: {exc}", metrics)
        try:
            check_routes(routes, job, TABLE, NODES)
        except InvalidRoutes as exc:
            return _invalid(f"invalid routes: {exc}", metrics)
        result = simulate(job, routes, TABLE)
        total += result.total_cost
        metrics.update({
            f"{name}_egress_cost": round(result.egress_cost, 4),
            f"{name}_instance_cost": round(result.instance_cost, 4),
            f"{name}_transfer_time_s": result.time_s,
            f"{name}_total_cost": round(result.total_cost, 4),
        })
        lines.append(f"{name}: ${result.total_cost:.2f} (egress ${result.egress_cost:.2f} + "
                     f"instances ${result.instance_cost:.2f}; {result.time_s:.1f} s over "
                     f"{result.overlay_nodes} regions, {result.overlay_edges} edges; the bound "
                     f"is ${BOUNDS[name]:.2f}, direct edges ${DIRECT[name]:.2f})")

    direct = sum(DIRECT[n] for n in STAGES[stage])
    bound = sum(BOUNDS[n] for n in STAGES[stage])
    metrics.update({
        "total_cost": round(total, 4),
        "direct_cost": round(direct, 4),
        "lower_bound": round(bound, 4),
        "gap_to_bound": round(total - bound, 4),
        "share_of_gap_closed": round(share_of_gap(total, direct, bound), 6),
        "candidate_seconds": round(candidate_s, 4),
    })
    if stage == "full":
        score = leaderboard_score(total)
        metrics["leaderboard_score"] = round(score, 4)
        head = f"total cost ${total:.2f}: leaderboard score {score:.2f}"
    else:
        score = 100 * share_of_gap(total, direct, bound)
        head = (f"total cost ${total:.2f} on {len(STAGES[stage])} jobs: {score:.2f} % of the "
                f"way from direct edges to the bound")
    return {"score": score, "valid": True, "metrics": metrics,
            "feedback": head + "\n" + "\n".join(lines)}


def evaluate(program_path: str, stage: str) -> dict[str, Any]:
    """The judge against a local, unsandboxed candidate process (scripts and tests)."""
    return evaluate_locally(judge, program_path, stage)

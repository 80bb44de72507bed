"""Shared scoring of the spot problems: run a candidate policy over a list of runs.

The candidate module defines `class Policy` with `__init__(self, scenario)` and
`decide(self, state)`; a fresh policy is made for every run. Any exception, invalid action or
missed deadline makes the program invalid; the feedback names the run. Only to reproduce the
ADRS Leaderboard's multi-region figures (`drop_failed_runs=True`), a failed run (there: one
that ran off the end of its trace) leaves its scenario's mean instead.
"""

from __future__ import annotations

import dataclasses
import json
import traceback
from collections.abc import Callable, Sequence
from typing import Any, BinaryIO

from evaluators.harness_api import (
    check_tampering,
    clock,
    get_function,
    load_candidate,
    record_candidate_error,
)
from problems._spot_sim.simulate import ActionError, RunResult

SCORE_STD_WEIGHT = 0.25


def load_optimum(source: BinaryIO) -> dict[str, float]:
    """The cached omniscient optimum per run, from an open (hidden) file."""
    with source:
        return {k: float(v) for k, v in json.load(source)["optimum"].items()}


def weighted_mean_std(values: Sequence[float], weights: Sequence[float]) -> tuple[float, float]:
    total = sum(weights)
    mean = sum(w * v for w, v in zip(weights, values, strict=True)) / total
    var = sum(w * (v - mean) ** 2 for w, v in zip(weights, values, strict=True)) / total
    return mean, var ** 0.5


def _fail(message: str, metrics: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"score": -1e9, "valid": False, "metrics": metrics or {}, "feedback": message}


def _without_failed_runs(runs: Sequence[Any], results: Sequence[RunResult]):
    """The leaderboard's rule: a scenario's mean uses the runs that succeeded, so the failed
    runs are left out and the rest of their group share the group's whole weight.

    Returns (runs, results, keys of the failed runs, groups left with no run)."""
    total: dict[str, float] = {}
    kept: dict[str, float] = {}
    for run, r in zip(runs, results, strict=True):
        total[run.group] = total.get(run.group, 0.0) + run.weight
        if not r.missed:
            kept[run.group] = kept.get(run.group, 0.0) + run.weight
    pairs = [(dataclasses.replace(run, weight=run.weight * total[run.group] / kept[run.group]), r)
             for run, r in zip(runs, results, strict=True) if not r.missed]
    failed = [run.key for run, r in zip(runs, results, strict=True) if r.missed]
    empty = [group for group in total if group not in kept]
    return [run for run, _ in pairs], [r for _, r in pairs], failed, empty


def _run_candidate(program_path, runs, run_one, load, get, action_error, fail,
                   record=record_candidate_error):
    """Load the candidate and run every scenario; a failure dict or the list of results."""
    try:
        module = load(program_path)
        policy_cls = get(module, "Policy")
    except Exception as exc:
        return fail(f"could not load the program: {exc}")
    results: list[RunResult] = []
    for run in runs:
        try:
            policy = policy_cls(run.scenario)
            decide = policy.decide
            results.append(run_one(decide, run))
        except action_error as exc:
            return fail(f"run {run.key}: {exc}", {"runs_completed": len(results)})
        except Exception as exc:
            record(exc, program_path)  # a MemoryError stays "memory", as at import
            tail = traceback.format_exc(limit=-3)
            return fail(f"run {run.key}: the policy raised\n{tail}", {"runs_completed": len(results)})
    return results


def evaluate_policy(program_path: str, runs: Sequence[Any], run_one: Callable[[Any, Any], RunResult],
                    optimum: dict[str, float], *, _clock=clock, _load=load_candidate,
                    _get=get_function, _stats=weighted_mean_std,
                    _action_error=ActionError, _run=_run_candidate,
                    _fail_result=_fail, _check=check_tampering, drop_failed_runs: bool = False,
                    _drop=_without_failed_runs) -> dict[str, Any]:
    """Score = -(mean cost + 0.25 * std of cost), means weighted by `run.weight` if present.

    `drop_failed_runs` (the leaderboard's multi-region rule; runs need `group` and `weight`):
    a failed run is left out of its group's mean instead of making the program invalid, unless
    a whole group failed.

    Every helper is a default argument, bound when this module was imported (before any
    candidate), so a candidate that rebinds names in this package changes nothing here.
    """
    started = _clock()
    outcome = _run(program_path, runs, run_one, _load, _get, _action_error, _fail_result)
    # Before any statistic is computed: a patch the policy made (even one that would undo
    # itself once used) is undone here, and the harness rejects the result.
    _check()
    if isinstance(outcome, dict):
        return outcome
    return summarize(runs, outcome, optimum, _clock() - started, _stats=_stats,
                     drop_failed_runs=drop_failed_runs, _drop=_drop, _fail_result=_fail_result)


def summarize(runs: Sequence[Any], results: Sequence[RunResult], optimum: dict[str, float],
              seconds: float, *, _stats=weighted_mean_std, drop_failed_runs: bool = False,
              _drop=_without_failed_runs, _fail_result=_fail) -> dict[str, Any]:
    """The stage result of a policy's runs: score, metrics and feedback.

    `drop_failed_runs`: the leaderboard's multi-region rule (see `evaluate_policy`)."""
    failed: list[str] = []
    if drop_failed_runs:
        all_runs = runs
        runs, results, failed, empty = _drop(runs, results)
        if empty:
            return _fail_result(f"every run of {', '.join(empty)} failed (e.g. "
                                f"{next(r.key for r in all_runs if r.group == empty[0])}): "
                                f"no mean for that scenario", {"failed_runs": len(failed)})
    weights = [getattr(run, "weight", 1.0) for run in runs]
    costs = [r.cost for r in results]
    mean, std = _stats(costs, weights)
    misses = [run.key for run, r in zip(runs, results, strict=True) if r.missed]
    metrics: dict[str, Any] = {
        "runs": len(results),
        "mean_cost": round(mean, 4),
        "std_cost": round(std, 4),
        "deadline_misses": len(misses),
        "spot_hours_share": round(sum(r.spot_ticks for r in results)
                                  / max(1, sum(r.spot_ticks + r.on_demand_ticks for r in results)), 4),
        "launches_per_run": round(sum(r.launches for r in results) / len(results), 3),
        "preemptions_per_run": round(sum(r.preemptions for r in results) / len(results), 3),
        "guard_overrides": sum(r.guard_overrides for r in results),
        "unavailable_spot_requests": sum(r.unavailable_spot_requests for r in results),
    }
    if drop_failed_runs:
        metrics["failed_runs"] = len(failed)
        metrics["late_finishes"] = sum(r.finish_tick > run.scenario.deadline_ticks
                                       for run, r in zip(runs, results, strict=True))
    if hasattr(runs[0], "prices"):  # many regions: always report it (it is a shown metric)
        metrics["region_switches_per_run"] = round(
            sum(r.region_switches for r in results) / len(results), 3)
    with_opt = [(run, r) for run, r in zip(runs, results, strict=True) if run.key in optimum]
    if with_opt:
        w = [getattr(run, "weight", 1.0) for run, _ in with_opt]
        opt_mean, _ = _stats([optimum[run.key] for run, _ in with_opt], w)
        cand_mean, _ = _stats([r.cost for _, r in with_opt], w)
        metrics["optimum_mean_cost"] = round(opt_mean, 4)
        metrics["cost_ratio_to_optimum"] = round(cand_mean / opt_mean, 4)
        metrics["optimum_runs"] = len(with_opt)
        # A run cheaper than the omniscient optimum would mean the simulator and DP disagree.
        metrics["runs_below_optimum"] = sum(r.cost < optimum[run.key] - 1e-6 for run, r in with_opt)
    groups: dict[str, list[float]] = {}
    for run, r in zip(runs, results, strict=True):
        groups.setdefault(run.group, []).append(r.cost)
    for group, values in groups.items():
        metrics[f"mean_cost[{group}]"] = round(sum(values) / len(values), 4)
    metrics["evaluation_seconds"] = round(seconds, 3)

    score = -(mean + SCORE_STD_WEIGHT * std)
    worst = max(groups, key=lambda g: sum(groups[g]) / len(groups[g]))
    lines = [f"mean cost ${mean:.2f} (std {std:.2f}) over {len(results)} runs; "
             f"score = -(mean + 0.25 std) = {score:.3f}."]
    if "cost_ratio_to_optimum" in metrics:
        lines.append(f"The omniscient optimum averages ${metrics['optimum_mean_cost']:.2f}; "
                     f"you pay {metrics['cost_ratio_to_optimum']:.3f}x that.")
    lines.append(f"Most expensive group: {worst} (${metrics[f'mean_cost[{worst}]']:.2f} per run). "
                 f"Spot share of billed hours {metrics['spot_hours_share']:.0%}, "
                 f"{metrics['launches_per_run']:.1f} launches per run.")
    if metrics["guard_overrides"]:
        lines.append(f"The environment's deadline guard overrode {metrics['guard_overrides']} "
                     f"decisions (it forces ON_DEMAND once slack cannot absorb a restart).")
    if metrics["unavailable_spot_requests"]:
        lines.append(f"{metrics['unavailable_spot_requests']} SPOT requests were made where spot "
                     f"was unavailable and ran as NONE.")
    if failed:
        lines.append(f"{len(failed)} runs failed, e.g. {failed[0]}, and are left out of their "
                     f"scenario's mean (the leaderboard's rule).")
    if metrics.get("late_finishes"):
        lines.append(f"{metrics['late_finishes']} runs finished after the deadline (billed, "
                     f"no penalty: the leaderboard's rule).")
    if misses:
        lines.append(f"Deadline missed in {len(misses)} runs, e.g. {misses[0]}: the program is "
                     f"invalid until every run finishes in time.")
    return {"score": score, "valid": not misses, "metrics": metrics, "feedback": " ".join(lines)}

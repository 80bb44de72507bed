"""Evaluator of `serving`: dispatch (and optionally migrate) requests of the Azure LLM inference
trace 2023 over 16 simulated vLLM instances (Llama-2-7B on A100-40GB).

Score = -(mean over scenarios of  P99 TTFT / round robin's + mean E2E / round robin's
+ 1.0 * preemptions per request); round robin scores about -2, higher is better.

The policy runs in its own process (`judge(candidate, stage)`): the simulator, the traces
(hidden files: they hold the future arrivals and every output length), the reference figures
and the clocks stay here. All the stage's scenarios advance in lockstep, one message per step
for all of them (`problems.serving.lockstep`); the policy's process rebuilds the snapshots it
is given (`problems.serving.remote`), and every answer it sends back is validated here: an
invalid one makes the program invalid, with the reason.
"""

from __future__ import annotations

import time
from pathlib import Path

from evaluators.harness_api import Candidate, CandidateError, evaluate_locally, hidden_file
from problems.serving.cluster import DEFAULT_CONFIG, PolicyError
from problems.serving.instance import SimulationError
from problems.serving.lockstep import run_lockstep
from problems.serving.references import load as load_references
from problems.serving.scenarios import (
    STAGES,
    TRACES,
    Scenario,
    make_scenarios,
    preload_traces,
)
from problems.serving.scoring import Figures, cost_of, figures, scenario_cost

HERE = Path(__file__).resolve().parent
preload_traces({name: hidden_file(HERE, path.relative_to(HERE).as_posix()).read()
                for name, path in TRACES.items()})
SCENARIOS = {stage: make_scenarios(plan) for stage, plan in STAGES.items()}
REFERENCES = load_references()


def _fail(message: str, metrics: dict | None = None) -> dict:
    return {"score": -1e9, "valid": False, "metrics": metrics or {}, "feedback": message}


def _run(candidate: Candidate, scenarios: list[Scenario]) -> tuple[list[Figures], int] | str:
    """(every scenario's figures, messages sent), or why the program is invalid."""
    try:
        names = candidate.load()
    except CandidateError as exc:
        return f"could not load the program: {exc}"
    if "dispatch" not in names:
        return "could not load the program: the program defines no function " \
               "'dispatch(request, instances)'"
    try:
        results, steps = run_lockstep(candidate, scenarios, DEFAULT_CONFIG)
    except (CandidateError, PolicyError) as exc:
        return str(exc)
    outcome = []
    for scenario, result in zip(scenarios, results, strict=True):
        try:
            outcome.append(figures(result))
        except SimulationError as exc:  # ours, never the policy's: say so loudly
            raise SimulationError(f"{scenario.key}: {exc}") from exc
    return outcome, steps


def judge(candidate: Candidate, stage: str) -> dict:
    if stage not in SCENARIOS:
        return _fail(f"unknown stage {stage!r}; stages are {sorted(SCENARIOS)}")
    refs = REFERENCES.get(stage, {})
    scenarios = SCENARIOS[stage]
    missing = [s.key for s in scenarios if s.key not in refs]
    if missing:
        return _fail(f"references.json lacks {missing}; run `python -m problems.serving.references`")
    started = time.perf_counter()
    outcome = _run(candidate, scenarios)
    if isinstance(outcome, str):
        return _fail(outcome)
    outcome, steps = outcome
    metrics: dict = {}
    costs, bound_costs = [], []
    for scenario, fig in zip(scenarios, outcome, strict=True):
        ref = refs[scenario.key]["round_robin"]
        cost = scenario_cost(fig, ref)
        costs.append(cost)
        bound_costs.append(cost_of(refs[scenario.key]["bound"], ref))
        for name, value in fig.as_dict().items():
            metrics[f"{name}[{scenario.key}]"] = value
        metrics[f"cost[{scenario.key}]"] = round(cost, 4)
    n = len(outcome)
    score = -sum(costs) / n
    bound_score = -sum(bound_costs) / n
    total_requests = sum(f.requests for f in outcome)
    metrics.update({
        "scenarios": n,
        "ttft_mean_s": round(sum(f.ttft_mean * f.requests for f in outcome) / total_requests, 4),
        "ttft_p99_s": round(sum(f.ttft_p99 for f in outcome) / n, 4),
        "tpot_p99_s": round(sum(f.tpot_p99 for f in outcome) / n, 5),
        "e2e_mean_s": round(sum(f.e2e_mean * f.requests for f in outcome) / total_requests, 4),
        "e2e_p99_s": round(sum(f.e2e_p99 for f in outcome) / n, 4),
        "preemptions": sum(f.preemptions for f in outcome),
        "migrations": sum(f.migrations for f in outcome),
        "migrations_aborted": sum(f.migrations_aborted for f in outcome),
        "bound_score": round(bound_score, 4),
        "gap_to_bound": round(bound_score - score, 4),
        "clipped_requests": sum(s.workload.clipped for s in scenarios),
        "evaluation_seconds": round(time.perf_counter() - started, 3),
        "candidate_cpu_s": round(candidate.cpu_s, 3),
        "messages": steps,
    })
    worst = max(range(n), key=lambda i: costs[i])
    w = outcome[worst]
    feedback = (f"score {score:.4f} (round robin is about -2; the pooled bound {bound_score:.4f}). "
                f"Worst scenario {scenarios[worst].key}: P99 TTFT {w.ttft_p99:.3f}s, mean E2E "
                f"{w.e2e_mean:.3f}s, P99 TPOT {w.tpot_p99 * 1000:.1f}ms, {w.preemptions} "
                f"preemptions, {w.migrations} migrations. Averages over {n} scenarios: P99 TTFT "
                f"{metrics['ttft_p99_s']:.3f}s, mean E2E {metrics['e2e_mean_s']:.3f}s.")
    return {"score": score, "valid": True, "metrics": metrics, "feedback": feedback}


def evaluate(program_path: str, stage: str) -> dict:
    """The judge against a local, unsandboxed candidate process (scripts and tests)."""
    return evaluate_locally(judge, program_path, stage)

"""Latency figures of one simulation, and the score (defined once here; see README "Score").

Per scenario:  cost = P99 TTFT / P99 TTFT of round robin
                    + mean E2E / mean E2E of round robin
                    + PREEMPTION_WEIGHT * preemptions per request
score = -(mean of cost over the scenarios); round robin scores -2 - its preemption term.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from problems.serving.cluster import SimResult
from problems.serving.instance import FINISHED, SimulationError

PREEMPTION_WEIGHT = 1.0


@dataclass(frozen=True)
class Figures:
    requests: int
    ttft_mean: float
    ttft_p99: float
    tpot_p99: float
    e2e_mean: float
    e2e_p99: float
    preemptions: int
    migrations: int
    migrations_aborted: int
    pause_s: float
    makespan_s: float

    def as_dict(self) -> dict:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


def check_conservation(result: SimResult) -> None:
    """Every request finished exactly once, after it arrived; no KV block left in use."""
    req = result.requests
    for rid in range(req.n):
        if req.state[rid] != FINISHED:
            raise SimulationError(f"request {rid} never finished (state {req.state[rid]})")
        if not req.arrival[rid] <= req.first_token[rid] <= req.finish[rid]:
            raise SimulationError(f"request {rid}: arrival {req.arrival[rid]}, first token "
                                  f"{req.first_token[rid]}, finish {req.finish[rid]} out of order")
    for inst in result.instances:
        if inst.used or inst.reserved or inst.held or inst.running or inst.waiting:
            raise SimulationError(f"instance {inst.index} ends with {inst.used} blocks in use, "
                                  f"{len(inst.running)} running, {len(inst.waiting)} waiting")


def figures(result: SimResult) -> Figures:
    check_conservation(result)
    req = result.requests
    arrival = np.asarray(req.arrival)
    first = np.asarray(req.first_token)
    finish = np.asarray(req.finish)
    output = np.asarray(req.output)
    ttft = first - arrival
    e2e = finish - arrival
    multi = output > 1
    tpot = (finish[multi] - first[multi]) / (output[multi] - 1)
    return Figures(
        requests=req.n,
        ttft_mean=float(ttft.mean()),
        ttft_p99=float(np.percentile(ttft, 99)),
        tpot_p99=float(np.percentile(tpot, 99)) if tpot.size else 0.0,
        e2e_mean=float(e2e.mean()),
        e2e_p99=float(np.percentile(e2e, 99)),
        preemptions=int(sum(req.preemptions)),
        migrations=result.migrations_done,
        migrations_aborted=result.migrations_aborted,
        pause_s=result.pause_s,
        makespan_s=float(result.end_s),
    )


def scenario_cost(fig: Figures, ref: dict) -> float:
    return (fig.ttft_p99 / ref["ttft_p99"] + fig.e2e_mean / ref["e2e_mean"]
            + PREEMPTION_WEIGHT * fig.preemptions / fig.requests)


def cost_of(values: dict, ref: dict) -> float:
    """The same cost from stored figures (the bound and the baselines in references.json)."""
    return (values["ttft_p99"] / ref["ttft_p99"] + values["e2e_mean"] / ref["e2e_mean"]
            + PREEMPTION_WEIGHT * values["preemptions"] / values["requests"])

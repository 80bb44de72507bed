"""The omniscient optimum: the cheapest schedule that knows the whole trace in advance.

Dynamic programming over tick x progress x cluster state, with the simulator's physics
(launch overhead billed without progress, preemption when spot becomes unavailable, the full
last tick billed). A cluster state is NONE or (kind, phase): a kind is spot in one region or
on-demand (one kind: its price and availability are the same everywhere), the phase counts
ticks since launch up to the first full-progress tick. NONE carries no region: moving while
idle is free. The DP ignores the environment's deadline guard, so its value is a lower bound
for every policy (every guarded run is a feasible schedule here).

Build the caches with `python -m problems._spot_sim.optimum spot_single|spot_multi`.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

INF = np.inf


def _shift(x: np.ndarray, s: int) -> np.ndarray:
    """Progress + s, clipped at the last index (the work is done)."""
    if s == 0:
        return x.copy()
    y = np.empty_like(x)
    y[:s] = INF
    y[s:] = x[: x.size - s]
    y[-1] = x[x.size - 1 - s:].min()
    return y


def optimum_cost(kinds: Sequence[tuple[bytes | None, Sequence[float]]], *, gap: int,
                 overhead: int, work: int, ticks: int) -> float:
    """Minimum cost to finish `work` seconds within `ticks` ticks; inf if impossible.

    `kinds`: per cluster kind, (availability row with 1 = available, or None for always;
    cost of running one tick of it at each tick index).
    """
    unit = math.gcd(gap, overhead, work)
    size = work // unit + 1
    last_phase = -(-overhead // gap)
    progress = [max(0, min(gap, (j + 1) * gap - overhead)) // unit for j in range(last_phase + 1)]
    n = len(kinds)
    none = np.full(size, INF)
    none[0] = 0.0
    phases = [[np.full(size, INF) for _ in range(last_phase + 1)] for _ in range(n)]
    for t in range(ticks):
        per_kind = [np.minimum.reduce(p) if len(p) > 1 else p[0] for p in phases]
        # base[k] = cheapest way to be in any state other than a cluster of kind k.
        prefix = [none]
        for k in range(n - 1):
            prefix.append(np.minimum(prefix[-1], per_kind[k]))
        suffix: list[np.ndarray | None] = [None] * n
        acc: np.ndarray | None = None
        for k in range(n - 1, -1, -1):
            suffix[k] = acc
            acc = per_kind[k] if acc is None else np.minimum(acc, per_kind[k])
        new_none = np.minimum(prefix[-1], per_kind[-1]) if n else none
        new_phases = []
        for k, (row, costs) in enumerate(kinds):
            if row is not None and not row[t]:
                new_phases.append([np.full(size, INF) for _ in range(last_phase + 1)])
                continue
            c = costs[t]
            base = prefix[k] if suffix[k] is None else np.minimum(prefix[k], suffix[k])
            old = phases[k]
            if last_phase == 0:
                cur = [_shift(np.minimum(base, old[0]), progress[0]) + c]
            else:
                cur = [_shift(base, progress[0]) + c]
                for j in range(1, last_phase):
                    cur.append(_shift(old[j - 1], progress[j]) + c)
                cur.append(_shift(np.minimum(old[last_phase - 1], old[last_phase]),
                                  progress[last_phase]) + c)
            new_phases.append(cur)
        none, phases = new_none, new_phases
    best = none[-1]
    for kind in phases:
        for arr in kind:
            best = min(best, arr[-1])
    return float(best)


def single_optimum(available: bytes, *, gap: int, overhead: int, work: int, ticks: int,
                   spot_price: float, on_demand_price: float) -> float:
    hours = gap / 3600.0
    return optimum_cost([(available, [spot_price * hours] * ticks),
                         (None, [on_demand_price * hours] * ticks)],
                        gap=gap, overhead=overhead, work=work, ticks=ticks)


def multi_optimum(available: Sequence[bytes], prices: Sequence[Sequence[float]], *, gap: int,
                  overhead: int, work: int, ticks: int, on_demand_price: float) -> float:
    hours = gap / 3600.0
    kinds: list[tuple[bytes | None, Sequence[float]]] = [
        (row, [p * hours for p in price[:ticks]]) for row, price in zip(available, prices, strict=True)
    ]
    kinds.append((None, [on_demand_price * hours] * ticks))
    return optimum_cost(kinds, gap=gap, overhead=overhead, work=work, ticks=ticks)


# --- building the caches ------------------------------------------------------------------------

def _solve_single(run) -> tuple[str, float]:
    s = run.scenario
    return run.key, single_optimum(run.available, gap=s.gap_s, overhead=s.restart_overhead_s,
                                   work=s.task_s, ticks=s.deadline_ticks, spot_price=s.spot_price,
                                   on_demand_price=s.on_demand_price)


def _solve_multi(run) -> tuple[str, float]:
    s = run.scenario
    return run.key, multi_optimum(run.available, run.prices, gap=s.gap_s,
                                  overhead=s.restart_overhead_s, work=s.task_s,
                                  ticks=s.deadline_ticks, on_demand_price=s.on_demand_price)


def build_cache(problem: str, workers: int = 2) -> Path:
    from problems._spot_sim.grids import multi_runs, single_runs
    from problems._spot_sim.traces import load_multi, load_single

    root = Path(__file__).resolve().parent.parent / problem
    if problem == "spot_single":
        runs, solve = single_runs(load_single(root / "data" / "single_region.json.gz"), "full"), _solve_single
    elif problem == "spot_multi":
        runs, solve = multi_runs(load_multi(root / "data" / "multi_region.json.gz"), "full"), _solve_multi
    else:
        raise SystemExit(f"unknown problem {problem!r}; use spot_single or spot_multi")
    out: dict[str, float] = {}
    started = time.perf_counter()
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for i, (key, cost) in enumerate(pool.map(solve, runs, chunksize=4), 1):
            out[key] = round(cost, 6)
            if i % 20 == 0 or i == len(runs):
                print(f"{problem}: {i}/{len(runs)} scenarios solved "
                      f"({time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)
    path = root / "optimum.json"
    path.write_text(json.dumps({
        "about": "omniscient optimum cost ($) per run, by problems/_spot_sim/optimum.py",
        "optimum": out,
    }, indent=0, sort_keys=True) + "\n")
    return path


if __name__ == "__main__":
    workers = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    print(build_cache(sys.argv[1] if len(sys.argv) > 1 else "", workers))

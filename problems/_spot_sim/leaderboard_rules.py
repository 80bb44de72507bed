"""The ADRS Leaderboard's multi-region rules, used only to reproduce its published figures.

Five rules differ from ours (`simulate.run_multi`); they were established by running their
harness on the published programs and reproducing every run's cost (shared data README,
"Multi-region", rules 1-5). Rules 3 and 4 alone move the published programs' costs by up to
$1.1 per run.

1. Billing: every spot tick is priced at tick 0's spot price of the region the job *ends* in
   (ours: each tick at its own region's price that tick). That region is read after the program
   has made one more decision, at the tick after the work is done: a move it asks for then
   still changes the billing region (nothing else happens at that tick, and it is not billed).
   When the work is done on the trace's last tick there is no next tick and no such decision.
2. Moving a running cluster to another region is free: only a change of cluster type pays the
   restart overhead (ours: a move relaunches the cluster). Availability and the billing region
   follow the move.
3. Deadline guard, once ceil((work left + overhead) / gap) >= ticks to the deadline: it keeps
   SPOT only if the previous tick ran spot AND that cluster's restart overhead was fully paid by
   the end of it; otherwise it forces ON_DEMAND. It changes only the cluster type: a region move
   the program asked for in the same step stands. It acts before the spot-unavailable override
   (SPOT asked where spot is unavailable, in the region after the move, runs as NONE that tick).
4. No deadline check: a run goes on until its work is done and late ticks are billed as any
   other; only running past the end of the trace fails a run (`finish_tick == -1`), and the
   leaderboard's mean of that scenario then uses the runs that succeeded
   (`evaluation.evaluate_policy(..., drop_failed_runs=True)`).
5. The program's view of the remaining restart overhead (`state.overhead_left_s`) is never
   cleared on preemption or idling: it keeps the last value set (a launch sets it, running
   pays it down). The simulation itself is unaffected: a cluster that runs again has launched.

Our rules stay the default: (1) is a billing shortcut, (2) a free lunch a policy can learn to
exploit, (3) and (4) gaps in the deadline guarantee, (5) a stale reading.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

from problems._spot_sim.simulate import (
    Columns,
    Decision,
    MultiView,
    RunResult,
    _coerce_action,
    _coerce_multi,
    drive_multi,
    region_columns,
)
from problems._spot_sim.state import MultiSpotState, Scenario


def multi_ticks_leaderboard(scenario: Scenario, available: tuple[bytes, ...],
                            prices: tuple[tuple[float, ...], ...], *,
                            columns: Columns | None = None,
                            _result=RunResult) -> Generator[MultiView, Decision, RunResult]:
    """`simulate.multi_ticks` under the leaderboard's five rules (see the module docstring):
    yields each tick's view, is sent the validated decision, returns the `RunResult`.

    `finish_tick` may exceed `scenario.deadline_ticks` (a late finish, billed); it is -1 only
    when the run reached the end of the trace with work left. `columns`: as `multi_ticks`'.
    """
    NONE_, SPOT_, OD_ = 0, 1, 2   # literals: immune to a candidate rebinding module names
    gap, d, work = scenario.gap_s, scenario.restart_overhead_s, scenario.task_s
    deadline_ticks = scenario.deadline_ticks
    num_regions = len(available)
    if num_regions != scenario.num_regions or len(prices) != num_regions:
        raise ValueError("available, prices and scenario.num_regions disagree")
    # Rule 4: no deadline; the trace's end is the only limit.
    ticks = min(min(len(row) for row in available), min(len(p) for p in prices))
    avail_cols, price_cols = columns or region_columns(available, prices, ticks)
    if len(avail_cols) != ticks or len(price_cols) != ticks:
        raise ValueError(f"columns of {len(avail_cols)} ticks for traces of {ticks}")
    hours = gap / 3600.0
    n_spot = n_od = launches = preemptions = bad_spot = overrides = switches = 0
    done = cluster = region = 0
    oh = 0            # the current cluster's overhead still due; rule 5: never cleared
    finish = -1
    for k in range(ticks):
        col = avail_cols[k]
        a = col[region]
        last = cluster
        preempted = cluster == SPOT_ and not a
        if preempted:
            cluster = NONE_
            preemptions += finish < 0
        req, target = yield (k, done, oh, cluster, last, region, preempted, col, price_cols[k])
        if finish >= 0:               # rule 1: the decision after completion moves the bill
            region = target
            break
        if (work - done + d + gap - 1) // gap >= deadline_ticks - k:      # rule 3: the guard
            # `oh` is still the overhead left at the end of the previous tick: when that tick
            # ran spot, it is that cluster's (rule 5 keeps it past a preemption at this tick).
            forced = SPOT_ if (last == SPOT_ and oh == 0) else OD_
            if forced != req:
                overrides += 1
                req = forced           # the type only: the move the program asked for stands
        if req == SPOT_ and not col[target]:                              # then the override
            req = NONE_
            bad_spot += 1
        if target != region:                                              # rule 2: moves are free
            region = target
            switches += 1
        if req != cluster:
            cluster = req
            if req == NONE_:
                continue
            oh = d
            launches += 1
        elif cluster == NONE_:
            continue
        if cluster == SPOT_:
            n_spot += 1
        else:
            n_od += 1
        if oh >= gap:
            oh -= gap
            continue
        done += gap - oh
        oh = 0
        if done >= work:
            finish = k + 1             # late ticks included (rule 4); one more decision follows
    # Rule 1: all spot ticks at tick 0's price of the region the job ended in.
    cost = (n_spot * hours * prices[region][0]
            + n_od * hours * scenario.on_demand_price)
    return _result(cost, finish, n_spot, n_od, launches, preemptions, bad_spot, overrides,
                   switches)


def run_multi_leaderboard(decide: Callable[[MultiSpotState], Any], scenario: Scenario,
                          available: tuple[bytes, ...], prices: tuple[tuple[float, ...], ...],
                          *, _state_cls=MultiSpotState, _result=RunResult,
                          _coerce=_coerce_action, _coerce_pair=_coerce_multi) -> RunResult:
    """`simulate.run_multi` under the leaderboard's five rules, the policy in this process
    (`multi_ticks_leaderboard` run by `simulate.drive_multi`)."""
    ticks = multi_ticks_leaderboard(scenario, available, prices, _result=_result)
    return drive_multi(decide, ticks, _state_cls(scenario, len(available)), _coerce=_coerce,
                       _coerce_pair=_coerce_pair)

"""The ADRS Leaderboard's multi-region rules, used only to reproduce its published figures.

Three rules differ from ours (`simulate.run_multi`), and together they move costs by up to
$1.5 per run:

1. billing: every spot tick is priced at tick 0's spot price of the region the job *ends* in
   (ours: each tick at its own region's price that tick);
2. the deadline guard keeps the cluster on spot when the previous tick ran spot (overhead paid
   or not), and only then does the spot-unavailable override apply, which idles that tick; so a
   job can finish one tick after the deadline without penalty (ours: a preempted or still
   launching spot cluster is switched to on-demand, and the deadline is hard);
3. moving to another region while running is free: only a change of cluster type pays the
   restart overhead (ours: a move relaunches the cluster).

Our rules stay the default: each is either a billing shortcut (1) or a gap in the deadline
guarantee (2) or a free lunch a policy can learn to exploit (3).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from problems._spot_sim.simulate import RunResult, _coerce_action, _coerce_multi
from problems._spot_sim.state import MultiSpotState, Scenario

# Their guard may idle the last tick before the deadline; the job may then run past it.
GRACE_TICKS = 1


def run_multi_leaderboard(decide: Callable[[MultiSpotState], Any], scenario: Scenario,
                          available: tuple[bytes, ...], prices: tuple[tuple[float, ...], ...],
                          *, _state_cls=MultiSpotState, _result=RunResult,
                          _coerce=_coerce_action, _coerce_pair=_coerce_multi) -> RunResult:
    """`simulate.run_multi` under the leaderboard's three rules (see the module docstring)."""
    NONE_, SPOT_, OD_ = 0, 1, 2
    gap, d, work = scenario.gap_s, scenario.restart_overhead_s, scenario.task_s
    deadline_ticks = scenario.deadline_ticks
    num_regions = len(available)
    if num_regions != scenario.num_regions or len(prices) != num_regions:
        raise ValueError("available, prices and scenario.num_regions disagree")
    ticks = min(deadline_ticks + GRACE_TICKS, min(len(row) for row in available))
    if ticks < deadline_ticks:
        raise ValueError(f"traces are shorter than the {deadline_ticks} ticks the deadline needs")
    avail_cols = [bytes(col) for col in zip(*(row[:ticks] for row in available), strict=True)]
    price_cols = list(zip(*(p[:ticks] for p in prices), strict=True))
    hours = gap / 3600.0
    state = _state_cls(scenario, num_regions)
    appends = [h.append for h in state._hist]
    n_spot = n_od = launches = preemptions = bad_spot = overrides = switches = 0
    done = oh = cluster = region = 0
    finish = -1
    for k in range(ticks):
        col = avail_cols[k]
        for r in range(num_regions):
            appends[r](col[r])
        a = col[region]
        last = cluster
        if cluster == SPOT_ and not a:
            cluster = NONE_
            oh = 0
            preemptions += 1
            state._preempted = True
        else:
            state._preempted = False
        state._tick = k
        state._done = done
        state._oh = oh
        state._cluster = cluster
        state._last = last
        state._avail = a
        state._region = region
        state._avail_now = col
        state._price_now = price_cols[k]
        out = decide(state)
        if type(out) is int and 0 <= out <= 2:
            req, target = out, region
        elif isinstance(out, tuple):
            req, target = _coerce_pair(out, num_regions)
        else:
            req, target = _coerce(out), region
        if (work - done + d + gap - 1) // gap >= deadline_ticks - k:      # rule 2: the guard
            forced = SPOT_ if last == SPOT_ else OD_
            if forced != req or target != region:
                overrides += 1
                req, target = forced, region
        if req == SPOT_ and not col[target]:                              # then the override
            req = NONE_
            bad_spot += 1
        if target != region:                                              # rule 3: moves are free
            region = target
            switches += 1
        if req != cluster:
            cluster = req
            if req == NONE_:
                oh = 0
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
            finish = k + 1
            break
    # Rule 1: all spot ticks at tick 0's price of the region the job ended in.
    cost = (n_spot * hours * prices[region][0]
            + n_od * hours * scenario.on_demand_price)
    return _result(cost, finish, n_spot, n_od, launches, preemptions, bad_spot, overrides,
                   switches)

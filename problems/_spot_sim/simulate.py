"""Run one spot scenario tick by tick, as the published simulator does.

Timeline of tick k (an interval of `gap` seconds): a spot cluster that ran during tick k-1 is
preempted if spot is unavailable during tick k; the policy then chooses the cluster for tick k
(SPOT only where available, else it counts as NONE); the environment's deadline guard may
override that choice; a change of cluster (or of region while running) starts a launch that
costs `overhead` seconds of billed time without progress; finally the tick is billed and its
progress (gap minus the overhead still due) credited. The run ends when the work is done, or
at the deadline (a miss).

The guard (part of the environment, as in the published harness): when
ceil((work_left + overhead) / gap) >= ticks_left, a working spot cluster (running, overhead
paid) is kept, anything else is switched to ON_DEMAND. From the first tick it fires the job
still fits, so no policy can miss a feasible deadline.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

from evaluators.harness_api import plain_int
from problems._spot_sim.state import MultiSpotState, Scenario, SpotState


class ActionError(ValueError):
    """The policy returned something that is not a valid action."""


@dataclass(frozen=True, slots=True)
class RunResult:
    cost: float
    finish_tick: int        # ticks until the work was done; -1 when the deadline was missed
    spot_ticks: int
    on_demand_ticks: int
    launches: int
    preemptions: int
    unavailable_spot_requests: int   # SPOT asked where spot was unavailable (ran as NONE)
    guard_overrides: int             # ticks where the deadline guard replaced the decision
    region_switches: int = 0

    @property
    def missed(self) -> bool:
        return self.finish_tick < 0


def _coerce_action(action: Any, _plain=plain_int) -> int:
    """Slow path: accept int subclasses (e.g. IntEnum) by their genuine value (whatever their
    comparisons claim) and numpy integers; reject the rest."""
    try:
        value = _plain(action)
    except TypeError:
        raise ActionError(f"decide() returned an object of type {type(action).__name__}; "
                          f"return NONE (0), SPOT (1) or ON_DEMAND (2)") from None
    if not 0 <= value <= 2:
        raise ActionError(f"decide() returned {value}; return NONE (0), SPOT (1) or ON_DEMAND (2)")
    return value


def _coerce_multi(out: Any, num_regions: int, _plain=plain_int) -> tuple[int, int]:
    # tuple's own methods: a tuple subclass (a namedtuple is fine) cannot lie about its items.
    if not issubclass(type(out), tuple) or tuple.__len__(out) != 2:
        raise ActionError(f"decide() returned {type(out).__name__}; return an action (NONE=0, "
                          f"SPOT=1, ON_DEMAND=2) or a pair (action, region)")
    action = _coerce_action(tuple.__getitem__(out, 0))
    raw = tuple.__getitem__(out, 1)
    try:
        region = _plain(raw)
    except TypeError:
        raise ActionError(f"decide() returned a region of type {type(raw).__name__}; regions "
                          f"are ints 0..{num_regions - 1}") from None
    if not 0 <= region < num_regions:
        raise ActionError(f"decide() returned region {region}; regions are 0..{num_regions - 1}")
    return action, region


def run_single(decide: Callable[[SpotState], Any], scenario: Scenario, available: bytes,
               *, guard: bool = True, _state_cls=SpotState, _result=RunResult,
               _coerce=_coerce_action) -> RunResult:
    """One region: `available[k]` is 1 when spot can run during tick k."""
    NONE_, SPOT_, OD_ = 0, 1, 2   # literals: immune to a candidate rebinding module names
    gap, d, work = scenario.gap_s, scenario.restart_overhead_s, scenario.task_s
    ticks = scenario.deadline_ticks
    if len(available) < ticks:
        raise ValueError(f"trace has {len(available)} ticks, the deadline needs {ticks}")
    state = _state_cls(scenario)
    history = state._hist[0]
    remember = history.append
    n_spot = n_od = launches = preemptions = bad_spot = overrides = 0
    done = oh = cluster = 0
    finish = -1
    for k in range(ticks):
        a = available[k]
        remember(a)
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
        req = decide(state)
        if type(req) is not int or req > 2 or req < 0:  # type(): __class__ can lie
            req = _coerce(req)
        if req == SPOT_ and not a:
            req = NONE_
            bad_spot += 1
        if guard and (work - done + d + gap - 1) // gap >= ticks - k:
            forced = SPOT_ if (cluster == SPOT_ and oh == 0) else OD_
            if forced != req:
                overrides += 1
                req = forced
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
    hours = gap / 3600.0
    cost = n_spot * hours * scenario.spot_price + n_od * hours * scenario.on_demand_price
    return _result(cost, finish, n_spot, n_od, launches, preemptions, bad_spot, overrides)


# What a multi-region run shows its policy at the start of tick k, in this order: tick, work
# done, overhead left, cluster, last cluster, region, preempted, every region's availability
# (bytes) and spot price now. Nothing of a later tick.
MultiView = tuple[int, int, int, int, int, int, bool, bytes, tuple[float, ...]]
# A validated decision: (action, region to run it in).
Decision = tuple[int, int]


# Every tick's availability of each region (bytes) and spot prices (a tuple), from tick 0.
Columns = tuple[list[bytes], list[tuple[float, ...]]]


def region_columns(available: tuple[bytes, ...], prices: tuple[tuple[float, ...], ...],
                   ticks: int | None = None) -> Columns:
    """The traces of a run's regions tick by tick, for ticks 0..ticks-1 (as far as every
    trace goes when None): what `multi_ticks` reads each tick."""
    if ticks is None:
        ticks = min(min(len(row) for row in available), min(len(p) for p in prices))
    return ([bytes(col) for col in zip(*(row[:ticks] for row in available), strict=True)],
            list(zip(*(p[:ticks] for p in prices), strict=True)))


def multi_ticks(scenario: Scenario, available: tuple[bytes, ...],
                prices: tuple[tuple[float, ...], ...], *, guard: bool = True,
                columns: Columns | None = None,
                _result=RunResult) -> Generator[MultiView, Decision, RunResult]:
    """The tick logic of `run_multi` as a generator: it yields the `MultiView` of each tick and
    is sent the validated decision of that tick; it returns the `RunResult`. The policy, its
    state object and the checking of what it returns belong to the driver (`drive_multi` in
    this process, `lockstep_multi` for a candidate in another), so both run this one logic.
    `columns`: `region_columns(available, prices)` when the caller made it already (a judge
    makes every run's once per stage).
    """
    NONE_, SPOT_, OD_ = 0, 1, 2   # literals: immune to a candidate rebinding module names
    gap, d, work = scenario.gap_s, scenario.restart_overhead_s, scenario.task_s
    ticks = scenario.deadline_ticks
    num_regions = len(available)
    if num_regions != scenario.num_regions or len(prices) != num_regions:
        raise ValueError("available, prices and scenario.num_regions disagree")
    if min(len(row) for row in available) < ticks or min(len(p) for p in prices) < ticks:
        raise ValueError(f"traces are shorter than the {ticks} ticks the deadline needs")
    avail_cols, price_cols = columns or region_columns(available, prices, ticks)
    if len(avail_cols) < ticks or len(price_cols) < ticks:
        raise ValueError(f"columns of {len(avail_cols)} ticks, the deadline needs {ticks}")
    hours = gap / 3600.0
    od_tick = hours * scenario.on_demand_price
    cost = 0.0
    n_spot = n_od = launches = preemptions = bad_spot = overrides = switches = 0
    done = oh = cluster = region = 0
    finish = -1
    for k in range(ticks):
        col = avail_cols[k]
        a = col[region]
        last = cluster
        preempted = cluster == SPOT_ and not a
        if preempted:
            cluster = NONE_
            oh = 0
            preemptions += 1
        req, target = yield (k, done, oh, cluster, last, region, preempted, col, price_cols[k])
        if req == SPOT_ and not col[target]:
            req = NONE_
            bad_spot += 1
        if guard and (work - done + d + gap - 1) // gap >= ticks - k:
            forced = SPOT_ if (cluster == SPOT_ and oh == 0) else OD_
            if forced != req or target != region:
                overrides += 1
                req, target = forced, region
        if target != region:
            region = target
            switches += 1
            cluster = NONE_          # the old cluster is released; a new one launches below
            oh = 0
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
            cost += price_cols[k][region] * hours
        else:
            n_od += 1
            cost += od_tick
        if oh >= gap:
            oh -= gap
            continue
        done += gap - oh
        oh = 0
        if done >= work:
            finish = k + 1
            break
    return _result(cost, finish, n_spot, n_od, launches, preemptions, bad_spot, overrides,
                   switches)


def drive_multi(decide: Callable[[MultiSpotState], Any],
                ticks: Generator[MultiView, Decision, RunResult], state: MultiSpotState,
                *, _coerce=_coerce_action, _coerce_pair=_coerce_multi) -> RunResult:
    """Run `ticks` (`multi_ticks` or the leaderboard's) with `decide` in this process: each
    tick's view is published into `state` (its histories grow by one tick), and what `decide`
    returns is checked (an action stays in the current region; a pair moves first)."""
    appends = [h.append for h in state._hist]
    num_regions = len(appends)
    try:
        view = next(ticks)
        while True:
            k, done, oh, cluster, last, region, preempted, col, price = view
            for r in range(num_regions):
                appends[r](col[r])
            state._preempted = preempted
            state._tick = k
            state._done = done
            state._oh = oh
            state._cluster = cluster
            state._last = last
            state._avail = col[region]
            state._region = region
            state._avail_now = col
            state._price_now = price
            out = decide(state)
            if type(out) is int and 0 <= out <= 2:
                decision = (out, region)
            elif isinstance(out, tuple):
                decision = _coerce_pair(out, num_regions)
            else:
                decision = (_coerce(out), region)
            view = ticks.send(decision)
    except StopIteration as stop:
        return stop.value


def run_multi(decide: Callable[[MultiSpotState], Any], scenario: Scenario,
              available: tuple[bytes, ...], prices: tuple[tuple[float, ...], ...],
              *, guard: bool = True, _state_cls=MultiSpotState, _result=RunResult,
              _coerce=_coerce_action, _coerce_pair=_coerce_multi) -> RunResult:
    """Many regions on aligned traces; spot is billed at its region's price of each tick.

    `decide` returns an action (stay in the current region) or a pair (action, region). Moving
    while a cluster runs relaunches it in the new region (paying the overhead); moving with
    NONE is free. Starts in region 0. (`multi_ticks` run by `drive_multi`.)
    """
    ticks = multi_ticks(scenario, available, prices, guard=guard, _result=_result)
    return drive_multi(decide, ticks, _state_cls(scenario, len(available)), _coerce=_coerce,
                       _coerce_pair=_coerce_pair)

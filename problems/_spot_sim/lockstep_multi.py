"""Run many multi-region spot runs against a candidate in another process, in lockstep.

The multi-region sibling of `lockstep.run_lockstep`. Each run's tick logic is a generator
(`simulate.multi_ticks`, or the leaderboard's `multi_ticks_leaderboard`) kept in the judge:
it holds the whole trace and yields only the view of the current tick. Every step sends one
message for every run still going (a `MultiFleet` of runners in the candidate's process,
`problems._spot_sim.remote_multi`): each run's progress, the other fields of its view that
changed since the last step, and the tick's availability column and price changes of the
shared region streams (taken from a `Plan`, made once per list of runs: a stage's plan is made
when the evaluator is imported). One decision per run comes back, which the judge checks as
`run_multi` checks a local policy's (an action, or a pair (action, region) with a region in
range) before it sends it into that run's generator. All runs are at the same tick in every
message, so runs that share a region's trace (most scenarios share one) never let the
candidate see one's future through another, module state included.
"""

from __future__ import annotations

import dataclasses
from array import array
from collections.abc import Callable, Generator, Sequence
from typing import Any

from evaluators.harness_api import Built, Candidate, CandidateError
from problems._spot_sim.lockstep import tick_failure
from problems._spot_sim.remote_multi import FIELDS, STAY
from problems._spot_sim.simulate import (
    ActionError,
    Columns,
    Decision,
    MultiView,
    RunResult,
    _coerce_action,
    _coerce_multi,
    region_columns,
)
from problems._spot_sim.state import Scenario

Ticks = Callable[..., Generator[MultiView, Decision, RunResult]]


_SCENARIO_FIELDS = tuple(f.name for f in dataclasses.fields(Scenario))
_REGION = FIELDS.index("_region")   # view[2:7] (overhead left .. preempted) is in FIELDS order


def decision_of(raw: Any, num_regions: int, region: int) -> Decision:
    """A decision as it came over the channel (tuples arrive as lists), checked: an action
    0..2 stays in `region`, a pair moves to a region in 0..num_regions-1. ActionError says
    what is wrong, in `run_multi`'s words."""
    if type(raw) is int and 0 <= raw <= 2:
        return raw, region
    if type(raw) is list:
        return _coerce_multi(tuple(raw), num_regions)
    if type(raw) is dict and type(raw.get("returned")) is str and len(raw) == 1:
        raise ActionError(f"decide() returned an object of type {raw['returned'][:60]}; "
                          f"return NONE (0), SPOT (1) or ON_DEMAND (2), or a pair "
                          f"(action, region)")
    return _coerce_action(raw), region


@dataclasses.dataclass(frozen=True)
class Plan:
    """What a stage's steps send that depends on the traces alone, made once per list of runs
    (`plan`): each run's stream of each region; per tick every stream's availability and the
    streams whose price changed with their new prices; and each run's `region_columns`."""

    of_run: list[list[int]]        # each run's stream of each region
    num_streams: int
    columns: list[bytes]           # per tick: one availability byte a stream
    price_changes: list[tuple[bytes, bytes]]   # per tick: streams (int32), prices (float64)
    run_columns: list[Columns]     # each run's regions tick by tick, as its generator reads them


def plan(runs: Sequence[Any]) -> Plan:
    """The stage's `Plan`. The region traces runs share are the same objects
    (`grids.multi_runs`): one stream each. A stream past its trace's end belongs to no
    active run (each run's ticks end within its traces): 0 and its last price keep the
    message's shape."""
    index: dict[tuple[int, int], int] = {}
    streams: list[tuple[bytes, Any]] = []
    of_run = []
    for run in runs:
        mine = []
        for available, prices in zip(run.available, run.prices, strict=True):
            key = (id(available), id(prices))
            if key not in index:
                index[key] = len(streams)
                streams.append((available, prices))
            mine.append(index[key])
        of_run.append(mine)
    longest = max((min(len(a), len(p)) for a, p in streams), default=0)
    padded = [bytes(a[:longest]).ljust(longest, b"\0") for a, _ in streams]
    columns = [bytes(column) for column in zip(*padded, strict=True)]
    # Each tick's price changes, stream by stream in stream order; none once a trace ends.
    moves: list[list[tuple[int, float]]] = [[] for _ in range(longest)]
    for s, (_, prices) in enumerate(streams):
        shown = None
        for tick, price in enumerate(prices[:longest]):
            if price != shown:
                moves[tick].append((s, price))
                shown = price
    none = (b"", b"")
    changes = [(array("i", [s for s, _ in moved]).tobytes(),
                array("d", [p for _, p in moved]).tobytes()) if moved else none
               for moved in moves]
    return Plan(of_run, len(streams), columns, changes,
                [region_columns(run.available, run.prices) for run in runs])


def _decisions(raw: Any, active: list[int], where: list[int], regions: list[int],
               runs: Sequence[Any]) -> list[Decision]:
    """The step's reply as checked decisions, in `active`'s order (`where`: each one's region
    now): bytes of one action a run, bytes of two planes (actions, then regions with STAY for
    "stay"), or the list of `remote_multi._plain_decision`s. ActionError names the first run
    whose decision is not one `run_multi` takes."""
    n = len(active)
    if type(raw) is bytes and len(raw) == n:
        if max(raw, default=0) <= 2:
            return list(zip(raw, where, strict=True))
        raw = list(raw)
    elif type(raw) is bytes and len(raw) == 2 * n:
        out = []
        for i, region_now, action, region in zip(active, where, raw[:n], raw[n:], strict=True):
            if action <= 2 and region == STAY:
                out.append((action, region_now))
            elif action <= 2 and region < regions[i]:
                out.append((action, region))
            else:
                try:
                    out.append(decision_of(action if region == STAY else [action, region],
                                           regions[i], region_now))
                except ActionError as exc:
                    raise ActionError(f"run {runs[i].key}: {exc}") from None
        return out
    if type(raw) is not list or len(raw) != n:
        raise ActionError(f"the candidate sent {type(raw).__name__} for {n} decisions")
    out = []
    for i, region_now, value in zip(active, where, raw, strict=True):
        try:
            out.append(decision_of(value, regions[i], region_now))
        except ActionError as exc:
            raise ActionError(f"run {runs[i].key}: {exc}") from None
    return out


def run_lockstep_multi(candidate: Candidate, runs: Sequence[Any], ticks: Ticks,
                       stage_plan: Plan | None = None) -> list[RunResult]:
    """Every run (`.key`, `.scenario`, `.available`, `.prices`) with a fresh
    `Policy(scenario)` of the candidate's, under the tick logic `ticks`; raises CandidateError
    (the candidate failed) or ActionError (naming the run). `stage_plan`: `plan(runs)`, made
    once for a stage's runs (made here when not given)."""
    if stage_plan is None:
        stage_plan = plan(runs)
    elif len(stage_plan.of_run) != len(runs):
        raise ValueError(f"a plan of {len(stage_plan.of_run)} runs for {len(runs)} runs")
    gens = [ticks(run.scenario, run.available, run.prices, columns=columns)
            for run, columns in zip(runs, stage_plan.run_columns, strict=True)]
    results: list[RunResult | None] = [None] * len(runs)
    active: list[int] = []
    views: list[MultiView] = []
    ended: list[int] = []
    for i, gen in enumerate(gens):
        try:
            views.append(next(gen))
            active.append(i)
        except StopIteration as stop:      # a run with no tick to decide
            results[i] = stop.value
            ended.append(i)
    # Every run's Policy, made in the candidate's process from the scenario's plain fields.
    fleet = candidate.keep([Built("problems._spot_sim.remote_multi:MultiFleet",
                                  [[getattr(run.scenario, f) for f in _SCENARIO_FIELDS]
                                   for run in runs], stage_plan.of_run,
                                  stage_plan.num_streams)],
                           kind="Policy")[0]
    regions = [run.scenario.num_regions for run in runs]
    columns, price_changes = stage_plan.columns, stage_plan.price_changes
    tick = 0
    # What each run's state in the candidate's process shows of FIELDS (its defaults first),
    # and what every step sends: each active run's progress, and the fields that changed.
    shown = [(0, 0, 0, 0, False)] * len(runs)
    done: list[int] = []
    changes: list[int] = []
    for i, view in zip(active, views, strict=True):
        if view[0] != tick:                # the promise the module makes
            raise RuntimeError("lockstep broken: runs at different ticks in one step")
        done.append(view[1])
        now = view[2:7]
        if now != shown[i]:
            changes += _changed(i, shown[i], now)
            shown[i] = now
    sends = [gen.send for gen in gens]
    while active:
        try:
            raw = fleet.step(tick, array("i", ended).tobytes(), done, changes, columns[tick],
                             *price_changes[tick])
        except CandidateError as exc:
            raise tick_failure(fleet, runs, exc, tick) from None
        where = [shown[i][_REGION] for i in active]    # each active run's region now
        if type(raw) is bytes and len(raw) == len(active) and max(raw) <= 2:
            decisions: Any = zip(raw, where, strict=True)  # every run stays where it is
        else:
            decisions = _decisions(raw, active, where, regions, runs)
        going: list[int] = []
        ended, done, changes = [], [], []
        tick += 1
        for i, decision in zip(active, decisions, strict=True):
            try:
                view = sends[i](decision)
            except StopIteration as stop:
                results[i] = stop.value
                ended.append(i)
                continue
            if view[0] != tick:            # every run's next view is of the next tick
                raise RuntimeError("lockstep broken: runs at different ticks in one step")
            done.append(view[1])
            now = view[2:7]
            if now != shown[i]:
                changes += _changed(i, shown[i], now)
                shown[i] = now
            going.append(i)
        active = going
    done_results = [r for r in results if r is not None]
    assert len(done_results) == len(runs)   # every run's generator ends (deadline, trace end)
    return done_results


def _changed(run: int, old: tuple, new: tuple) -> list[int]:
    """(run, field, value) of every field of `new` that differs from `old` (FIELDS' order)."""
    out = []
    for field, (was, value) in enumerate(zip(old, new, strict=True)):
        if value != was:
            out += (run, field, int(value))
    return out

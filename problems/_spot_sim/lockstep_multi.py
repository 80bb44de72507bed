"""Run many multi-region spot runs against a candidate in another process, in lockstep.

The multi-region sibling of `lockstep.run_lockstep`. Each run's tick logic is a generator
(`simulate.multi_ticks`, or the leaderboard's `multi_ticks_leaderboard`) kept in the judge:
it holds the whole trace and yields only the view of the current tick. Every step sends one
message with the views of every run still going (a `MultiFleet` of runners in the candidate's
process, `problems._spot_sim.remote_multi`) and gets one decision per run back, which the judge
checks as `run_multi` checks a local policy's (an action, or a pair (action, region) with a
region in range) before it sends it into that run's generator. All runs are at the same tick
in every message, so runs that share a region's trace (most scenarios share one) never let the
candidate see one's future through another, module state included.
"""

from __future__ import annotations

import dataclasses
from array import array
from collections.abc import Callable, Generator, Sequence
from typing import Any

from evaluators.harness_api import Built, Candidate, CandidateError
from problems._spot_sim.lockstep import tick_failure
from problems._spot_sim.remote_multi import STAY
from problems._spot_sim.simulate import (
    ActionError,
    Decision,
    MultiView,
    RunResult,
    _coerce_action,
    _coerce_multi,
)
from problems._spot_sim.state import Scenario

Ticks = Callable[..., Generator[MultiView, Decision, RunResult]]


_SCENARIO_FIELDS = tuple(f.name for f in dataclasses.fields(Scenario))


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


def _streams(runs: Sequence[Any]) -> tuple[list[list[int]], list[tuple[bytes, Any]]]:
    """Each run's stream of each region, and the streams (availability row, price row): the
    region traces runs share are the same objects (`grids.multi_runs`), and one stream each."""
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
    return of_run, streams


def _decisions(raw: Any, active: list[int], views: list[MultiView], regions: list[int],
               runs: Sequence[Any]) -> list[Decision]:
    """The step's reply as checked decisions, in `active`'s order: bytes of one action a run,
    bytes of two planes (actions, then regions with STAY for "stay"), or the list of
    `remote_multi._plain_decision`s. ActionError names the first run whose decision is not
    one `run_multi` takes."""
    n = len(active)
    if type(raw) is bytes and len(raw) == n:
        if max(raw) <= 2:
            return [(a, view[5]) for a, view in zip(raw, views, strict=True)]
        raw = list(raw)
    elif type(raw) is bytes and len(raw) == 2 * n:
        out = []
        for i, view, action, region in zip(active, views, raw[:n], raw[n:], strict=True):
            if action <= 2 and region == STAY:
                out.append((action, view[5]))
            elif action <= 2 and region < regions[i]:
                out.append((action, region))
            else:
                try:
                    out.append(decision_of(action if region == STAY else [action, region],
                                           regions[i], view[5]))
                except ActionError as exc:
                    raise ActionError(f"run {runs[i].key}: {exc}") from None
        return out
    if type(raw) is not list or len(raw) != n:
        raise ActionError(f"the candidate sent {type(raw).__name__} for {n} decisions")
    out = []
    for i, view, value in zip(active, views, raw, strict=True):
        try:
            out.append(decision_of(value, regions[i], view[5]))
        except ActionError as exc:
            raise ActionError(f"run {runs[i].key}: {exc}") from None
    return out


def run_lockstep_multi(candidate: Candidate, runs: Sequence[Any], ticks: Ticks
                       ) -> list[RunResult]:
    """Every run (`.key`, `.scenario`, `.available`, `.prices`) with a fresh
    `Policy(scenario)` of the candidate's, under the tick logic `ticks`; raises CandidateError
    (the candidate failed) or ActionError (naming the run)."""
    gens = [ticks(run.scenario, run.available, run.prices) for run in runs]
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
    of_run, streams = _streams(runs)
    # Every run's Policy, made in the candidate's process from the scenario's plain fields.
    fleet = candidate.keep([Built("problems._spot_sim.remote_multi:MultiFleet",
                                  [[getattr(run.scenario, f) for f in _SCENARIO_FIELDS]
                                   for run in runs], of_run, len(streams))],
                           kind="Policy")[0]
    regions = [run.scenario.num_regions for run in runs]
    avail_rows = [available for available, _ in streams]
    price_rows = [prices for _, prices in streams]
    shown: list[Any] = [None] * len(streams)   # the price of each stream the candidate holds
    shortest = min((min(len(a), len(p)) for a, p in streams), default=0)
    tick = views[0][0] if views else 0
    numbers: list[int] = []                # the six numbers of every active run's view
    for view in views:
        if view[0] != tick:                # the promise the module makes
            raise RuntimeError("lockstep broken: runs at different ticks in one step")
        numbers += view[1:7]
    while active:
        # A stream past its trace's end belongs to no active run (each run's ticks end
        # within its traces): 0 and its last price keep the message's shape.
        if tick < shortest:
            column = bytes([row[tick] for row in avail_rows])
            now = [row[tick] for row in price_rows]
        else:
            column = bytes([row[tick] if tick < len(row) else 0 for row in avail_rows])
            now = [row[tick] if tick < len(row) else shown[s] for s, row in enumerate(price_rows)]
        changed, prices = array("i"), array("d")
        if now != shown:
            for s, (price, held) in enumerate(zip(now, shown, strict=True)):
                if price != held:
                    changed.append(s)
                    prices.append(price)
            shown = now
        try:
            raw = fleet.step(tick, array("i", ended).tobytes(), numbers,
                             column, changed.tobytes(), prices.tobytes())
        except CandidateError as exc:
            raise tick_failure(fleet, runs, exc, tick) from None
        decisions = _decisions(raw, active, views, regions, runs)
        going, ahead, ended, numbers = [], [], [], []
        tick += 1
        for i, decision in zip(active, decisions, strict=True):
            try:
                view = gens[i].send(decision)
            except StopIteration as stop:
                results[i] = stop.value
                ended.append(i)
                continue
            if view[0] != tick:            # every run's next view is of the next tick
                raise RuntimeError("lockstep broken: runs at different ticks in one step")
            numbers += view[1:7]
            ahead.append(view)
            going.append(i)
        active, views = going, ahead
    done = [r for r in results if r is not None]
    assert len(done) == len(runs)   # every run's generator ends (at its deadline or trace's end)
    return done

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

from collections.abc import Callable, Generator, Sequence
from typing import Any

from evaluators.harness_api import Built, Candidate, CandidateError
from problems._spot_sim.lockstep import _which_run
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


def _scenario(scn: Scenario) -> Built:
    return Built("problems._spot_sim.state:Scenario", scn.gap_s, scn.deadline_s, scn.task_s,
                 scn.restart_overhead_s, scn.on_demand_price, scn.spot_price, scn.num_regions)


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


def _row(view: MultiView) -> list[Any]:
    _k, done, oh, cluster, last, region, preempted, col, prices = view
    return [done, oh, cluster, last, region, preempted, col, list(prices)]


def run_lockstep_multi(candidate: Candidate, runs: Sequence[Any], ticks: Ticks
                       ) -> list[RunResult]:
    """Every run (`.key`, `.scenario`, `.available`, `.prices`) with a fresh
    `Policy(scenario)` of the candidate's, under the tick logic `ticks`; raises CandidateError
    (the candidate failed) or ActionError (naming the run)."""
    gens = [ticks(run.scenario, run.available, run.prices) for run in runs]
    results: list[RunResult | None] = [None] * len(runs)
    views: dict[int, MultiView] = {}
    for i, gen in enumerate(gens):
        try:
            views[i] = next(gen)
        except StopIteration as stop:      # a run with no tick to decide
            results[i] = stop.value
    scenarios = [_scenario(run.scenario) for run in runs]
    fleet = candidate.keep([Built("problems._spot_sim.remote_multi:MultiFleet", [
        Built("problems._spot_sim.remote_multi:MultiRunner", Built("program:Policy", s), s)
        for s in scenarios])], kind="Policy")[0]
    regions = [run.scenario.num_regions for run in runs]
    active = sorted(views)
    while active:
        tick = views[active[0]][0]
        if any(views[i][0] != tick for i in active):   # the promise the module makes
            raise RuntimeError("lockstep broken: runs at different ticks in one step")
        try:
            raw = fleet.step(active, tick, [_row(views[i]) for i in active])
        except CandidateError as exc:
            detail = getattr(exc, "detail", None) or str(exc)
            if exc.kind == "crash":
                detail = f"the policy raised {detail}"
            raise CandidateError(exc.kind, f"{_which_run(fleet, runs, exc)}at tick {tick}: "
                                           f"{detail}") from None
        if type(raw) is not list or len(raw) != len(active):
            raise ActionError(f"at tick {tick} the candidate sent {type(raw).__name__} "
                              f"for {len(active)} decisions")
        going = []
        for i, out in zip(active, raw, strict=True):
            try:
                decision = decision_of(out, regions[i], views[i][5])
            except ActionError as exc:
                raise ActionError(f"run {runs[i].key}: {exc}") from None
            try:
                views[i] = gens[i].send(decision)
                going.append(i)
            except StopIteration as stop:
                results[i] = stop.value
        active = going
    done = [r for r in results if r is not None]
    assert len(done) == len(runs)   # every run's generator ends (at its deadline or trace's end)
    return done

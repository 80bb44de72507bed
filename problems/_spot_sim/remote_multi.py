"""The candidate's side of multi-region spot runs (made in the candidate's process, never the
judge's): `remote.py`'s runner and fleet for `MultiSpotState`.

Each tick the judge sends, per run still going, only what the state shows at that tick (work
done, overhead, clusters, region, preemption, every region's availability and spot price now);
the runner appends that tick's availability to every region's history, publishes the rest into
the state and asks the policy. All runs are at the same tick in every message
(`problems._spot_sim.lockstep_multi`), so no run's history is ever ahead of another's.

What a policy returns goes back as plain data: an int (or numpy scalar) as its genuine value,
a tuple (the pair (action, region)) as the list of its items, anything else as
{"returned": its type's name}, so the judge can say what came back (a list is no pair, as in
`simulate.run_multi`). The judge validates every value; this only keeps its messages precise.
"""

from __future__ import annotations

import sys
from typing import Any

from problems._spot_sim.state import MultiSpotState, Scenario


def _plain_decision(out: Any) -> Any:
    kind = type(out)   # the real type: `__class__` can lie
    if issubclass(kind, tuple):
        return list(tuple.__iter__(out))   # tuple's own iterator: a subclass cannot lie
    numpy = sys.modules.get("numpy")
    if issubclass(kind, int) or (numpy is not None and issubclass(kind, numpy.generic)):
        return out                         # the channel sends its genuine value
    return {"returned": kind.__name__}


class MultiRunner:
    __slots__ = ("decide", "state", "appends")

    def __init__(self, policy: Any, scenario: Scenario) -> None:
        self.state = MultiSpotState(scenario, scenario.num_regions)
        self.appends = [history.append for history in self.state._hist]
        self.decide = policy.decide


class MultiFleet:
    """Every run's MultiRunner, stepped together: one call per tick for all runs still going."""

    def __init__(self, runners: list[MultiRunner]) -> None:
        self.runners = runners
        self.current = -1

    def step(self, which: list[int], tick: int, rows: list[list[Any]]) -> list[Any]:
        """`rows[j]` for run `which[j]`: [work done, overhead left, cluster, last cluster,
        region, preempted, availability of every region (bytes), spot price of every region]."""
        runners = self.runners
        out = []
        append = out.append
        for i, (done, oh, cluster, last, region, preempted, col, prices) in zip(
                which, rows, strict=True):
            self.current = i
            runner = runners[i]
            for add, bit in zip(runner.appends, col, strict=True):
                add(bit)
            state = runner.state
            state._tick, state._done, state._oh = tick, done, oh
            state._cluster, state._last, state._preempted = cluster, last, preempted
            state._region, state._avail = region, col[region]
            state._avail_now, state._price_now = col, tuple(prices)
            decision = runner.decide(state)
            append(decision if type(decision) is int else _plain_decision(decision))
        return out

    def failed_run(self) -> int:
        """The run whose policy was asked last (the one that raised, after a failed step)."""
        return self.current

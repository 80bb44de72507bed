"""The candidate's side of a spot run (made in the candidate's process, never the judge's).

A `Runner` holds one run's `Policy` (the candidate's own class, made with the run's scenario)
and the `SpotState` that policy reads. Each tick the judge sends only what the state shows at
that tick (the availability of this tick, progress, overhead, clusters); the runner publishes
it into the state, appends the availability to the history, and asks the policy. The state
never holds a tick the judge has not sent, and the judge sends every run's tick k in the same
message (`problems._spot_sim.lockstep`), so no run can learn the future of another.
"""

from __future__ import annotations

from typing import Any

from problems._spot_sim.state import Scenario, SpotState


class Runner:
    __slots__ = ("decide", "state", "_remember")

    def __init__(self, policy: Any, scenario: Scenario) -> None:
        self.state = SpotState(scenario)
        self._remember = self.state._hist[0].append
        self.decide = policy.decide

    def step(self, tick: int, done: int, oh: int, cluster: int, last: int, avail: int,
             preempted: bool) -> Any:
        state = self.state
        self._remember(avail)
        state._tick, state._done, state._oh = tick, done, oh
        state._cluster, state._last, state._avail = cluster, last, avail
        state._preempted = preempted
        return self.decide(state)


class Fleet:
    """Every run's Runner, stepped together: one call per tick for all runs still going (the
    runner's step inlined: this loop is the candidate side's whole per-decision cost)."""

    def __init__(self, runners: list[Runner]) -> None:
        self.runners = runners
        self.current = -1

    def step(self, which: Any, tick: int, done: Any, oh: Any, cluster: Any, last: Any,
             avail: Any, preempted: Any) -> list[Any]:
        runners = self.runners
        out = []
        append = out.append
        for i, d, o, c, la, a, p in zip(which.tolist(), done.tolist(), oh.tolist(),
                                        cluster.tolist(), last.tolist(), avail.tolist(),
                                        preempted.tolist(), strict=True):
            self.current = i
            runner = runners[i]
            runner._remember(a)
            state = runner.state
            state._tick, state._done, state._oh = tick, d, o
            state._cluster, state._last, state._avail, state._preempted = c, la, a, p
            append(runner.decide(state))
        return out

    def failed_run(self) -> int:
        """The run whose policy was asked last (the one that raised, after a failed step)."""
        return self.current

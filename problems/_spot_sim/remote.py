"""The candidate's side of the spot runs (made in the candidate's process, never the judge's).

A `Fleet` holds every run's `Policy` (the candidate's own class, made here with the run's
scenario, from the scenario's fields as the judge sends them) and the `FleetState` that
policy reads. Each tick the judge sends, for all runs at once
(`problems._spot_sim.lockstep`), only what the states do not already show:
- the tick number;
- the runs that ended since the last tick (their policies are never asked again);
- every active run's progress (it changes on most ticks: written in the same pass as the
  decision, while the state is at hand);
- the fields that changed: the run and the new value of every change (native int32 bytes:
  the judge and the candidate share a machine), field by field in the order of `FIELDS`, and
  where each field's changes end;
- the availability of every run at this tick (n bytes, 0 for runs that ended), appended to
  one history shared by all runs: a run's history is every n-th byte of it.
So the per-run work is two slots written and one call, and the states never hold a tick the
judge has not sent: since every run is at the same tick, no run learns the future of another.

A policy that writes its state's private slots sees its own writes until the judge next
changes that field (the run's truth stays in the judge's process, which validates every
decision).
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Sequence
from typing import Any

from evaluators.channel import PROGRAM_MODULE
from evaluators.validate import CandidateLoadError
from problems._spot_sim.state import Scenario, SpotState

# The state's slots the judge updates when they change, in the order of a step's `ends`.
FIELDS = ("_oh", "_cluster", "_last", "_avail", "_preempted")
_PREEMPTED = FIELDS.index("_preempted")


class FleetState(SpotState):
    """One run's state; its availability history is its column of the fleet's shared one."""

    __slots__ = ("_seen", "_row", "_stride")

    def __init__(self, scenario: Scenario, seen: bytearray, row: int, stride: int) -> None:
        super().__init__(scenario)
        self._seen, self._row, self._stride = seen, row, stride

    @property
    def spot_history(self) -> bytes:
        """Availability of the current region for ticks 0..tick (1 = available)."""
        return bytes(self._seen[self._row:(self._tick + 1) * self._stride:self._stride])


class Fleet:
    """Every run's policy and state, stepped together: one call per tick for all runs still
    going (this loop is the candidate side's whole per-decision cost)."""

    def __init__(self, scenarios: Sequence[Sequence[Any]]) -> None:
        """`scenarios`: each run's Scenario fields, in the dataclass's order."""
        program = sys.modules.get(PROGRAM_MODULE)
        policy_class = getattr(program, "Policy", None)
        if not callable(policy_class):
            raise CandidateLoadError("import", "the program defines no class 'Policy' (the "
                                               "evaluator makes one per run: Policy(scenario))")
        n = len(scenarios)
        self.seen = bytearray()
        self.states, self.active = [], []
        for row, fields in enumerate(scenarios):
            scenario = Scenario(*fields)
            state = FleetState(scenario, self.seen, row, n)
            self.states.append(state)
            # (row, state, decide) of the runs still going, in run order (the judge's order).
            self.active.append((row, state, policy_class(scenario).decide))
        self.current = -1

    def step(self, tick: int, ended: bytes, done: bytes, ends: list[int], rows: bytes,
             values: bytes, column: bytes) -> bytes | list[Any]:
        """Every active run's decision at `tick`: bytes (one per run) when every decision is
        an exact int 0..255, else the list as the policies returned it (the judge checks)."""
        if len(column) != len(self.states) or len(ends) != len(FIELDS):
            raise ValueError("a step gives every run's availability and where each field's "
                             "changes end")
        self.seen += column
        if ended:
            gone = set(array("i", ended))
            self.active = [entry for entry in self.active if entry[0] not in gone]
        states = self.states
        who, new = array("i", rows), array("i", values)
        start = 0
        for field, end in enumerate(ends):
            if start == end:
                continue
            if field == _PREEMPTED:
                for row, value in zip(who[start:end], new[start:end], strict=True):
                    states[row]._preempted = value != 0
            else:
                name = FIELDS[field]
                for row, value in zip(who[start:end], new[start:end], strict=True):
                    setattr(states[row], name, value)
            start = end
        progress = array("i", done)
        if len(progress) != len(self.active):
            raise ValueError(f"{len(progress)} runs' progress for {len(self.active)} runs")
        out: list[Any] = []
        append = out.append
        try:
            for (_, state, decide), work_done in zip(self.active, progress, strict=True):
                state._tick, state._done = tick, work_done
                append(decide(state))
        except BaseException:
            self.current = self.active[len(out)][0]
            raise
        if set(map(type, out)) <= {int}:  # type(): a bool or an int subclass takes the list
            try:
                return bytes(out)
            except ValueError:  # outside 0..255: the judge names it
                pass
        return out

    def failed_run(self) -> int:
        """The run whose policy was asked last (the one that raised, after a failed step)."""
        return self.current

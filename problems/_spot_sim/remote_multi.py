"""The candidate's side of multi-region spot runs (made in the candidate's process, never the
judge's): `remote.py`'s fleet for `MultiSpotState`.

A `MultiFleet` holds every run's `Policy` (the candidate's own class, made here with the run's
scenario, from the scenario's fields as the judge sends them) and the state that policy reads.
The runs' regions are *streams*: one region's availability and price trace, which many runs
share (a scenario's runs and the scenarios with the same region on the same trace). Each tick
the judge sends, for all runs at once (`problems._spot_sim.lockstep_multi`), only what the
states do not already show:
- the tick number;
- the runs that ended since the last tick (their policies are never asked again);
- every active run's progress (it changes on most ticks: written in the decision pass);
- the other fields that changed (overhead left, cluster, last cluster, region, preempted:
  `FIELDS`), as (run, field, value) triples;
- every stream's availability at this tick (one byte each): appended to one history of all
  streams (stream s of tick t at t * streams + s) and kept as the current column, both
  shared by every run's state, which reads its regions there through its streams;
- the streams whose spot price changed, and their new prices (float64 bytes).
So a tick costs the candidate's side two writes a run and one call, and the states never hold
a tick the judge has not sent: since every run is at the same tick, no run learns the future
of another.

What the policies return goes back as bytes when every decision is a plain int (one byte a
run), or a plain int or a pair of plain ints (action, region) (two planes: the actions, then
the regions, 255 for "stay"); anything else takes the list of `_plain_decision`s, so the
judge can say what came back. The judge validates every value; this only keeps the messages
small and precise.

A policy that writes its state's private slots sees its own writes until the judge next
changes that field (the run's truth stays in the judge's process, which validates every
decision); `_hist`, `_avail`, `_avail_now` and `_price_now` are not kept: the public
properties read the shared streams.
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Sequence
from typing import Any

from evaluators.channel import PROGRAM_MODULE
from evaluators.validate import CandidateLoadError
from problems._spot_sim import ACTION_NAMES
from problems._spot_sim.state import MultiSpotState, Scenario

STAY = 255          # the region plane's value of a decision that names no region
# The state's slots the judge sends when they change (a step's `changes` name them by index).
FIELDS = ("_oh", "_cluster", "_last", "_region", "_preempted")
_PREEMPTED = FIELDS.index("_preempted")


def _plain_decision(out: Any) -> Any:
    kind = type(out)   # the real type: `__class__` can lie
    if issubclass(kind, tuple):
        return list(tuple.__iter__(out))   # tuple's own iterator: a subclass cannot lie
    numpy = sys.modules.get("numpy")
    if issubclass(kind, int) or (numpy is not None and issubclass(kind, numpy.generic)):
        return out                         # the channel sends its genuine value
    return {"returned": kind.__name__}


def _planes(out: list[Any]) -> bytes | None:
    """Actions then regions (STAY for a bare action), or None when a decision is not a plain
    int or a pair of plain ints that fit a byte (the list then says what it is)."""
    actions, regions = bytearray(), bytearray()
    try:
        for decision in out:
            if type(decision) is int:
                actions.append(decision)
                regions.append(STAY)
            elif type(decision) is tuple and len(decision) == 2:
                action, region = decision
                if type(action) is not int or type(region) is not int or region == STAY:
                    return None
                actions.append(action)
                regions.append(region)
            else:
                return None
    except ValueError:   # outside 0..255: the list names it
        return None
    return bytes(actions + regions)


class FleetMultiState(MultiSpotState):
    """One run's state: its regions' availability is read from the fleet's shared history and
    current column (through the run's stream of each region), its prices from the fleet's
    current price of each stream."""

    __slots__ = ("_streams", "_pnow", "_seen", "_now", "_width")

    def __init__(self, scenario: Scenario, streams: list[int], seen: bytearray, now: bytearray,
                 prices: list[float]) -> None:
        super().__init__(scenario, len(streams))
        self._streams, self._seen, self._now, self._pnow = streams, seen, now, prices
        self._width = len(now)

    @property
    def spot_available(self) -> bool:
        """Whether spot can run in the current region during this tick."""
        return bool(self._now[self._streams[self._region]])

    def spot_available_in(self, region: int) -> bool:
        """Whether spot can run in `region` during this tick."""
        return bool(self._now[self._streams[region]])

    @property
    def spot_history(self) -> bytes:
        """Availability of the current region for ticks 0..tick (1 = available)."""
        return bytes(self._seen[self._streams[self._region]::self._width])

    def spot_history_in(self, region: int) -> bytes:
        """Availability of `region` for ticks 0..tick (1 = available)."""
        return bytes(self._seen[self._streams[region]::self._width])

    @property
    def spot_price(self) -> float:
        """Spot $/h in the current region now."""
        return self._pnow[self._streams[self._region]]

    def spot_price_in(self, region: int) -> float:
        """Spot $/h in `region` now."""
        return self._pnow[self._streams[region]]

    @property
    def spot_prices(self) -> tuple[float, ...]:
        """Spot $/h of every region now."""
        prices = self._pnow
        return tuple([prices[s] for s in self._streams])

    @property
    def num_regions(self) -> int:
        return len(self._streams)

    def __repr__(self) -> str:
        # As `MultiSpotState` shows itself: the policy sees the class it was promised.
        return (f"MultiSpotState(tick={self._tick}, done={self._done}s/{self._scn.task_s}s, "
                f"cluster={ACTION_NAMES[self._cluster]}, region={self._region}, "
                f"spot_available={self.spot_available}, overhead_left={self._oh}s)")


class MultiFleet:
    """Every run's policy and state, stepped together: one call per tick for all runs still
    going (this loop is the candidate side's whole per-decision cost)."""

    def __init__(self, scenarios: Sequence[Sequence[Any]], streams: Sequence[Sequence[int]],
                 num_streams: int) -> None:
        """`scenarios`: each run's Scenario fields, in the dataclass's order; `streams`: each
        run's stream of each of its regions, in region order."""
        program = sys.modules.get(PROGRAM_MODULE)
        policy_class = getattr(program, "Policy", None)
        if not callable(policy_class):
            raise CandidateLoadError("import", "the program defines no class 'Policy' (the "
                                               "evaluator makes one per run: Policy(scenario))")
        if len(streams) != len(scenarios):
            raise ValueError("every run needs its streams")
        # Every stream's availability, tick after tick (stream s of tick t at t * width + s),
        # and this tick's column: shared by every state, written once a tick.
        self.seen = bytearray()
        self.now = bytearray(num_streams)
        self.prices = [0.0] * num_streams
        self.states, self.active = [], []
        for row, (fields, mine) in enumerate(zip(scenarios, streams, strict=True)):
            scenario = Scenario(*fields)
            mine = [int(s) for s in mine]
            if len(mine) != scenario.num_regions or not all(0 <= s < num_streams for s in mine):
                raise ValueError(f"run {row}: one stream in 0..{num_streams - 1} per region")
            state = FleetMultiState(scenario, mine, self.seen, self.now, self.prices)
            self.states.append(state)
            # (row, state, decide) of the runs still going, in run order (the judge's order).
            self.active.append((row, state, policy_class(scenario).decide))
        self.current = -1

    def step(self, tick: int, ended: bytes, done: list[int], changes: list[int], column: bytes,
             changed: bytes, prices: bytes) -> bytes | list[Any]:
        """Every active run's decision at `tick`. `done`: every active run's work done;
        `changes`: (run, field, value) triples, flat, of the fields (`FIELDS`) that changed;
        `column`: every stream's availability now; `changed`/`prices`: the streams whose price
        changed (int32), their prices (float64)."""
        if len(column) != len(self.now):
            raise ValueError("a step gives every stream's availability")
        self.seen += column
        self.now[:] = column
        now = self.prices
        for stream, price in zip(array("i", changed), array("d", prices), strict=True):
            now[stream] = price
        if ended:
            gone = set(array("i", ended))
            self.active = [entry for entry in self.active if entry[0] not in gone]
        if type(done) is not list or type(changes) is not list or len(changes) % 3:
            raise ValueError("a step gives a list of progress and a list of change triples")
        if changes:
            states = self.states
            each = iter(changes)
            for row, field, value in zip(each, each, each, strict=True):
                if field == _PREEMPTED:
                    states[row]._preempted = value != 0
                else:
                    setattr(states[row], FIELDS[field], value)
        if len(done) != len(self.active):
            raise ValueError(f"{len(done)} runs' progress for {len(self.active)} runs")
        out: list[Any] = []
        append = out.append
        try:
            for (_, state, decide), work_done in zip(self.active, done, strict=True):
                state._tick, state._done = tick, work_done
                append(decide(state))
        except BaseException:
            self.current = self.active[len(out)][0]
            raise
        if set(map(type, out)) <= {int}:  # type(): a bool or an int subclass takes the list
            try:
                return bytes(out)
            except ValueError:  # outside 0..255: the judge names it
                return out
        return _planes(out) or [_plain_decision(x) for x in out]

    def failed_run(self) -> int:
        """The run whose policy was asked last (the one that raised, after a failed step)."""
        return self.current

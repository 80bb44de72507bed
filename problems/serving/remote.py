"""The policy's side of a serving evaluation (made in the candidate's process, never the judge's).

The judge (`problems.serving.lockstep`) keeps the simulation. For each call of the policy it
sends what the snapshots show (`Cluster.state`: the time and twelve numbers per instance) and
the changes to the instances' request lists since its previous message (`Cluster.take_log`).
A `Mirror` per scenario keeps those lists, so that `running_requests()` /
`waiting_requests()` answer here, in this process, as they did when the policy ran inside the
simulator; the snapshots are the same `views.InstanceView` tuples, built for every call.

Nothing here is trusted: the judge validates every answer, and a policy that changes this
code or its mirrors only misleads itself.
"""

from __future__ import annotations

import struct
import sys
from array import array
from collections import deque
from typing import Any

from evaluators.channel import PROGRAM_MODULE, encode
from problems.serving.instance import (
    ANSWERED,
    ENQUEUED,
    JOINED,
    LEFT,
    MIGRATING,
    PREEMPTED,
    PREFILLED,
)
from problems.serving.views import (
    STATE_FLOATS,
    STATE_INTS,
    InstanceView,
    NewRequest,
    RequestView,
)

_new_view = tuple.__new__
# One instance's numbers in a packed state (`views.state_ints` / `state_floats`).
_INT_ROW = struct.Struct(f"<{STATE_INTS}q")
_FLOAT_PAIR = struct.Struct(f"<{STATE_FLOATS}d")
_NOW = struct.Struct("<d")
_new_request = tuple.__new__
NOT_DATA = "not_data"


def _as_data(answer: Any) -> Any:
    """The answer, or {NOT_DATA: why} when the channel cannot carry it (an object with
    behaviour): the judge then names the scenario and the call that returned it."""
    try:
        encode(answer)
    except (TypeError, ValueError, OverflowError) as exc:
        return {NOT_DATA: f"{type(answer).__name__}: {exc}"}
    return answer


class _Requests:
    """One instance's requests as the log says: running (id -> base), waiting (in order)."""

    __slots__ = ("mirror", "running", "waiting", "migrating", "D")

    def __init__(self, mirror: Mirror) -> None:
        self.mirror = mirror
        self.running: dict[int, int] = {}
        self.waiting: deque[int] = deque()
        self.migrating: set[int] = set()
        self.D = 0

    def detail(self, running: bool) -> tuple[RequestView, ...]:
        arrival, prompt = self.mirror.arrival, self.mirror.prompt
        if running:
            D, bases, migrating = self.D, self.running, self.migrating
            return tuple(RequestView(r, arrival[r], prompt[r], bases[r] + D - prompt[r] + 1,
                                     bases[r] + D, (bases[r] + D + 15) >> 4, r in migrating)
                         for r in sorted(bases))
        done = self.mirror.done
        return tuple(RequestView(r, arrival[r], prompt[r], done[r], 0, 0, False)
                     for r in self.waiting)


class Mirror:
    """One scenario: its instances' request lists and the requests dispatched so far."""

    def __init__(self, instances: int, total_blocks: int, block_tokens: int,
                 max_num_seqs: int) -> None:
        self.arrival: dict[int, float] = {}
        self.prompt: dict[int, int] = {}
        self.done: dict[int, int] = {}
        self.lists = [_Requests(self) for _ in range(instances)]
        # One detail function per instance, reused by every snapshot of it.
        self.details = [lists.detail for lists in self.lists]
        self.static = (total_blocks, block_tokens, max_num_seqs)

    def apply(self, log: list[int]) -> None:
        lists, done = self.lists, self.done
        it = iter(log)
        for op, index, rid, value in zip(it, it, it, it, strict=True):
            mine = lists[index]
            if op == ENQUEUED:
                mine.waiting.append(rid)
                done[rid] = value
            elif op == PREFILLED:
                mine.waiting.popleft()
                mine.running[rid] = value
            elif op == LEFT:
                del mine.running[rid]
            elif op == PREEMPTED:
                del mine.running[rid]
                mine.waiting.appendleft(rid)
                done[rid] = value
            elif op == ANSWERED:
                mine.waiting.popleft()
            elif op == JOINED:
                mine.running[rid] = value
            elif op == MIGRATING:
                if value:
                    mine.migrating.add(rid)
                else:
                    mine.migrating.discard(rid)
            else:
                raise ValueError(f"unknown log entry {op}")

    def views(self, state: tuple[bytes, bytes]) -> tuple[InstanceView, ...]:
        """The snapshots of every instance from a packed state (`Cluster.state`)."""
        lists, details = self.lists, self.details
        total, block_tokens, max_num_seqs = self.static
        now = _NOW.unpack_from(state[1])[0]
        out = []
        append = out.append
        with memoryview(state[1]) as floats:
            for i, (row, pair) in enumerate(zip(_INT_ROW.iter_unpack(state[0]),
                                                _FLOAT_PAIR.iter_unpack(floats[8:]),
                                                strict=True)):
                # row: running, waiting, free, reserved, prefill, blocks, kv, out, in, D
                lists[i].D = row[9]
                append(_new_view(InstanceView, (i, now, row[0], row[1], total, *row[2:7],
                                                *pair, row[7], row[8], block_tokens,
                                                max_num_seqs, details[i])))
        if len(out) != len(lists):
            raise ValueError(f"a state of {len(out)} instances for {len(lists)}")
        return tuple(out)


class Fleet:
    """Every scenario's mirror, stepped together: one call per message for every scenario
    the judge advances (`step`)."""

    def __init__(self, scenarios: list[list[int]]) -> None:
        program = sys.modules[PROGRAM_MODULE]
        self.dispatch = getattr(program, "dispatch", None)
        self.migrate = getattr(program, "migrate", None)
        self.mirrors = [Mirror(*shape) for shape in scenarios]
        self.current = -1

    def describe(self) -> dict[str, Any]:
        """{"problem": what is wrong with the program's functions, or None; "migrates":
        whether it has a migrate function} (the judge reports the problem as the reason)."""
        problem = None
        if not callable(self.dispatch):
            problem = "the program defines no function 'dispatch(request, instances)'"
        elif self.migrate is not None and not callable(self.migrate):
            problem = "'migrate' is defined but is not a function"
        return {"problem": problem, "migrates": self.migrate is not None}

    def step(self, items: list[list[Any]]) -> list[Any]:
        """items: [scenario, request id (-1: migrate), arrival_s, prompt_tokens, log (int64
        bytes), state (`Cluster.state`'s two byte strings)]; the policy's answers, in
        order."""
        out = []
        append = out.append
        dispatch, migrate, mirrors = self.dispatch, self.migrate, self.mirrors
        for scenario, rid, arrival, prompt, log, ints, floats in items:
            self.current = scenario
            mirror = mirrors[scenario]
            if log:
                mirror.apply(array("q", log))
            if rid >= 0:
                mirror.arrival[rid] = arrival
                mirror.prompt[rid] = prompt
                answer = dispatch(_new_request(NewRequest, (rid, arrival, prompt)),
                                  mirror.views((ints, floats)))
                append(answer if type(answer) is int else _as_data(answer))
            else:
                append(_as_data(migrate(mirror.views((ints, floats)))))
        return out

    def failed(self) -> int:
        """The scenario whose policy was asked last (the one that raised, after a failed
        step)."""
        return self.current

"""The execution model of the transaction-scheduling problem (see the data README).

Transactions are placed one after another in schedule order. A transaction that starts at time
s runs its i-th slot (0-based) at s + i and ends at s + len - 1. An operation on a key must run
strictly after the latest already-placed conflicting operation on that key: a write conflicts
with every earlier read and write, a read only with earlier writes (reads share). The start is
the smallest s >= 1 that satisfies every operation; the makespan is the latest end time.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from evaluators.harness_api import plain_int


@dataclass(frozen=True, slots=True)
class Txn:
    name: str
    text: str
    length: int
    # (slot offset from the start, key, is_write); '*' slots touch no key and are left out.
    ops: tuple[tuple[int, int, bool], ...]


def parse_txn(name: str, text: str) -> Txn:
    ops = []
    slots = text.split()
    for offset, token in enumerate(slots):
        if token == "*":
            continue
        kind, _, key = token.partition("-")
        if kind not in ("r", "w") or not key.lstrip("-").isdigit():
            raise ValueError(f"{name}: cannot parse operation {token!r} (expected r-KEY, w-KEY or *)")
        ops.append((offset, int(key), kind == "w"))
    return Txn(name=name, text=text, length=len(slots), ops=tuple(ops))


def load_workloads(path: str | Path) -> dict[str, tuple[Txn, ...]]:
    raw = json.loads(Path(path).read_text())
    return {wname: tuple(parse_txn(t, s) for t, s in txns.items()) for wname, txns in raw.items()}


class Placement:
    """Incremental placement: the per-key times of the latest write and read placed so far."""

    __slots__ = ("last_write", "last_read", "makespan")

    def __init__(self) -> None:
        self.last_write: dict[int, int] = {}
        self.last_read: dict[int, int] = {}
        self.makespan = 0

    def start_of(self, txn: Txn) -> int:
        """The earliest start of `txn` if it were appended now."""
        start = 1
        last_write, last_read = self.last_write, self.last_read
        for offset, key, is_write in txn.ops:
            bound = last_write.get(key, 0)
            if is_write:
                read = last_read.get(key, 0)
                if read > bound:
                    bound = read
            # The operation runs at start + offset and must be > bound.
            need = bound - offset + 1
            if need > start:
                start = need
        return start

    def end_if_added(self, txn: Txn) -> int:
        """The makespan after appending `txn` (nothing is changed)."""
        end = self.start_of(txn) + txn.length - 1
        return end if end > self.makespan else self.makespan

    def add(self, txn: Txn) -> int:
        start = self.start_of(txn)
        for offset, key, is_write in txn.ops:
            t = start + offset
            table = self.last_write if is_write else self.last_read
            if table.get(key, 0) < t:
                table[key] = t
        end = start + txn.length - 1
        if end > self.makespan:
            self.makespan = end
        return start


def check_order(order: object, n: int) -> list[int]:
    """Return `order` as a list of ints if it is a permutation of range(n), else raise ValueError."""
    if isinstance(order, (str, bytes, dict, set, frozenset)) or not hasattr(order, "__iter__"):
        raise ValueError(f"the schedule must be a list of transaction indices, got {type(order).__name__}")
    out: list[int] = []
    for item in order:
        if isinstance(item, bool):
            raise ValueError("the schedule holds a bool; it must hold transaction indices (ints)")
        try:
            out.append(plain_int(item))  # genuine values: int subclasses cannot lie
        except TypeError:
            raise ValueError(f"the schedule holds {item!r}; it must hold transaction indices (ints)") from None
    if len(out) != n:
        raise ValueError(f"the schedule has {len(out)} entries; the workload has {n} transactions")
    if sorted(out) != list(range(n)):
        seen: set[int] = set()
        dup = next((i for i in out if i in seen or seen.add(i)), None)  # type: ignore[func-returns-value]
        bad = [i for i in out if not 0 <= i < n]
        what = f"index {bad[0]} is out of range 0..{n - 1}" if bad else f"index {dup} appears twice"
        raise ValueError(f"the schedule is not a permutation of 0..{n - 1}: {what}")
    return out


def makespan(txns: Sequence[Txn], order: Sequence[int]) -> int:
    """Makespan of placing `txns` in `order` (a sequence of indices; not validated here).

    Self-contained on purpose: the evaluator's reference computation shares no object with the
    `Placement` helper that candidates receive (and may modify).
    """
    last_write: dict[int, int] = {}
    last_read: dict[int, int] = {}
    end_max = 0
    for i in order:
        txn = txns[i]
        start = 1
        for offset, key, is_write in txn.ops:
            bound = last_write.get(key, 0)
            if is_write:
                bound = max(bound, last_read.get(key, 0))
            start = max(start, bound - offset + 1)
        for offset, key, is_write in txn.ops:
            table = last_write if is_write else last_read
            table[key] = max(table.get(key, 0), start + offset)
        end_max = max(end_max, start + txn.length - 1)
    return end_max


def lower_bound(txns: Sequence[Txn]) -> int:
    """No schedule finishes before its longest transaction does."""
    return max(t.length for t in txns)


class Workload:
    """What a candidate receives: the transactions and a makespan helper (for its own search)."""

    __slots__ = ("_name", "_txns")

    def __init__(self, name: str, txns: Sequence[Txn]) -> None:
        self._name = name
        self._txns = tuple(txns)

    @property
    def name(self) -> str:
        return self._name

    @property
    def transactions(self) -> tuple[str, ...]:
        """Each transaction as text, e.g. 'r-5 w-3 * w-7'."""
        return tuple(t.text for t in self._txns)

    @property
    def ops(self) -> tuple[tuple[tuple[int, int, bool], ...], ...]:
        """Per transaction: (slot offset, key, is_write) for every slot that touches a key."""
        return tuple(t.ops for t in self._txns)

    @property
    def lengths(self) -> tuple[int, ...]:
        return tuple(t.length for t in self._txns)

    def __len__(self) -> int:
        return len(self._txns)

    def makespan(self, order: Sequence[int]) -> int:
        """Makespan of a full or partial order of transaction indices."""
        n = len(self._txns)
        if any(not 0 <= i < n for i in order):
            raise IndexError(f"transaction index out of range 0..{n - 1}")
        placement = Placement()
        for i in order:
            placement.add(self._txns[i])
        return placement.makespan

    def placement(self) -> Placement:
        """A fresh incremental placement (`end_if_added(txn)`, `add(txn)`) for greedy searches."""
        return Placement()

    def txn(self, i: int) -> Txn:
        return self._txns[i]


def workload_from_text(name: str, transactions: Sequence[Sequence[str]]) -> Workload:
    """A workload rebuilt from plain data, (transaction name, text) pairs: how the candidate's
    process makes its `Workload` from what the judge sends over the channel."""
    return Workload(name, [parse_txn(str(t), str(text)) for t, text in transactions])

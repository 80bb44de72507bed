"""Which programs a run has already proposed, so an offline operator can skip them.

An operator that can enumerate its rewrites (`swap`, `reshape`) tries them in a random order
and returns the first child whose code hash (evolve/patch/novelty.py, the hash the controller's
duplicate check uses) the run has not seen. What counts as seen is deterministic, like
`optimise`'s trials: every committed program with seq <= seq - window (what the controller had
ingested when it planned this proposal), plus the programs this operator proposed for the
proposals still in flight (seq - window < k < seq): from its own memory in this session, and
from the archive for proposals committed before a resume (which the controller replays without
asking the operator). So a resumed run proposes exactly what an uninterrupted one would.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from evolve.patch.novelty import code_hash

History = Callable[[], Mapping[int, Any]]
Window = Callable[[], int]


class SeenPrograms:
    """The code hashes a proposal must avoid; `name` is the operator the memory belongs to."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._history: History = dict
        self._window: Window = lambda: 0
        self._proposed: dict[int, str] = {}  # seq -> hash of what this operator proposed
        self._ingested: dict[int, str] = {}  # seq -> hash, of committed programs (a cache)

    def attach(self, history: History, window: Window) -> None:
        self._history = history
        self._window = window
        self._ingested.clear()

    def _hash_of(self, seq: int, item: Any) -> str | None:
        cached = self._ingested.get(seq)
        if cached is None:
            code = getattr(item, "code", None)
            if not code:
                return None
            cached = self._ingested[seq] = code_hash(code)
        return cached

    def hashes(self, seq: int | None) -> set[str]:
        """Hashes a proposal planned as `seq` must not repeat (None: everything known now)."""
        history = self._history()
        window = max(0, self._window())
        last = None if seq is None else seq - window
        found: set[str] = set()
        for k, item in history.items():
            in_flight = last is not None and k > max(last, -1)
            if in_flight and (k >= seq or getattr(item, "operator", None) != self.name):  # type: ignore[operator]
                continue
            value = self._hash_of(k, item)
            if value is not None:
                found.add(value)
        for k, value in self._proposed.items():
            if seq is None or last is None or last < k < seq:
                found.add(value)
        return found

    def remember(self, seq: int | None, code: str) -> None:
        if seq is None:
            return
        self._proposed[seq] = code_hash(code)
        horizon = seq - 2 * max(1, self._window())
        for old in [k for k in self._proposed if k <= horizon]:
            del self._proposed[old]

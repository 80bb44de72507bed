"""What the loop, the planner and the proposal pipeline share during a run, declared in one place.

Every field is written by one of them and read by the others; nothing else is shared between the
parts of the controller, and no part writes into another's attributes.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from evolve.engine.committed import Committed


@dataclass
class RunState:
    window: int                          # W = N + M: proposal s is planned when < s - W are in
    committed: dict[int, Committed] = field(default_factory=dict)   # by seq (initial = -1)
    by_id: dict[int, Committed] = field(default_factory=dict)
    initial: Committed | None = None
    finished: dict[int, Committed] = field(default_factory=dict)    # committed, not ingested
    unstarted: set[int] = field(default_factory=set)     # planned, waiting for the budget
    cost_usd: float = 0.0
    unknown_cost_calls: int = 0          # LLM calls whose price is unknown
    done: int = 0                        # candidates committed and evaluated
    fatal: BaseException | None = None   # the run cannot go on: the loop raises it
    stop_reason: str | None = None
    stop_level: int = 0                  # 1 = finish in-flight, 2 = stop now
    proposing: int = 0                   # proposals calling their operator now
    elapsed_before: float = 0.0          # seconds the run ran in earlier sessions
    started: float = field(default_factory=time.monotonic)
    # Set when a proposal finishes (the loop waits on it) and after each ingest (proposals
    # waiting for the program budget to start wait on it).
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    ingested: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def elapsed_s(self) -> float:
        return self.elapsed_before + time.monotonic() - self.started

    def fail(self, exc: BaseException) -> None:
        """The first fatal error wins; the loop raises it."""
        self.fatal = self.fatal or exc

    def stop_after_in_flight(self, reason: str) -> None:
        self.stop_reason = reason
        self.stop_level = 1

"""An ordered gate: sequence numbers pass one at a time, in increasing order.

The controller decides novelty (duplicates) in proposal order through it, so which of two
identical candidates is evaluated does not depend on which operator answered first.
"""

from __future__ import annotations

import asyncio


class OrderedGate:
    def __init__(self, start: int = 0):
        self.next = start
        self._released: set[int] = set()
        self._waiters: dict[int, asyncio.Future[None]] = {}

    async def wait(self, seq: int) -> None:
        """Return when every sequence number below `seq` has been released."""
        if seq == self.next:
            return
        future = asyncio.get_running_loop().create_future()
        self._waiters[seq] = future
        try:
            await future
        finally:
            self._waiters.pop(seq, None)

    def release(self, seq: int) -> None:
        """Mark `seq` done (idempotent; may be called before its turn, e.g. on cancellation)."""
        if seq < self.next:
            return
        self._released.add(seq)
        while self.next in self._released:
            self._released.discard(self.next)
            self.next += 1
        waiter = self._waiters.get(self.next)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

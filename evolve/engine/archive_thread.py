"""The run's archive, called from one dedicated thread so the event loop never waits on it.

A database call blocks: SQLite waits up to its busy timeout when another process holds the
write lock, PostgreSQL waits on the network. Made from the asyncio loop, such a call would
freeze every proposal, LLM reply and evaluation in flight. `ArchiveThread` runs each call on a
single worker thread instead and the loop awaits its result:

- one thread, calls in submission order (FIFO): the run stays the archive's single writer and
  its writes land in the order the controller made them, as before;
- a call once submitted always completes, even if the task awaiting it is cancelled (a stop
  at once): a write is never half-dropped between the thread and the loop.

`db.Archive` itself is unchanged; `await thread.add_event(...)` calls `archive.add_event(...)`
on the thread, and `await thread.call(fn, ...)` runs any function that uses the archive there.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


class ArchiveThread:
    def __init__(self, archive: Any):
        self.archive = archive
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="archive-writer")

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """`fn(*args, **kwargs)` on the archive's thread, after every call submitted before."""
        future = asyncio.wrap_future(self.submit(fn, *args, **kwargs))
        # shield: cancelling the awaiting task must not unqueue a write it already made.
        return await asyncio.shield(future)

    def submit(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> Future[T]:
        """Queue a call without waiting for it (for synchronous callers, e.g. a warning
        recorded from inside the LLM client); it still runs in order with the others."""
        return self._pool.submit(functools.partial(fn, *args, **kwargs))

    def __getattr__(self, name: str) -> Any:
        """`await thread.method(...)` = `archive.method(...)` run on the thread; plain
        attributes (`where`, `url`) are returned as they are."""
        attribute = getattr(self.archive, name)
        if not callable(attribute):
            return attribute

        async def on_thread(*args: Any, **kwargs: Any) -> Any:
            return await self.call(attribute, *args, **kwargs)

        on_thread.__name__ = name
        return on_thread

    async def aclose(self) -> None:
        """Wait for every queued call (so nothing submitted is lost), then end the thread."""
        await self.call(lambda: None)
        self._pool.shutdown(wait=True)

    def close(self) -> None:
        self._pool.shutdown(wait=True)

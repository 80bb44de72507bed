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
Each archive call the engine makes is spelled out below with its types (the archive is typed by
`ArchiveStore`, evolve/engine/collaborators.py), so a renamed or missing call fails the type
check, not a run.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from evolve.engine.collaborators import ArchiveStore

T = TypeVar("T")


class ArchiveThread:
    def __init__(self, archive: ArchiveStore):
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

    @property
    def where(self) -> str:
        """Where the archive lives (a file path or a database URL), for messages."""
        return self.archive.where

    # The archive's calls, each on the thread. Program and LLM-call fields are passed on as
    # they are: their names and types are ArchiveStore.add_program's and .record_llm_call's.
    async def create_run(self, *, problem: str, config_toml: str, seed: int,
                         isolation: str) -> int:
        return await self.call(self.archive.create_run, problem=problem,
                               config_toml=config_toml, seed=seed, isolation=isolation)

    async def add_program(self, run_id: int, **fields: Any) -> int:
        return await self.call(self.archive.add_program, run_id, **fields)

    async def programs(self, run_id: int) -> list[Any]:
        return await self.call(self.archive.programs, run_id)

    async def evaluations(self, program_id: int) -> list[Any]:
        return await self.call(self.archive.evaluations, program_id)

    async def record_llm_call(self, run_id: int, **fields: Any) -> int:
        return await self.call(self.archive.record_llm_call, run_id, **fields)

    async def cost_so_far(self, run_id: int) -> float:
        return await self.call(self.archive.cost_so_far, run_id)

    async def cost_summary(self, run_id: int) -> Any:
        return await self.call(self.archive.cost_summary, run_id)

    async def set_state(self, run_id: int, key: str, value: Any) -> None:
        await self.call(self.archive.set_state, run_id, key, value)

    async def get_state(self, run_id: int, key: str, default: Any = None) -> Any:
        return await self.call(self.archive.get_state, run_id, key, default)

    async def add_event(self, run_id: int, kind: str, message: str,
                        data: dict[str, Any] | None = None) -> int:
        return await self.call(self.archive.add_event, run_id, kind, message, data)

    async def events(self, run_id: int, *, kind: str | None = None) -> list[Any]:
        return await self.call(self.archive.events, run_id, kind=kind)

    async def set_run_status(self, run_id: int, status: str) -> None:
        await self.call(self.archive.set_run_status, run_id, status)

    async def finish_run(self, run_id: int, status: str) -> None:
        await self.call(self.archive.finish_run, run_id, status)

    async def aclose(self) -> None:
        """Wait for every queued call (so nothing submitted is lost), then end the thread."""
        await self.call(lambda: None)
        self._pool.shutdown(wait=True)

    def close(self) -> None:
        self._pool.shutdown(wait=True)

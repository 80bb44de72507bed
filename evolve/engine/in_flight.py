"""Evaluations in flight per node, published in the archive for the dashboard.

The live view of `evolve run` gets them in each progress report; the dashboard is another
process that reads only the archive, so the running controller stores them as the run state
`in_flight` (`{"nodes": {label: count}}`) whenever they change, at most once per `every_s`,
and stores an empty mapping when the run stops. Labels are the Ray executor's
(`host/node-id`, see `RayExecutor.placement`) or this machine's host name for the local
executor. A run killed with kill -9 leaves its last counts behind; readers show them only while
the run is live (`shown_status`).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable

from evolve.engine.archive_thread import ArchiveThread
from evolve.engine.collaborators import Executor, Placement

IN_FLIGHT_STATE = "in_flight"
PUBLISH_EVERY_S = 1.0


def nodes_in_flight(executor: Executor, running: int) -> dict[str, int]:
    """Running evaluations per node: the executor's own placement when it has one (Ray),
    else all of them on this machine."""
    if isinstance(executor, Placement):
        return dict(executor.placement())
    return {socket.gethostname(): running} if running > 0 else {}


class InFlightPublisher:
    def __init__(self, archive: ArchiveThread, run_id: int, count: Callable[[], dict[str, int]],
                 every_s: float = PUBLISH_EVERY_S):
        self.archive = archive
        self.run_id = run_id
        self.count = count
        self.every_s = every_s
        self._last: dict[str, int] | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._publish_changes())

    async def _publish_changes(self) -> None:
        while True:
            await self._store(self.count())
            await asyncio.sleep(self.every_s)

    async def _store(self, nodes: dict[str, int]) -> None:
        if nodes != self._last:
            self._last = nodes
            await self.archive.set_state(self.run_id, IN_FLIGHT_STATE, {"nodes": nodes})

    async def aclose(self) -> None:
        """Stop publishing and clear: a stopped run has nothing in flight."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._last = None
        await self._store({})

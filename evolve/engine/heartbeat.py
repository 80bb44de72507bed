"""The running process's heartbeat in the archive (`db.liveness`), stored every few seconds on
the archive's thread for as long as the run goes on; readers call a run whose beats stopped
`crashed`."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from db import liveness
from evolve.engine.archive_thread import ArchiveThread

log = logging.getLogger(__name__)


class Heartbeat:
    def __init__(self, store: ArchiveThread, archive: object, run_id: int,
                 every_s: float = liveness.BEAT_EVERY_S):
        self.store, self.archive, self.run_id, self.every_s = store, archive, run_id, every_s
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._beat())

    async def _beat(self) -> None:
        while True:
            try:
                await self.store.call(liveness.beat, self.archive, self.run_id, self.every_s)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a missed beat must not end the run
                log.warning("heartbeat not stored: %s", exc)
            await asyncio.sleep(self.every_s)

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

"""Whether a run marked `running` still runs: a heartbeat in the archive, the same for every
database (a SQLite file, a PostgreSQL server shared by runs on several machines).

The running process stores the state `heartbeat` every `interval_s` (`beat`), stamped with the
*database's* clock, so a reader on another machine compares it with that same clock (no skew
between the writer's and the reader's machines). A reader (`shown_status`) says `crashed`
when the last beat is older than `MISSED_BEATS` intervals, or at once when the writer ran on
the reader's own machine and its process is gone (kill -9 leaves no other trace). The stored
status itself stays `running` (the run was never told); `evolve resume` continues it.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text

from evaluators.proctree import pid_alive

HEARTBEAT_STATE = "heartbeat"
BEAT_EVERY_S = 5.0
MISSED_BEATS = 4        # a run is crashed once this many beats in a row are missing...
MIN_STALE_S = 15.0      # ...and never sooner than this (a busy database delays a beat)

# Seconds since the epoch on the database's clock.
_SERVER_EPOCH = {
    "postgresql": "SELECT EXTRACT(EPOCH FROM clock_timestamp())",
    "sqlite": "SELECT (julianday('now') - 2440587.5) * 86400.0",
}


@dataclass(frozen=True)
class Heartbeat:
    age_s: float        # since the last beat, on the database's clock
    interval_s: float
    host: str
    pid: int

    @property
    def stale(self) -> bool:
        return self.age_s > max(MISSED_BEATS * self.interval_s, MIN_STALE_S)


def server_epoch(archive: Any) -> float:
    with archive._read() as session:
        dialect = session.connection().dialect.name
        query = _SERVER_EPOCH.get(dialect)
        if query is None:  # another database: this machine's clock, the best there is
            import time

            return time.time()
        return float(session.execute(text(query)).scalar_one())


def beat(archive: Any, run_id: int, interval_s: float = BEAT_EVERY_S,
         host: str | None = None, pid: int | None = None) -> None:
    """Store that run `run_id` is alive now (called by the running process)."""
    archive.set_state(run_id, HEARTBEAT_STATE, {
        "at": server_epoch(archive), "interval_s": interval_s,
        "host": host or socket.gethostname(), "pid": os.getpid() if pid is None else pid})


def heartbeat(archive: Any, run_id: int) -> Heartbeat | None:
    """The run's last beat, or None for a run from before heartbeats."""
    value = archive.get_state(run_id, HEARTBEAT_STATE)
    if not isinstance(value, dict) or "at" not in value:
        return None
    try:
        return Heartbeat(age_s=server_epoch(archive) - float(value["at"]),
                         interval_s=float(value.get("interval_s", BEAT_EVERY_S)),
                         host=str(value.get("host", "")), pid=int(value.get("pid", 0)))
    except (TypeError, ValueError):
        return None



def is_alive(beat_: Heartbeat) -> bool:
    if beat_.stale:
        return False
    if beat_.host == socket.gethostname() and beat_.pid > 0:
        return pid_alive(beat_.pid)
    return True


def shown_status(archive: Any, run_id: int, status: str,
                 folder_is_live: Callable[[], bool] | None = None) -> str:
    """A run's status as users see it: `running` whose heartbeat stopped is `crashed`. A run
    without heartbeats (older archives) falls back to `folder_is_live` (its folder's lock, which
    the caller knows how to read), where given."""
    if status != "running":
        return status
    found = heartbeat(archive, run_id)
    if found is not None:
        return "running" if is_alive(found) else "crashed"
    if folder_is_live is not None:
        return "running" if folder_is_live() else "crashed"
    return status

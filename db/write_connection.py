"""One connection kept open for the archive's frequent writes to a SQLite file.

A run stores a program, an LLM call or an event several times a second, each in its own
transaction. Through the archive's main engine every one of them checks a connection out of
the pool and back, and its `begin` listener (which emits `BEGIN IMMEDIATE`, see db/engine.py)
turns on SQLAlchemy's event dispatch for every statement: together more CPU than the inserts.
Here the writes share one connection, checked out once, on an engine without connection
events: the sqlite3 driver itself opens the transaction with `BEGIN IMMEDIATE` before the first
INSERT/UPDATE/DELETE (its `isolation_level`), which is exactly what these writes start with.
Each write is still one transaction, committed before the call returns, so nothing reported
stored is lost when the process dies.

Only for a SQLite file: an in-memory database must stay on the main engine's single shared
connection, and a server database keeps its pool (which tests a connection before use and
replaces one the server dropped).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url

from db.engine import json_dumps, sqlite_pragmas


def is_sqlite_file(url: str) -> bool:
    parsed = make_url(url)
    return parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "",
                                                                             ":memory:")


class WriteConnection:
    """`with writes.transaction() as connection:` one committed transaction on the kept
    connection. Calls from several threads take turns (a lock); the archive has one writer
    thread in a run, so the lock is never contended there."""

    def __init__(self, url: str):
        self._engine: Engine = create_engine(url, json_serializer=json_dumps, pool_size=1)

        @event.listens_for(self._engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            # The driver emits BEGIN IMMEDIATE before the first write statement, so a second
            # writer waits on busy_timeout up front instead of failing half way.
            dbapi_connection.isolation_level = "IMMEDIATE"
            sqlite_pragmas(dbapi_connection, in_memory=False)

        self._connection: Connection | None = None
        self._lock = threading.Lock()

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """Commits when the block ends, rolls back (nothing stored) when it raises."""
        with self._lock:
            if self._connection is None or self._connection.invalidated:
                self._connection = self._engine.connect()
            with self._connection.begin():
                yield self._connection

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None
        self._engine.dispose()

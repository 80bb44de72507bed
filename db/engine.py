"""Engine creation: SQLite in WAL mode with foreign keys, or any SQLAlchemy URL.

pysqlite's own transaction handling starts a transaction only at the first write, so two reads
in one method could see different snapshots. We switch that off and emit BEGIN ourselves
(the recipe in SQLAlchemy's SQLite dialect notes); writes use BEGIN IMMEDIATE so a second writer
waits on busy_timeout up front instead of failing half way.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.pool import StaticPool

BUSY_TIMEOUT_MS = 30_000
WRITE_OPTION = "evolve_write"


def archive_path(run_dir: str | Path) -> Path:
    """Where a run directory keeps its archive."""
    return Path(run_dir) / "archive.sqlite"


def is_url(url_or_path: str | Path) -> bool:
    return isinstance(url_or_path, str) and "://" in url_or_path


def sqlite_url(path: str | Path) -> str:
    return f"sqlite:///{Path(path).resolve()}"


def _json_default(value: Any) -> Any:
    # numpy scalars and arrays, sets, paths...: store what they mean, never fail a write on them.
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)


def json_dumps(value: Any) -> str:
    return json.dumps(value, default=_json_default)


def finite_or_none(value: float | None) -> float | None:
    """NaN cannot be compared or ranked; SQLite would store it as NULL anyway, so say so."""
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


def sqlite_pragmas(dbapi_connection: Any, *, in_memory: bool) -> None:
    """The settings every connection to an archive's SQLite file gets."""
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    if not in_memory:
        cursor.execute("PRAGMA journal_mode=WAL")
        # In WAL mode NORMAL is durable against a crash of the process; only a power loss
        # can lose the last commits. FULL would fsync on every program.
        cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def make_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, json_serializer=json_dumps, pool_pre_ping=True)

    in_memory = parsed.database in (None, "", ":memory:")
    kwargs: dict[str, Any] = {"json_serializer": json_dumps}
    if in_memory:
        # One shared connection, or every checkout would see its own empty database.
        kwargs["poolclass"] = StaticPool
        kwargs["connect_args"] = {"check_same_thread": False}
    engine = create_engine(url, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves (see module doc)
        sqlite_pragmas(dbapi_connection, in_memory=in_memory)

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        write = connection.get_execution_options().get(WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine

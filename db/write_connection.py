"""The archive's frequent writes (programs, their evaluations, LLM calls, events, run state):
one small set of statements, on SQLAlchemy Core for any database and on the driver itself for
a SQLite file.

A run stores a program, an LLM call or an event several times a second, each in its own
transaction. Through SQLAlchemy each of those statements costs several times the insert itself
(a pool checkout, an execution context, parameter processing, a result object, and event
dispatch once a listener is set: the main engine's `begin` listener, db/engine.py). On a SQLite
file `SqliteWrites` keeps one connection for them and runs each statement on the `sqlite3`
driver: the SQL is SQLAlchemy's own, compiled once per table, and every value goes through its
column type's own bind processor (JSON, the UTC timestamps), so the stored rows are the same as
Core would store (tests/db/test_write_connection.py compares them). Its driver opens each
transaction with `BEGIN IMMEDIATE` before the first write statement (its `isolation_level`), so
a second writer waits on busy_timeout up front instead of failing half way. Each write is still
one transaction, committed before the call returns: nothing reported stored is lost when the
process dies. Driver errors are raised as SQLAlchemy's (IntegrityError and so on), as on Core.

`CoreWrites` is the same on a SQLAlchemy Connection: server databases (their pool tests a
connection before use and replaces one the server dropped) and in-memory SQLite (one shared
connection).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from typing import Any

from sqlalchemy import Connection, Engine, Table, bindparam, create_engine, event, insert, select
from sqlalchemy import update as sql_update
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.exc import DBAPIError

from db.engine import json_dumps, sqlite_pragmas
from db.models import LLMCallRow, ProgramRow, StateRow


def is_sqlite_file(url: str) -> bool:
    parsed = make_url(url)
    return parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "",
                                                                             ":memory:")


# The hot statements, built once; CoreWrites runs them as they are, SqliteWrites compiles them.
_LINK_CALLS = (sql_update(LLMCallRow.__table__)
               .where(LLMCallRow.id.in_(bindparam("ids", expanding=True)),
                      LLMCallRow.run_id == bindparam("run"))
               .values(program_id=bindparam("program")))
_UPDATE_STATE = (sql_update(StateRow.__table__)
                 .where(StateRow.run_id == bindparam("run"),
                        StateRow.key == bindparam("state_key"))
                 .values(value=bindparam("new_value"), updated_at=bindparam("now")))
_FIND_PROPOSAL = select(ProgramRow.id).where(ProgramRow.run_id == bindparam("run"),
                                             ProgramRow.proposal_key == bindparam("key"))


_CORE_INSERTS: dict[str, Any] = {}


def _core_insert(table: Table) -> Any:
    """`insert(table)`, built once per table (SQLAlchemy caches its compiled form)."""
    found = _CORE_INSERTS.get(table.name)
    if found is None:
        found = _CORE_INSERTS[table.name] = insert(table)
    return found


class CoreWrites:
    """The hot writes on a SQLAlchemy Connection (inside the caller's transaction)."""

    def __init__(self, connection: Connection):
        self.connection = connection

    def insert(self, table: Table, row: Mapping[str, Any]) -> int:
        return self.connection.execute(_core_insert(table), row).inserted_primary_key[0]

    def insert_keyed_program(self, row: Mapping[str, Any]) -> int:
        """Insert a program whose proposal key may be stored already (IntegrityError then).
        SQLite undoes just the refused statement; other databases abort the transaction, so
        they get a savepoint around it."""
        savepoint = self.connection.begin_nested() \
            if self.connection.dialect.name != "sqlite" else nullcontext()
        with savepoint:
            return self.insert(ProgramRow.__table__, row)

    def insert_many(self, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
        self.connection.execute(_core_insert(table), list(rows))

    def link_calls(self, ids: Sequence[int], run_id: int, program_id: int) -> int:
        return self.connection.execute(_LINK_CALLS, {"ids": list(ids), "run": run_id,
                                                     "program": program_id}).rowcount

    def update_state(self, run_id: int, key: str, value: Any, now: Any) -> int:
        return self.connection.execute(_UPDATE_STATE, {"run": run_id, "state_key": key,
                                                       "new_value": value, "now": now}).rowcount

    def find_proposal(self, run_id: int, key: str) -> int | None:
        return self.connection.scalar(_FIND_PROPOSAL, {"run": run_id, "key": key})


class _Prepared:
    """One statement compiled for SQLite: its SQL and, per positional parameter, the name and
    the column type's bind processor (None: passed as it is)."""

    def __init__(self, statement: Any, dialect: Dialect, types: Mapping[str, Any]):
        compiled = statement.compile(dialect=dialect)
        self.sql = str(compiled)
        names = compiled.positiontup or []
        self.params: list[tuple[str, Callable[[Any], Any] | None]] = [
            (name, types[name].bind_processor(dialect) if name in types else None)
            for name in names]

    def values(self, row: Mapping[str, Any]) -> list[Any]:
        return [row[name] if process is None else process(row[name])
                for name, process in self.params]


class SqliteWrites:
    """The hot writes on the `sqlite3` driver (inside the caller's transaction)."""

    def __init__(self, connection: sqlite3.Connection, prepared: _Statements):
        self.connection = connection
        self.prepared = prepared

    def _execute(self, sql: str, values: Sequence[Any], many: bool = False) -> sqlite3.Cursor:
        try:
            if many:
                return self.connection.executemany(sql, values)
            return self.connection.execute(sql, values)
        except sqlite3.Error as exc:
            # The exception Core raises for it (IntegrityError, OperationalError...), so the
            # archive handles both kinds of connection alike.
            raise DBAPIError.instance(sql, None, exc, sqlite3.Error) from exc

    def insert(self, table: Table, row: Mapping[str, Any]) -> int:
        statement = self.prepared.insert(table)
        return int(self._execute(statement.sql, statement.values(row)).lastrowid or 0)

    def insert_keyed_program(self, row: Mapping[str, Any]) -> int:
        return self.insert(ProgramRow.__table__, row)   # SQLite undoes just this statement

    def insert_many(self, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
        statement = self.prepared.insert(table)
        self._execute(statement.sql, [statement.values(row) for row in rows], many=True)

    def link_calls(self, ids: Sequence[int], run_id: int, program_id: int) -> int:
        marks = ", ".join("?" * len(ids))
        return self._execute(f"UPDATE llm_calls SET program_id = ? WHERE run_id = ? AND "
                             f"id IN ({marks})", [program_id, run_id, *ids]).rowcount

    def update_state(self, run_id: int, key: str, value: Any, now: Any) -> int:
        statement = self.prepared.update_state
        return self._execute(statement.sql, statement.values(
            {"run": run_id, "state_key": key, "new_value": value, "now": now})).rowcount

    def find_proposal(self, run_id: int, key: str) -> int | None:
        found = self._execute("SELECT id FROM programs WHERE run_id = ? AND proposal_key = ?",
                              (run_id, key)).fetchone()
        return None if found is None else int(found[0])


class _Statements:
    """The hot statements compiled once for one SQLite dialect."""

    def __init__(self, dialect: Dialect):
        self.dialect = dialect
        self._inserts: dict[str, _Prepared] = {}
        state = StateRow.__table__.c
        self.update_state = _Prepared(_UPDATE_STATE, dialect, {
            "run": state.run_id.type, "state_key": state.key.type,
            "new_value": state.value.type, "now": state.updated_at.type})

    def insert(self, table: Table) -> _Prepared:
        found = self._inserts.get(table.name)
        if found is None:
            # Every column but the generated id, so each row must give them all (the hot
            # writes do): no Python-side defaults are filled in here.
            columns = [c for c in table.columns if not c.primary_key]
            statement = insert(table).values({c.name: bindparam(c.name) for c in columns})
            found = _Prepared(statement, self.dialect, {c.name: c.type for c in columns})
            self._inserts[table.name] = found
        return found


class WriteConnection:
    """`with writes.transaction() as w:` one committed transaction of hot writes on the kept
    connection to a SQLite file. Calls from several threads take turns (a lock); the archive
    has one writer thread in a run, so the lock is never contended there."""

    def __init__(self, url: str):
        self._engine: Engine = create_engine(url, json_serializer=json_dumps, pool_size=1)

        @event.listens_for(self._engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = "IMMEDIATE"   # see the module doc
            sqlite_pragmas(dbapi_connection, in_memory=False)

        self._statements = _Statements(self._engine.dialect)
        self._connection: Connection | None = None
        self._lock = threading.Lock()

    @contextmanager
    def transaction(self) -> Iterator[SqliteWrites]:
        """Commits when the block ends, rolls back (nothing stored) when it raises."""
        with self._lock:
            if self._connection is None or self._connection.invalidated:
                self._connection = self._engine.connect()
            driver = self._connection.connection.driver_connection
            assert isinstance(driver, sqlite3.Connection)
            try:
                yield SqliteWrites(driver, self._statements)
                try:
                    driver.commit()
                except sqlite3.Error as exc:
                    raise DBAPIError.instance("COMMIT", None, exc, sqlite3.Error) from exc
            except BaseException:
                driver.rollback()
                raise

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None
        self._engine.dispose()

"""Creating an archive's tables and refusing one of another schema version."""

from __future__ import annotations

from sqlalchemy import Engine, inspect, select, text
from sqlalchemy.orm import sessionmaker

from db.errors import ArchiveError, ArchiveVersionError
from db.models import SCHEMA_VERSION, Base, SchemaInfoRow

# Any fixed number: PostgreSQL's advisory lock that serialises creating the tables of one database.
_CREATE_LOCK_KEY = 0x65766F6C7665  # "evolve"


def prepare_schema(engine: Engine, write_sessions: sessionmaker, *, create: bool,
                   where: str) -> int:
    """Create the tables of a new archive (if `create`) or check an existing one's version;
    return the version. `write_sessions` must begin write transactions (BEGIN IMMEDIATE)."""
    read_sessions = sessionmaker(engine)
    tables = set(inspect(engine).get_table_names())
    ours = set(Base.metadata.tables)
    if "schema_info" not in tables and tables & ours:
        raise ArchiveVersionError(
            f"{where} holds archive tables but no schema version; it was written by an "
            f"older ADRS Evolve. Open it with that version, or start a new run in a fresh "
            f"run directory.")
    if "schema_info" in tables:
        # An existing archive: only read, so a dashboard never takes the writer's lock.
        with read_sessions.begin() as session:
            version = session.scalar(
                select(SchemaInfoRow.version).where(SchemaInfoRow.id == 1))
    elif not create:
        raise ArchiveError(f"{where} is not an ADRS Evolve archive (no schema_info table)")
    else:
        with write_sessions.begin() as session:
            # BEGIN IMMEDIATE: two processes creating one new file cannot both create it.
            # PostgreSQL has no such lock on BEGIN; runs sharing a new database take an advisory
            # lock, and its transactional DDL then shows the second one the finished tables.
            if session.connection().dialect.name == "postgresql":
                session.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                                {"key": _CREATE_LOCK_KEY})
            Base.metadata.create_all(session.connection())
            version = session.scalar(
                select(SchemaInfoRow.version).where(SchemaInfoRow.id == 1))
            if version is None:
                session.add(SchemaInfoRow(id=1, version=SCHEMA_VERSION))
                version = SCHEMA_VERSION
    if version != SCHEMA_VERSION:
        raise ArchiveVersionError(
            f"{where} has archive schema version {version}, but this ADRS Evolve reads "
            f"version {SCHEMA_VERSION}. Open it with the ADRS Evolve version that wrote it "
            f"(the archive was left unchanged), or start a new run in a fresh run directory.")
    return int(version)

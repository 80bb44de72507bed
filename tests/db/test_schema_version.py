"""An archive of another schema version is refused with a message that says what to do."""

from __future__ import annotations

import sqlite3

import pytest

from db import SCHEMA_VERSION, Archive, ArchiveVersionError, archive_path


def _sql(archive_url: str, statement: str) -> list[tuple]:
    from sqlalchemy import create_engine, text

    url = archive_url if "://" in archive_url else f"sqlite:///{archive_url}"
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            result = conn.execute(text(statement))
            return [tuple(row) for row in result] if result.returns_rows else []
    finally:
        engine.dispose()


def test_other_schema_version_is_refused_and_left_unchanged(archive_url):
    path = archive_url
    with Archive.open(path) as arch:
        run_id = arch.create_run(problem="p", config_toml="", seed=0, isolation="rlimits")
        arch.add_program(run_id, code="x")
        assert arch.schema_version == SCHEMA_VERSION
    _sql(path, f"update schema_info set version = {SCHEMA_VERSION + 41}")

    with pytest.raises(ArchiveVersionError) as err:
        Archive.open(path)
    message = str(err.value)
    assert f"schema version {SCHEMA_VERSION + 41}" in message
    assert f"reads version {SCHEMA_VERSION}" in message
    assert "fresh run directory" in message and "left unchanged" in message

    assert _sql(path, "select version from schema_info") == [(SCHEMA_VERSION + 41,)]
    assert _sql(path, "select count(*) from programs") == [(1,)]


def test_archive_tables_without_a_version_are_refused(tmp_path):
    path = tmp_path / "old.sqlite"
    raw = sqlite3.connect(path)
    raw.execute("create table programs (id integer primary key, code text)")
    raw.commit()
    raw.close()
    with pytest.raises(ArchiveVersionError, match="no schema version"):
        Archive.open(path)


def test_reopening_the_same_version_works(tmp_path):
    path = archive_path(tmp_path)
    Archive.open(path).close()
    with Archive.open(path) as arch:
        assert arch.schema_version == SCHEMA_VERSION
        assert arch.runs() == []

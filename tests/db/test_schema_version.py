"""An archive of another schema version is refused with a message that says what to do."""

from __future__ import annotations

import sqlite3

import pytest

from db import SCHEMA_VERSION, Archive, ArchiveVersionError, archive_path


def test_other_schema_version_is_refused_and_left_unchanged(tmp_path):
    path = archive_path(tmp_path)
    with Archive.open(path) as arch:
        run_id = arch.create_run(problem="p", config_toml="", seed=0, isolation="rlimits")
        arch.add_program(run_id, code="x")
        assert arch.schema_version == SCHEMA_VERSION
    raw = sqlite3.connect(path)
    raw.execute("update schema_info set version = ?", (SCHEMA_VERSION + 41,))
    raw.commit()
    raw.close()

    with pytest.raises(ArchiveVersionError) as err:
        Archive.open(path)
    message = str(err.value)
    assert f"schema version {SCHEMA_VERSION + 41}" in message
    assert f"reads version {SCHEMA_VERSION}" in message
    assert "fresh run directory" in message and "left unchanged" in message

    raw = sqlite3.connect(path)
    assert raw.execute("select version from schema_info").fetchall() == [(SCHEMA_VERSION + 41,)]
    assert raw.execute("select count(*) from programs").fetchone() == (1,)
    raw.close()


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

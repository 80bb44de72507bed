"""The hot writes on a SQLite file go through the sqlite3 driver on a kept connection
(db/write_connection.py); an in-memory archive stores them through SQLAlchemy Core. Both must
store the same values, byte for byte, and refuse the same writes."""

from __future__ import annotations

import re
import sqlite3
from typing import Any

import pytest
from sqlalchemy import text

from db import Archive, ArchiveError
from evaluators.result import FailureKind, StageResult

TABLES = ("programs", "evaluations", "llm_calls", "events", "state")
TIME_COLUMNS = {"created_at", "updated_at"}
STORED_TIME = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}$")


def _store_everything(archive: Archive) -> None:
    run = archive.create_run(problem="p", config_toml="", seed=1, isolation="none")
    call = archive.record_llm_call(run, model="openai/m", prompt='[{"role": "user"}]',
                                   response="reply", tokens_in=10, tokens_out=None,
                                   cost_usd=float("nan"), latency_s=0.5, error=None,
                                   purpose="mutation", finish_reason="stop")
    stage = StageResult(stage="main", score=1.5, valid=True, metrics={"value": 1.5, "n": [1, 2]},
                        feedback="ok", wall_s=0.1, cpu_s=0.05, stdout="out", stderr="",
                        isolation="bwrap")
    failed = StageResult(stage="big", failure=FailureKind.TIMEOUT, reason="slow")
    root = archive.add_program(run, code="x = 1\n", proposal_key="initial", score=float("nan"),
                               valid=False, metrics={}, timings={"total_s": 0.2})
    archive.add_program(run, code="x = 2\n", parent_id=root, inspiration_ids=(root,),
                        generation=1, operator="openai/m", mutation_kind="diff",
                        status="evaluated", stage_reached="big", score=1.5, valid=True,
                        metrics={"value": 1.5, "tags": ("a", "b")}, feedback="fine",
                        error_kind=None, error_text=None, timings={"eval_s": 0.1},
                        diff="- x = 1\n+ x = 2\n", proposal_key="1:0",
                        evaluations=[stage, failed], llm_call_ids=[call])
    archive.add_event(run, "best", "new best", {"score": 1.5, "ids": {3, 4}})
    archive.add_event(run, "start", "started")
    archive.set_state(run, "sampler", {"weights": [0.5, 0.5]})
    archive.set_state(run, "sampler", {"weights": [0.25, 0.75]})   # the update path
    archive.set_state(run, "empty", None)


def _rows(execute: Any) -> dict[str, list[tuple]]:
    """Every stored value of the hot tables, as the database holds it (no type processing);
    timestamps are checked for their stored form and then left out (they differ per run)."""
    found = {}
    for table in TABLES:
        cursor = execute(f"SELECT * FROM {table} ORDER BY id")
        names = [d[0] for d in cursor.description]
        rows = []
        for row in cursor.fetchall():
            kept = []
            for name, value in zip(names, row, strict=True):
                if name in TIME_COLUMNS:
                    assert STORED_TIME.match(value), f"{table}.{name} stored as {value!r}"
                else:
                    kept.append(value)
            rows.append(tuple(kept))
        found[table] = rows
    return found


def test_the_driver_path_stores_what_sqlalchemy_core_stores(tmp_path):
    path = tmp_path / "archive.sqlite"
    with Archive.open(path) as on_file:
        assert on_file._writes is not None   # the driver path is the one under test
        _store_everything(on_file)
    with sqlite3.connect(path) as db:
        from_driver = _rows(db.execute)
    with Archive.open("sqlite://") as in_memory:
        assert in_memory._writes is None
        _store_everything(in_memory)
        with in_memory._engine.connect() as connection:
            from_core = _rows(lambda sql: connection.exec_driver_sql(sql).cursor)
    assert from_driver == from_core
    assert from_driver["programs"][1][1:3] != ()   # rows were stored at all
    assert len(from_driver["evaluations"]) == 2 and len(from_driver["state"]) == 2


@pytest.mark.parametrize("where", ["file", "memory"])
def test_a_refused_write_stores_nothing_and_the_next_one_works(tmp_path, where):
    url = tmp_path / "archive.sqlite" if where == "file" else "sqlite://"
    with Archive.open(url) as archive:
        run = archive.create_run(problem="p", config_toml="", seed=1, isolation="none")
        first = archive.add_program(run, code="a", proposal_key="k")
        # The same proposal again: its id, nothing written.
        assert archive.add_program(run, code="b", proposal_key="k") == first
        # A missing parent (foreign key): refused as a whole, evaluations included.
        with pytest.raises(ArchiveError, match="nothing stored"):
            archive.add_program(run, code="c", parent_id=999,
                                evaluations=[StageResult(stage="main", score=1.0)])
        # LLM calls of another run: the program is rolled back with the refusal.
        with pytest.raises(ArchiveError, match="nothing was stored"):
            archive.add_program(run, code="d", llm_call_ids=[12345])
        assert [p.code for p in archive.programs(run)] == ["a"]
        with archive._engine.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM evaluations")).scalar() == 0
        archive.add_event(run, "after", "still writing")
        assert [e.kind for e in archive.events(run)] == ["after"]

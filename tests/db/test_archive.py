"""The archive on real SQLite files and a real PostgreSQL server (`archive_url` runs each test on
both): every table round trips, writes are atomic, queries agree."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime

import pytest

from db import Archive, ArchiveError, archive_path, code_hash_of
from evaluators.result import FailureKind, StageResult


@pytest.fixture
def archive(archive_url):
    with Archive.open(archive_url) as arch:
        yield arch


def _table_names(archive_url: str) -> set[str]:
    from sqlalchemy import create_engine, inspect

    url = archive_url if "://" in archive_url else f"sqlite:///{archive_url}"
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def _run(archive: Archive, **kw) -> int:
    args = {"problem": "circle_packing", "config_toml": "seed = 3\n", "seed": 3,
            "isolation": "rlimits"}
    args.update(kw)
    return archive.create_run(**args)


def test_every_table_round_trips_through_a_reopened_archive(archive_url):
    path = archive_url
    stages = [
        StageResult(stage="quick", score=0.5, valid=True, metrics={"n": 3}, feedback="ok",
                    wall_s=0.25, cpu_s=0.2, stdout="out", stderr="", isolation="bwrap"),
        StageResult(stage="full", score=None, valid=False, failure=FailureKind.TIMEOUT,
                    reason="stage 'full' exceeded 10 s", wall_s=10.0, cpu_s=9.5,
                    stderr="killed", isolation="bwrap"),
    ]
    with Archive.open(path) as arch:
        run_id = _run(arch, name="first")
        root = arch.add_program(run_id, code="x = 1\n", status="evaluated", score=1.0,
                                valid=True, operator="initial")
        call_priced = arch.record_llm_call(
            run_id, model="openai/m", prompt='[{"role": "user"}]', response="diff",
            tokens_in=120, tokens_out=30, cost_usd=0.002, latency_s=1.5, error=None,
            purpose="mutation", finish_reason="stop")
        call_unknown = arch.record_llm_call(
            run_id, model="ollama/q", prompt="[]", response=None, tokens_in=None,
            tokens_out=None, cost_usd=None, latency_s=0.1, error="timeout", purpose="mutation")
        child = arch.add_program(
            run_id, code="x = 2\n", parent_id=root, inspiration_ids=[root], island=2,
            generation=1, operator="openai/m", mutation_kind="diff", status="failed",
            stage_reached="full", score=None, valid=False, metrics={"n": 3, "ratio": 0.5},
            feedback="too slow", error_kind=FailureKind.TIMEOUT, error_text="exceeded 10 s",
            timings={"propose_s": 1.5, "eval_s": 10.25}, diff="- x = 1\n+ x = 2\n",
            proposal_key="p-1", evaluations=stages, llm_call_ids=[call_priced, call_unknown])
        arch.set_state(run_id, "bandit", {"arms": {"openai/m:diff": [1, 0.5]}, "t": 7})
        arch.set_state(run_id, "rng", [3, [1, 2, 3], None])
        arch.set_state(run_id, "rng", [4, [5], None])  # overwrite, not a second row
        event_id = arch.add_event(run_id, "migration", "island 0 -> 1",
                                  {"programs": [root], "from": 0})
        arch.add_event(run_id, "budget", "stopped: max_programs")
        arch.finish_run(run_id, "finished")

    with Archive.open(path, create=False) as arch:
        assert arch.schema_version >= 1
        (run,) = arch.runs()
        assert (run.id, run.name, run.problem, run.seed, run.isolation, run.status) == (
            run_id, "first", "circle_packing", 3, "rlimits", "finished")
        assert run.config_toml == "seed = 3\n"
        assert run.started_at.tzinfo is UTC and run.finished_at >= run.started_at
        assert arch.get_run(run_id) == run and arch.get_run(999) is None

        prog = arch.program(child)
        assert prog.code == "x = 2\n" and prog.code_hash == code_hash_of("x = 2\n")
        assert (prog.parent_id, prog.inspiration_ids, prog.island, prog.generation) == (
            root, [root], 2, 1)
        assert (prog.operator, prog.mutation_kind, prog.status, prog.stage_reached) == (
            "openai/m", "diff", "failed", "full")
        assert prog.score is None and prog.valid is False
        assert prog.metrics == {"n": 3, "ratio": 0.5} and prog.feedback == "too slow"
        assert (prog.error_kind, prog.error_text) == ("timeout", "exceeded 10 s")
        assert prog.timings == {"propose_s": 1.5, "eval_s": 10.25}
        assert prog.diff == "- x = 1\n+ x = 2\n" and prog.proposal_key == "p-1"
        assert isinstance(prog.created_at, datetime) and prog.created_at.tzinfo is UTC

        evals = arch.evaluations(child)
        assert [e.stage for e in evals] == ["quick", "full"]
        assert [e.as_stage_result() for e in evals] == stages
        assert arch.evaluations(root) == []

        calls = arch.llm_calls(run_id)
        assert [c.id for c in calls] == [call_priced, call_unknown]
        assert {c.program_id for c in calls} == {child}
        assert [c.id for c in arch.llm_calls(program_id=child)] == [call_priced, call_unknown]
        assert calls[0].cost_usd == 0.002 and calls[1].cost_usd is None
        assert (calls[0].tokens_in, calls[0].tokens_out, calls[0].finish_reason) == (120, 30, "stop")
        assert calls[1].error == "timeout" and calls[1].response is None
        assert arch.cost_so_far(run_id) == pytest.approx(0.002)
        summary = arch.cost_summary(run_id)
        assert (summary.calls, summary.unknown_calls, summary.tokens_in) == (2, 1, 120)
        assert summary.by_model == {"openai/m": pytest.approx(0.002), "ollama/q": 0.0}

        assert arch.get_state(run_id, "bandit") == {"arms": {"openai/m:diff": [1, 0.5]}, "t": 7}
        assert arch.get_state(run_id, "rng") == [4, [5], None]
        assert arch.get_state(run_id, "missing", default={"d": 1}) == {"d": 1}
        assert arch.state_keys(run_id) == ["bandit", "rng"]

        events = arch.events(run_id)
        assert [(e.kind, e.message) for e in events] == [
            ("migration", "island 0 -> 1"), ("budget", "stopped: max_programs")]
        assert events[0].data == {"programs": [root], "from": 0} and events[1].data is None
        assert [e.id for e in arch.events(run_id, kind="budget")] == [events[1].id]
        assert [e.id for e in arch.events(run_id, after_id=event_id)] == [events[1].id]
        assert arch.last_activity(run_id) is not None

    assert {"runs", "programs", "evaluations", "llm_calls", "state", "events",
            "schema_info"} <= _table_names(path)


def test_sqlite_file_is_in_wal_mode(tmp_path):
    with Archive.open(archive_path(tmp_path / "run")):
        raw = sqlite3.connect(archive_path(tmp_path / "run"))
        assert raw.execute("pragma journal_mode").fetchone() == ("wal",)
        raw.close()


def test_foreign_keys_are_enforced(archive):
    run_id = _run(archive)
    with pytest.raises(ArchiveError, match="nothing stored"):
        archive.add_program(run_id, code="x", parent_id=12345)
    with pytest.raises(ArchiveError):
        archive.add_event(999, "kind", "no such run")
    assert archive.count_programs(run_id) == 0


def test_a_failed_add_program_stores_nothing(archive):
    run_id = _run(archive)
    other_run = _run(archive)
    foreign_call = archive.record_llm_call(
        other_run, model="m", prompt="p", response="r", tokens_in=1, tokens_out=1,
        cost_usd=0.0, latency_s=0.1, error=None, purpose="mutation")
    with pytest.raises(ArchiveError, match="not all are LLM calls of run"):
        archive.add_program(run_id, code="x", evaluations=[StageResult(stage="s")],
                            llm_call_ids=[foreign_call])
    assert archive.count_programs(run_id) == 0
    assert archive.llm_calls(other_run)[0].program_id is None


def test_proposal_key_stores_a_proposal_once_per_run(archive):
    run_id, other = _run(archive), _run(archive)
    first = archive.add_program(run_id, code="a", proposal_key="k1")
    again = archive.add_program(run_id, code="different", proposal_key="k1")
    assert again == first and archive.count_programs(run_id) == 1
    assert archive.find_by_proposal_key(run_id, "k1").code == "a"
    # Keys are per run, and programs without a key never collide.
    assert archive.add_program(other, code="a", proposal_key="k1") != first
    archive.add_program(run_id, code="b")
    archive.add_program(run_id, code="b")
    assert archive.count_programs(run_id) == 3


def test_queries_best_island_failures_hash_and_counts(archive):
    run_id, other = _run(archive), _run(archive)
    specs = [  # (island, score, valid)
        (0, 1.0, True), (0, 3.0, True), (1, 2.0, True), (1, 5.0, False), (0, None, False),
        (1, 3.0, True), (0, float("nan"), True),
    ]
    ids = [archive.add_program(run_id, code=f"c{i}", island=isl, score=sc, valid=v,
                               status="evaluated" if v else "failed")
           for i, (isl, sc, v) in enumerate(specs)]
    archive.add_program(other, code="c0", score=100.0, valid=True)

    # Ties keep the older program first; NaN scores never rank; invalid never ranks.
    assert [p.id for p in archive.best(run_id, k=3)] == [ids[1], ids[5], ids[2]]
    assert [p.id for p in archive.best(run_id, k=5, island=1)] == [ids[5], ids[2]]
    assert archive.best(run_id)[0].score == 3.0
    assert [p.id for p in archive.by_island(run_id, 1)] == [ids[2], ids[3], ids[5]]
    assert [p.id for p in archive.recent_failures(run_id, 2)] == [ids[4], ids[3]]
    assert archive.count_programs(run_id) == 7
    assert archive.count_programs(run_id, valid=True) == 5
    assert archive.count_programs(run_id, status="failed") == 2
    assert archive.find_by_hash(run_id, code_hash_of("c2")).id == ids[2]
    assert archive.find_by_hash(run_id, code_hash_of("nope")) is None
    assert [p.id for p in archive.programs(run_id, after_id=ids[4])] == ids[5:]
    assert [p.id for p in archive.programs(run_id, limit=2)] == ids[:2]
    assert archive.program(ids[6]).score is None
    with pytest.raises(ArchiveError, match="exactly one"):
        archive.llm_calls()


def test_state_must_be_json_able(archive):
    run_id = _run(archive)
    archive.set_state(run_id, "tuple", (1, 2))
    assert archive.get_state(run_id, "tuple") == [1, 2]
    with pytest.raises(ArchiveError, match="state 'bad' is not JSON-able"):
        archive.set_state(run_id, "bad", {"x": float("nan"), 1j: 2})


def test_open_refuses_a_missing_archive_when_asked_not_to_create(tmp_path):
    with pytest.raises(ArchiveError, match="no archive at"):
        Archive.open(tmp_path / "nowhere" / "archive.sqlite", create=False)
    assert not (tmp_path / "nowhere").exists()


def test_worker_threads_may_share_one_archive(archive):
    # The controller is asyncio; it may hand archive calls to threads (asyncio.to_thread).
    run_id = _run(archive)

    async def many() -> None:
        writes = [asyncio.to_thread(archive.add_program, run_id, code=f"c{i}") for i in range(60)]
        reads = [asyncio.to_thread(archive.count_programs, run_id) for _ in range(30)]
        await asyncio.gather(*writes, *reads)

    asyncio.run(many())
    assert archive.count_programs(run_id) == 60
    assert len({p.code for p in archive.programs(run_id)}) == 60


def test_any_sqlalchemy_url_is_accepted(tmp_path):
    with Archive.open("sqlite://") as mem:  # in memory, shared across the pool
        run_id = _run(mem)
        mem.add_program(run_id, code="x")
        assert mem.count_programs(run_id) == 1
    url = f"sqlite:///{tmp_path / 'by_url.sqlite'}"
    with Archive.open(url) as arch:
        _run(arch)
    assert (tmp_path / "by_url.sqlite").is_file()

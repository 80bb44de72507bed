"""The archive API: the one place that reads and writes a run's SQLite (or other SQL) database.

Only the controller writes. Every write method is one transaction, so a crash loses nothing
already committed. Reads return frozen records (`db/records.py`), never live ORM rows.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Select,
    func,
    literal,
    select,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from sqlalchemy.orm import Session, aliased, sessionmaker

from db.connect_errors import explain
from db.convert import code_hash_of, record, stage_fields, text_or_none  # noqa: F401
from db.engine import WRITE_OPTION, finite_or_none, is_url, json_dumps, make_engine, sqlite_url
from db.errors import (  # noqa: F401 (also importable from here)
    ArchiveError,
    ArchiveUnreachable,
    ArchiveVersionError,
)
from db.models import (
    EvaluationRow,
    EventRow,
    LLMCallRow,
    ProgramRow,
    RunRow,
    SchemaInfoRow,
    StateRow,
    utcnow,
)
from db.records import CostSummary, Evaluation, Event, LLMCall, Program, Run
from db.schema import prepare_schema
from db.write_connection import CoreWrites, SqliteWrites, WriteConnection, is_sqlite_file

_PROGRAMS = ProgramRow.__table__
_EVALUATIONS = EvaluationRow.__table__
_LLM_CALLS = LLMCallRow.__table__
_EVENTS = EventRow.__table__
_STATE = StateRow.__table__


class Archive:
    """A run archive. Open with `Archive.open(path_or_url)`; close with `close()` or `with`."""

    def __init__(self, url: str, *, create: bool = True):
        self.url = url
        self._engine = make_engine(url)
        self._read_sessions = sessionmaker(self._engine, expire_on_commit=False)
        self._write_engine = self._engine.execution_options(**{WRITE_OPTION: True})
        self._write_sessions = sessionmaker(self._write_engine, expire_on_commit=False)
        try:
            prepare_schema(self._engine, self._write_sessions, create=create, where=self.where)
        except (OperationalError, InterfaceError) as exc:
            # Unreachable server, wrong password, missing database: one line, what to do.
            self._engine.dispose()
            raise ArchiveUnreachable(explain(exc, url)) from exc
        except Exception:
            self._engine.dispose()
            raise
        # The hot writes' own connection on a SQLite file (db/write_connection.py).
        self._writes = WriteConnection(url) if is_sqlite_file(url) else None

    @property
    def where(self) -> str:
        """The URL for messages, password hidden."""
        return make_url(self.url).render_as_string(hide_password=True)

    @classmethod
    def open(cls, url_or_path: str | Path, *, create: bool = True) -> Archive:
        """A path is a SQLite file (created with its folder unless `create=False`); a string
        containing `://` is any SQLAlchemy URL."""
        if is_url(url_or_path):
            return cls(str(url_or_path), create=create)
        path = Path(url_or_path)
        if not path.exists():
            if not create:
                raise ArchiveError(f"no archive at {path}; check the run directory "
                                   f"(a run creates RUN_DIR/archive.sqlite when it starts)")
            path.parent.mkdir(parents=True, exist_ok=True)
        return cls(sqlite_url(path), create=create)

    def close(self) -> None:
        if self._writes is not None:
            self._writes.close()
        self._engine.dispose()

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing -------------------------------------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[Session]:
        try:
            with self._write_sessions.begin() as session:
                yield session
        except IntegrityError as exc:
            # A missing parent or run, or a duplicate key: nothing of this write was stored.
            raise ArchiveError(f"write refused by the database, nothing stored: {exc.orig}") from exc

    @contextmanager
    def _hot_write(self) -> Iterator[CoreWrites | SqliteWrites]:
        """One write transaction of the hot writes (programs, LLM calls, events, state): no
        Session (its unit-of-work bookkeeping costs more CPU than the statements), and on a
        SQLite file the driver itself on one kept connection, which opens the transaction at
        the first write statement, so each of them starts with an INSERT or UPDATE
        (db/write_connection.py)."""
        try:
            if self._writes is not None:
                with self._writes.transaction() as writes:
                    yield writes
            else:
                with self._write_engine.begin() as connection:
                    yield CoreWrites(connection)
        except IntegrityError as exc:
            raise ArchiveError(f"write refused by the database, nothing stored: {exc.orig}") from exc

    @contextmanager
    def _read(self) -> Iterator[Session]:
        # One transaction, so every query of one method sees the same snapshot.
        with self._read_sessions.begin() as session:
            yield session

    @property
    def schema_version(self) -> int:
        with self._read() as s:
            return int(s.scalar(select(SchemaInfoRow.version)) or 0)

    # -- runs -----------------------------------------------------------------------------

    def create_run(self, *, problem: str, config_toml: str, seed: int, isolation: str,
                   name: str | None = None) -> int:
        with self._write() as s:
            row = RunRow(problem=problem, config_toml=config_toml, seed=seed,
                         isolation=isolation, name=name, status="running")
            s.add(row)
            s.flush()
            return row.id

    def get_run(self, run_id: int) -> Run | None:
        with self._read() as s:
            row = s.get(RunRow, run_id)
            return None if row is None else record(Run, row)

    def runs(self) -> list[Run]:
        with self._read() as s:
            return [record(Run, r) for r in s.scalars(select(RunRow).order_by(RunRow.id))]

    def _run_row(self, session, run_id: int) -> RunRow:
        """The run's row, or an error naming the run and the archive."""
        row = session.get(RunRow, run_id)
        if row is None:
            raise ArchiveError(f"no run {run_id} in {self.where}")
        return row

    def finish_run(self, run_id: int, status: str) -> None:
        with self._write() as s:
            row = self._run_row(s, run_id)
            row.status = status
            row.finished_at = utcnow()

    def set_run_status(self, run_id: int, status: str) -> None:
        """Change the status without finishing (e.g. 'running' again on resume)."""
        with self._write() as s:
            row = self._run_row(s, run_id)
            row.status = status
            row.finished_at = None

    def set_run_config(self, run_id: int, config_toml: str) -> None:
        """Replace the stored effective config (a resume with new budgets)."""
        with self._write() as s:
            row = self._run_row(s, run_id)
            row.config_toml = config_toml

    # -- programs -------------------------------------------------------------------------

    def add_program(
        self, run_id: int, *, code: str, code_hash: str | None = None,
        parent_id: int | None = None, inspiration_ids: Sequence[int] = (), island: int = 0,
        generation: int = 0, operator: str | None = None, mutation_kind: str | None = None,
        status: str = "evaluated", stage_reached: str | None = None,
        score: float | None = None, valid: bool = False,
        metrics: Mapping[str, Any] | None = None, feedback: str = "",
        error_kind: str | None = None, error_text: str | None = None,
        timings: Mapping[str, Any] | None = None, diff: str | None = None,
        proposal_key: str | None = None, evaluations: Iterable[Any] = (),
        llm_call_ids: Sequence[int] = (),
    ) -> int:
        """Store a program, its per-stage evaluations and link the LLM calls that produced it,
        all in one transaction. A `proposal_key` already stored for this run returns that
        program's id and writes nothing (a resumed run must not store a proposal twice)."""
        row = dict(
            run_id=run_id, code=code, code_hash=code_hash or code_hash_of(code),
            diff=diff, parent_id=parent_id, inspiration_ids=[int(i) for i in inspiration_ids],
            island=island, generation=generation, operator=operator,
            mutation_kind=text_or_none(mutation_kind), status=text_or_none(status) or "evaluated",
            stage_reached=stage_reached, score=finite_or_none(score), valid=bool(valid),
            metrics=dict(metrics or {}), feedback=feedback or "",
            error_kind=text_or_none(error_kind), error_text=error_text,
            timings=dict(timings or {}), proposal_key=proposal_key, created_at=utcnow())
        stages = list(evaluations)
        ids = sorted(set(int(i) for i in llm_call_ids))
        with self._hot_write() as w:
            try:
                # No look-up before every insert: the unique key refuses a proposal stored
                # before, and we look it up only then.
                program_id = w.insert(_PROGRAMS, row) if proposal_key is None else \
                    w.insert_keyed_program(row)
            except IntegrityError:
                existing = None if proposal_key is None else \
                    w.find_proposal(run_id, proposal_key)
                if existing is not None:
                    return int(existing)  # stored before (a resumed run): write nothing
                raise
            if stages:
                w.insert_many(_EVALUATIONS, [
                    {"program_id": program_id, "position": position, **stage_fields(stage)}
                    for position, stage in enumerate(stages)])
            if ids:
                if w.link_calls(ids, run_id, program_id) != len(ids):
                    # Raising rolls back the whole transaction: no half-stored program.
                    raise ArchiveError(f"llm_call_ids {ids}: not all are LLM calls of run "
                                       f"{run_id}; nothing was stored")
            return program_id

    def program(self, program_id: int) -> Program | None:
        with self._read() as s:
            row = s.get(ProgramRow, program_id)
            return None if row is None else record(Program, row)

    def programs(self, run_id: int, *, after_id: int | None = None, limit: int | None = None,
                 status: str | None = None) -> list[Program]:
        """Programs of a run in insertion order; `after_id` gives only newer ones."""
        stmt = select(ProgramRow).where(ProgramRow.run_id == run_id)
        if after_id is not None:
            stmt = stmt.where(ProgramRow.id > after_id)
        if status is not None:
            stmt = stmt.where(ProgramRow.status == status)
        return self._programs(stmt.order_by(ProgramRow.id).limit(limit))

    def _programs(self, stmt: Select[Any]) -> list[Program]:
        with self._read() as s:
            return [record(Program, r) for r in s.scalars(stmt)]

    def best(self, run_id: int, k: int = 1, island: int | None = None) -> list[Program]:
        """The k highest-scoring valid programs (ties: the older first)."""
        stmt = select(ProgramRow).where(ProgramRow.run_id == run_id,
                                        ProgramRow.valid.is_(True),
                                        ProgramRow.score.is_not(None))
        if island is not None:
            stmt = stmt.where(ProgramRow.island == island)
        return self._programs(stmt.order_by(ProgramRow.score.desc(), ProgramRow.id).limit(k))

    def by_island(self, run_id: int, island: int) -> list[Program]:
        return self._programs(select(ProgramRow).where(
            ProgramRow.run_id == run_id, ProgramRow.island == island).order_by(ProgramRow.id))

    def children(self, program_id: int) -> list[Program]:
        return self._programs(select(ProgramRow).where(
            ProgramRow.parent_id == program_id).order_by(ProgramRow.id))

    def ancestors(self, program_id: int) -> list[Program]:
        """Parent, grandparent, ... up to the root (nearest first), by one recursive query."""
        start = (select(ProgramRow.id, ProgramRow.parent_id, literal(0).label("depth"))
                 .where(ProgramRow.id == program_id)
                 .cte("lineage_up", recursive=True))
        up = aliased(ProgramRow)
        lineage = start.union_all(
            select(up.id, up.parent_id, start.c.depth + 1).where(up.id == start.c.parent_id))
        stmt = (select(ProgramRow).join(lineage, ProgramRow.id == lineage.c.id)
                .where(lineage.c.depth > 0).order_by(lineage.c.depth))
        return self._programs(stmt)

    def descendants(self, program_id: int) -> list[Program]:
        """Children, grandchildren, ... (by depth, then age), by one recursive query."""
        start = (select(ProgramRow.id, literal(0).label("depth"))
                 .where(ProgramRow.id == program_id)
                 .cte("lineage_down", recursive=True))
        down = aliased(ProgramRow)
        lineage = start.union_all(
            select(down.id, start.c.depth + 1).where(down.parent_id == start.c.id))
        stmt = (select(ProgramRow).join(lineage, ProgramRow.id == lineage.c.id)
                .where(lineage.c.depth > 0).order_by(lineage.c.depth, ProgramRow.id))
        return self._programs(stmt)

    def recent_failures(self, run_id: int, limit: int = 10) -> list[Program]:
        """The newest invalid programs first (failed, below threshold, or rejected)."""
        return self._programs(select(ProgramRow).where(
            ProgramRow.run_id == run_id, ProgramRow.valid.is_(False))
            .order_by(ProgramRow.id.desc()).limit(limit))

    def count_programs(self, run_id: int, *, valid: bool | None = None,
                       status: str | None = None) -> int:
        stmt = select(func.count(ProgramRow.id)).where(ProgramRow.run_id == run_id)
        if valid is not None:
            stmt = stmt.where(ProgramRow.valid.is_(valid))
        if status is not None:
            stmt = stmt.where(ProgramRow.status == status)
        with self._read() as s:
            return int(s.scalar(stmt) or 0)

    def find_by_hash(self, run_id: int, code_hash: str) -> Program | None:
        found = self._programs(select(ProgramRow).where(
            ProgramRow.run_id == run_id, ProgramRow.code_hash == code_hash)
            .order_by(ProgramRow.id).limit(1))
        return found[0] if found else None

    def find_by_proposal_key(self, run_id: int, proposal_key: str) -> Program | None:
        found = self._programs(select(ProgramRow).where(
            ProgramRow.run_id == run_id, ProgramRow.proposal_key == proposal_key))
        return found[0] if found else None

    def evaluations(self, program_id: int) -> list[Evaluation]:
        with self._read() as s:
            rows = s.scalars(select(EvaluationRow).where(EvaluationRow.program_id == program_id)
                             .order_by(EvaluationRow.position))
            return [record(Evaluation, r) for r in rows]

    # -- LLM calls and cost ---------------------------------------------------------------

    def record_llm_call(self, run_id: int, *, model: str, prompt: str, response: str | None,
                        tokens_in: int | None, tokens_out: int | None, cost_usd: float | None,
                        latency_s: float | None, error: str | None, purpose: str,
                        program_id: int | None = None, finish_reason: str | None = None) -> int:
        """Store one LLM call; `cost_usd=None` means the price is unknown (never assumed 0)."""
        with self._hot_write() as w:
            return w.insert(_LLM_CALLS, dict(
                run_id=run_id, program_id=program_id, model=model, purpose=purpose,
                prompt=prompt, response=response, tokens_in=tokens_in, tokens_out=tokens_out,
                cost_usd=finite_or_none(cost_usd), latency_s=latency_s, error=error,
                finish_reason=finish_reason, created_at=utcnow()))

    def llm_calls(self, run_id: int | None = None, *,
                  program_id: int | None = None) -> list[LLMCall]:
        """The calls of a run, or (with `program_id=`) those that produced one program."""
        if (run_id is None) == (program_id is None):
            raise ArchiveError("llm_calls needs exactly one of run_id or program_id")
        stmt = select(LLMCallRow)
        if run_id is not None:
            stmt = stmt.where(LLMCallRow.run_id == run_id)
        else:
            stmt = stmt.where(LLMCallRow.program_id == program_id)
        with self._read() as s:
            return [record(LLMCall, r) for r in s.scalars(stmt.order_by(LLMCallRow.id))]

    def cost_so_far(self, run_id: int) -> float:
        """USD spent on LLM calls whose price is known."""
        with self._read() as s:
            total = s.scalar(select(func.sum(LLMCallRow.cost_usd))
                             .where(LLMCallRow.run_id == run_id))
            return float(total or 0.0)

    def cost_summary(self, run_id: int) -> CostSummary:
        with self._read() as s:
            rows = s.execute(
                select(LLMCallRow.model, func.count(LLMCallRow.id),
                       func.count(LLMCallRow.cost_usd), func.sum(LLMCallRow.cost_usd),
                       func.sum(LLMCallRow.tokens_in), func.sum(LLMCallRow.tokens_out))
                .where(LLMCallRow.run_id == run_id).group_by(LLMCallRow.model)).all()
        by_model = {model: float(cost or 0.0) for model, _, _, cost, _, _ in rows}
        return CostSummary(
            known_usd=sum(by_model.values()),
            calls=sum(int(n) for _, n, _, _, _, _ in rows),
            unknown_calls=sum(int(n) - int(priced) for _, n, priced, _, _, _ in rows),
            tokens_in=sum(int(t or 0) for *_, t, _ in rows),
            tokens_out=sum(int(t or 0) for *_, t in rows),
            by_model=by_model)

    # -- state and events -----------------------------------------------------------------

    def set_state(self, run_id: int, key: str, value: Any) -> None:
        """Store any JSON-able value under `key` (sampler, bandit, RNG state...)."""
        try:
            value = json.loads(json_dumps(value))
        except (TypeError, ValueError) as exc:
            raise ArchiveError(f"state '{key}' is not JSON-able: {exc}") from exc
        now = utcnow()
        with self._hot_write() as w:
            if w.update_state(run_id, key, value, now) == 0:
                w.insert(_STATE, dict(run_id=run_id, key=key, value=value, updated_at=now))

    def get_state(self, run_id: int, key: str, default: Any = None) -> Any:
        with self._read() as s:
            row = s.scalar(select(StateRow).where(StateRow.run_id == run_id,
                                                  StateRow.key == key))
            return default if row is None else row.value

    def state_keys(self, run_id: int) -> list[str]:
        with self._read() as s:
            return list(s.scalars(select(StateRow.key).where(StateRow.run_id == run_id)
                                  .order_by(StateRow.key)))

    def add_event(self, run_id: int, kind: str, message: str,
                  data: Mapping[str, Any] | None = None) -> int:
        with self._hot_write() as w:
            return w.insert(_EVENTS, dict(
                run_id=run_id, kind=kind, message=message,
                data=None if data is None else dict(data), created_at=utcnow()))

    def events(self, run_id: int, *, kind: str | None = None, after_id: int | None = None,
               limit: int | None = None) -> list[Event]:
        stmt = select(EventRow).where(EventRow.run_id == run_id)
        if kind is not None:
            stmt = stmt.where(EventRow.kind == kind)
        if after_id is not None:
            stmt = stmt.where(EventRow.id > after_id)
        with self._read() as s:
            return [record(Event, r) for r in
                    s.scalars(stmt.order_by(EventRow.id).limit(limit))]

    def last_activity(self, run_id: int) -> datetime | None:
        """When the run last stored a program or event (for 'is it still running?')."""
        with self._read() as s:
            times = [s.scalar(select(func.max(ProgramRow.created_at))
                              .where(ProgramRow.run_id == run_id)),
                     s.scalar(select(func.max(EventRow.created_at))
                              .where(EventRow.run_id == run_id))]
        found = [t for t in times if t is not None]
        return max(found) if found else None

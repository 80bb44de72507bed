"""Ingestion: what happens to a committed program, in sequence order, before later proposals
are planned.

`Ingestor` feeds each program to the sampler (islands, reporting migrations), the bandit
(reward) and the scratchpad, and asks `ScratchpadWriter` for a new summary when one is due. The
controller owns one of each and hands them everything they use at construction: no state is
shared through attributes. Their archive calls go through the controller's `ArchiveThread` (one
thread, in order): it remains the single writer, and the loop never blocks on the database.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Any

from evolve.config import EvolveConfig
from evolve.engine.archive_thread import ArchiveThread
from evolve.engine.collaborators import ArmChooser, LLMCompleter
from evolve.engine.committed import Committed
from evolve.engine.model_health import BenchWatch
from evolve.engine.scratchpad import AttemptRow, Scratchpad
from evolve.prompting import PromptBuilder
from evolve.select.bandit import Arm, reward
from evolve.select.sampler import IslandSampler, Member

ENGINE_STATE = "engine"


class ScratchpadWriter:
    """Writes scratchpad version after version, off the critical path: a summary requested
    after ingest n is computed in the background (from the archive when an earlier session
    stored it, else by the model, else by the statistical summary) and takes effect exactly when
    ingest n + `lag` is done. Proposals planned before that use the previous version, the same
    ones in every repetition of the run; the loop waits only if the summary is still not ready
    by then."""

    def __init__(self, config: EvolveConfig, scratchpad: Scratchpad, archive: ArchiveThread,
                 run_id: int, *, llm: LLMCompleter | None, prompts: PromptBuilder,
                 model: str | None,
                 record_calls: Callable[[list[Any], str], Awaitable[list[int]]],
                 best_score: Callable[[], float | None], lag: Callable[[], int]):
        self.config = config
        self.scratchpad = scratchpad
        self.archive = archive
        self.run_id = run_id
        self.llm = llm
        self.prompts = prompts
        self.model = config.scratchpad.model or model
        self.record_calls = record_calls
        self.best_score = best_score
        self.lag = lag
        self._requested = 0
        self._pending: list[tuple[int, int, asyncio.Task[tuple[list[str], list[Any], bool]]]] = []

    def request(self, at_ingest: int) -> None:
        """Start the summary of what is ingested so far (`at_ingest` programs)."""
        self._requested += 1
        version = self._requested
        rows = self.scratchpad.prompt_rows()
        previous = list(self.scratchpad.recommendations)
        fallback = self.scratchpad.heuristic()
        task = asyncio.ensure_future(self._compute(version, rows, previous, fallback,
                                                   self.best_score()))
        self._pending.append((at_ingest + self.lag(), version, task))

    async def _compute(self, version: int, rows: list[dict[str, Any]], previous: list[str],
                       fallback: list[str],
                       best: float | None) -> tuple[list[str], list[Any], bool]:
        stored = await self.archive.get_state(self.run_id, f"scratchpad/{version}")
        if stored is not None:  # replay: reuse what the earlier session produced
            return list(stored), [], True
        if self.llm is None or not self.model:
            return fallback, [], False
        messages = self.prompts.scratchpad_messages(
            rows, previous, best, self.config.scratchpad.max_recommendations)
        reply = await self.llm.complete(self.model, messages)
        tips = self.scratchpad.parse(reply.text) if reply.ok else fallback
        return tips, list(reply.calls), False

    async def apply_due(self, ingested: int) -> None:
        """Put into effect every summary due once `ingested` programs are in."""
        while self._pending and self._pending[0][0] <= ingested:
            _due, version, task = self._pending[0]
            tips, calls, stored = await task
            self._pending.pop(0)
            self.scratchpad.update(tips)
            if not stored:
                await self.record_calls(calls, "scratchpad")
                await self.archive.set_state(self.run_id, f"scratchpad/{version}", tips)
                await self.archive.set_state(self.run_id, "scratchpad",
                                             {"version": version, "tips": tips})
                await self.archive.add_event(self.run_id, "scratchpad", f"scratchpad v{version}: "
                                             f"{len(tips)} recommendations", {"tips": tips})

    async def aclose(self) -> None:
        """Drop summaries not yet in effect (a resume asks for them again)."""
        for _due, _version, task in self._pending:
            task.cancel()
        await asyncio.gather(*(task for _d, _v, task in self._pending), return_exceptions=True)
        self._pending.clear()


class Ingestor:
    """Feeds committed programs to sampler, bandit and scratchpad, one at a time, in order."""

    def __init__(self, *, archive: ArchiveThread, run_id: int, sampler: IslandSampler,
                 bandit: ArmChooser, arms: dict[str, Arm], scratchpad: Scratchpad,
                 writer: ScratchpadWriter, committed: dict[int, Committed],
                 initial_score: Callable[[], float | None],
                 bench_watch: BenchWatch, log: Callable[[str], None]):
        self.archive = archive
        self.run_id = run_id
        self.sampler = sampler
        self.bandit = bandit
        self.arms = arms
        self.scratchpad = scratchpad
        self.writer = writer
        self.committed = committed          # the controller's record, by seq (read only here)
        self.ingested = 0                   # programs ingested (= the next seq to ingest)
        self.evaluated = 0                  # of which evaluated (what the program budget counts)
        self.stalled = 0                    # proposals in a row with nothing evaluated
        self.initial_score = initial_score  # known once the initial program is in
        self.migrations_stored: set[int] = set()  # at_ingest of migrations already recorded
        self.bench_watch = bench_watch
        self.models = {a.operator for a in arms.values() if a.mutation != "offline"}
        self.log = log

    async def restore(self) -> None:
        """On resume: migrations an earlier session recorded are not recorded again."""
        self.migrations_stored = {
            int((e.data or {}).get("at_ingest", -1))
            for e in await self.archive.events(self.run_id, kind="migration")}

    async def ingest(self, item: Committed) -> None:
        member = Member(seq=item.seq, program_id=item.program_id, island=item.island,
                        score=item.score, valid=item.valid, generation=item.generation,
                        metrics=item.metrics)
        if not item.evaluated:
            member.repaired = True  # nothing to repair: it was never run
        extra = (item.second_seq,) if item.second_seq is not None else ()
        for migration in self.sampler.add(member, item.parent_seq, extra):
            await self._migration_event(migration)
        arm = self.arms.get(item.arm_label or "")
        parent = self.committed.get(item.parent_seq) if item.parent_seq is not None else None
        if arm is not None:
            yielded = 1.0 if item.valid else 0.5 if item.evaluated else 0.0
            # Charged per attempt: each rejected reply was a paid call that yielded nothing.
            self.bandit.update(arm, self._reward(item, parent), cost_usd=item.cost_usd,
                               yielded=yielded, attempts=item.attempts)
        if item.operator in self.models and self.bench_watch.observe(item.operator,
                                                                     item.error_kind):
            await self._bench(item.operator, item)
        parent_score = parent.score if parent is not None else None
        self.scratchpad.record(AttemptRow(
            seq=item.seq, operator=item.operator or "", mutation=item.mutation or "",
            valid=item.valid, score=item.score,
            delta=(item.score - parent_score) if item.score is not None and parent_score is not None
            else None, error=f"{item.error_kind}: {item.error_text}" if item.error_kind else "",
            summary=item.summary))
        self.evaluated += item.evaluated
        self.stalled = 0 if item.evaluated else self.stalled + 1
        if self.scratchpad.due(self.ingested + 1):
            self.writer.request(self.ingested + 1)
        self.ingested += 1
        await self.writer.apply_due(self.ingested)

    async def _bench(self, model: str, item: Committed) -> None:
        """Stop choosing `model`: its last `bench_after` proposals all failed to get a reply."""
        for arm in self.arms.values():
            if arm.operator == model:
                self.bandit.bench(arm)
        message = (f"model {model} is benched: its last {self.bench_watch.limit} calls failed "
                   f"(last error: {(item.error_text or '').splitlines()[0][:200] if item.error_text else '?'})")
        self.log(f"warning: {message}")
        await self.archive.add_event(self.run_id, "bench", message,
                                     {"model": model, "at_ingest": self.ingested})

    def _reward(self, item: Committed, parent: Committed | None) -> float:
        return reward(item.score if item.valid else None,
                      parent.score if parent is not None and parent.valid else None,
                      self.initial_score())

    async def _migration_event(self, migration: Any) -> None:
        """Record a migration once: a replay re-derives migrations an earlier session stored."""
        at = self.sampler.ingested
        if at in self.migrations_stored:
            return
        data = asdict(migration) | {"at_ingest": at}
        await self.archive.add_event(self.run_id, "migration",
                                     f"program {migration.program_id} migrated from island "
                                     f"{migration.source} to {migration.target}", data)

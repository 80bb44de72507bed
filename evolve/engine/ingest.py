"""The controller's feedback half: what happens after a program is committed.

Ingesting a program in sequence order updates islands (and reports migrations), the bandit
(reward), and the scratchpad; the best program is tracked and written to `best/`; progress
snapshots are published. `Controller` (evolve/engine/controller.py) inherits this; it is split out only
to keep each file about one thing. All archive writes still happen in the controller's process
and event loop: it remains the single writer.
"""

from __future__ import annotations

import math
from dataclasses import asdict
from typing import Any

from evolve.engine.committed import Committed, proposal_key
from evolve.engine.run_files import ProgressSnapshot, write_best
from evolve.engine.sampling import Member
from evolve.engine.scratchpad import AttemptRow

ENGINE_STATE = "engine"


class FeedbackMixin:
    """Expects the attributes that `Controller.__init__` sets."""

    async def _ingest(self, item: Committed) -> None:
        member = Member(seq=item.seq, program_id=item.program_id, island=item.island,
                        score=item.score, valid=item.valid, generation=item.generation,
                        metrics=item.metrics)
        if not item.evaluated:
            member.repaired = True  # nothing to repair: it was never run
        extra = (item.second_seq,) if item.second_seq is not None else ()
        for migration in self.sampler.add(member, item.parent_seq, extra):
            self._migration_event(migration)
        arm = self.arms.get(item.arm_label or "")
        if arm is not None:
            parent = self.committed.get(item.parent_seq) if item.parent_seq is not None else None
            self.bandit.update(arm, self._reward(item, parent), cost_usd=item.cost_usd)
        parent_score = self.committed[item.parent_seq].score \
            if item.parent_seq is not None and item.parent_seq in self.committed else None
        self.scratchpad.record(AttemptRow(
            seq=item.seq, operator=item.operator or "", mutation=item.mutation or "",
            valid=item.valid, score=item.score,
            delta=(item.score - parent_score) if item.score is not None and parent_score is not None
            else None, error=f"{item.error_kind}: {item.error_text}" if item.error_kind else "",
            summary=item.summary))
        if self.scratchpad.due(self._ingested + 1):
            await self._refresh_scratchpad()
        if (self._ingested + 1) % 10 == 0:
            self._save_state()

    def _reward(self, item: Committed, parent: Committed | None) -> float:
        from evolve.operators.bandit import reward

        initial = self.initial.score if self.initial is not None else None
        return reward(item.score if item.valid else None,
                      parent.score if parent is not None and parent.valid else None, initial)

    def _migration_event(self, migration: Any) -> None:
        """Record a migration once: a replay re-derives migrations an earlier session stored."""
        at = self.sampler.ingested
        if at in self._migrations_stored:
            return
        data = asdict(migration) | {"at_ingest": at}
        self.archive.add_event(self.run_id, "migration",
                               f"program {migration.program_id} migrated from island "
                               f"{migration.source} to {migration.target}", data)

    async def _refresh_scratchpad(self) -> None:
        version = self.scratchpad.version + 1
        stored = self.archive.get_state(self.run_id, f"scratchpad/{version}")
        calls: list[Any] = []
        if stored is not None:  # replay: reuse what the earlier session produced
            tips = list(stored)
        elif self.llm is not None and (model := self._scratchpad_model()):
            best = self.best.score if self.best else None
            messages = self.prompts.scratchpad_messages(
                self.scratchpad.prompt_rows(), self.scratchpad.recommendations, best,
                self.config.scratchpad.max_recommendations)
            reply = await self.llm.complete(model, messages)
            calls = reply.calls
            tips = self.scratchpad.parse(reply.text) if reply.ok else self.scratchpad.heuristic()
        else:
            tips = self.scratchpad.heuristic()
        self.scratchpad.update(tips)
        if stored is None:
            self._record_calls(calls, "scratchpad")
            self.archive.set_state(self.run_id, f"scratchpad/{version}", tips)
            self.archive.set_state(self.run_id, "scratchpad", {"version": version, "tips": tips})
            self.archive.add_event(self.run_id, "scratchpad", f"scratchpad v{version}: "
                                   f"{len(tips)} recommendations", {"tips": tips})

    def _scratchpad_model(self) -> str | None:
        if self.config.scratchpad.model:
            return self.config.scratchpad.model
        models = [str(a.operator) for a in self.arms.values()
                  if str(a.operator) not in self.proposer.offline]
        return models[0] if models else None

    async def _judge(self, candidate: str, existing: str) -> tuple[bool, list[Any]]:
        model = self.config.novelty.judge_model
        assert model is not None and self.llm is not None
        reply = await self.llm.complete(model, self.prompts.judge_messages(candidate, existing),
                                        temperature=0.0)
        first = reply.text.strip().split()[0].upper() if reply.ok and reply.text.strip() else ""
        return first.startswith("NOVEL"), reply.calls

    # ================================================================ bookkeeping
    def _maybe_best(self, item: Committed, write: bool = True) -> None:
        if not item.valid or item.score is None or not math.isfinite(item.score):
            return
        if self.best is not None and (item.score < self.best.score or  # type: ignore[operator]
                                      (item.score == self.best.score and item.seq >= self.best.seq)):
            return
        self.best = item
        if write:
            self._write_best(item)
            if item.seq >= 0:
                self.archive.add_event(self.run_id, "best", f"new best {item.score:.6g} "
                                       f"(program {item.program_id})",
                                       {"program_id": item.program_id, "score": item.score})

    def _write_best(self, item: Committed) -> None:
        suffix = self.problem.initial_path.suffix
        write_best(self.run_dir, suffix, item.code, {
            "program_id": item.program_id, "proposal_key": proposal_key(self.seed, item.seq),
            "score": item.score,
            "metrics": item.metrics, "feedback": item.feedback, "island": item.island,
            "generation": item.generation, "operator": item.operator,
            "mutation": item.mutation, "run_id": self.run_id})

    def _save_state(self) -> None:
        """A snapshot for inspection and the dashboard, in one write (every 10 programs and at
        the end). Resume does not need it beyond the elapsed time: it replays the archive."""
        self.archive.set_state(self.run_id, ENGINE_STATE, {
            "elapsed_s": self.elapsed_s, "committed": self.programs_done,
            "ingested": self._ingested, "next_seq": self._next_seq,
            "sampler": self.sampler.state_dict(), "bandit": self.bandit.state_dict(),
            "scratchpad_version": self.scratchpad.version})

    def _publish(self, event: str, *, last: Committed | None = None,
                 status: str = "running") -> None:
        if self.on_progress is None:
            return
        self.on_progress(ProgressSnapshot(
            event=event, run_id=self.run_id, run_dir=str(self.run_dir), problem=self.problem.name,
            programs_done=self.programs_done, programs_budget=self.config.budget.max_programs,
            best_score=self.best.score if self.best else None,
            best_program_id=self.best.program_id if self.best else None,
            initial_score=self.initial.score if self.initial else None,
            cost_usd=self.cost_usd, unknown_cost_calls=self.unknown_cost_calls,
            elapsed_s=self.elapsed_s, proposing=self._proposing,
            evaluating=self._evaluating, islands=self.sampler.island_stats(),
            last=None if last is None else {
                "seq": last.seq, "program_id": last.program_id, "island": last.island,
                "status": last.status, "score": last.score, "valid": last.valid,
                "operator": last.operator, "mutation": last.mutation,
                "error_kind": last.error_kind, "error_text": last.error_text},
            status=status, stop_reason=self._stop_reason,
            isolation=getattr(self.executor, "isolation", "")))


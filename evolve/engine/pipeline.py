"""One proposal through the pipeline: wait for the program budget -> propose (at most N at once)
-> novelty gate (in sequence order) -> evaluate (at most M at once) -> commit.

Every step's failure is a recorded outcome of the proposal (a rejected reply, a duplicate, a
failed evaluation), never an exception that ends the run; a run that cannot work at all (a model
failing from its first call) is reported to the loop through `RunState.fail`.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from evolve.config import EvolveConfig
from evolve.engine.archive_thread import ArchiveThread
from evolve.engine.calls import CallRecorder
from evolve.engine.commit import Committer
from evolve.engine.committed import Committed, proposal_key
from evolve.engine.errors import RunCannotWork
from evolve.engine.evaluation import Evaluation
from evolve.engine.gate import OrderedGate
from evolve.engine.ingest import Ingestor
from evolve.engine.model_health import StartupWatch
from evolve.engine.proposal import BUDGET, Plan, ProposalOutcome, Proposer, calls_cost
from evolve.engine.run_state import RunState
from evolve.patch.novelty import NoveltyFilter, Verdict, code_hash

NOVELTY_STATE = "novelty"   # novelty/{seq}: a remembered candidate's embedding


class ProposalPipeline:
    def __init__(self, config: EvolveConfig, state: RunState, archive: ArchiveThread,
                 run_id: int, *, proposer: Proposer, novelty: NoveltyFilter,
                 evaluation: Evaluation, committer: Committer, recorder: CallRecorder,
                 startup: StartupWatch, ingestor: Ingestor):
        self.config = config
        self.seed = config.seed
        self.state = state
        self.archive = archive
        self.run_id = run_id
        self.proposer = proposer
        self.novelty = novelty
        self.evaluation = evaluation
        self.committer = committer
        self.recorder = recorder
        self.startup = startup
        self.ingestor = ingestor
        # With embeddings or a judge, which candidates the filter remembered (and their
        # vectors) is not derivable from statuses alone: it is stored for resume.
        self.novelty_stored = novelty.embedder is not None or novelty.judge is not None
        self._llm_slots = asyncio.Semaphore(config.concurrency.proposals)
        self._gate = OrderedGate(0)

    async def replay(self, item: Committed) -> None:
        """A committed proposal of an earlier session: no operator, no sandbox; it passes the
        gate in order so the novelty filter remembers exactly what it remembered then."""
        await self._gate.wait(item.seq)
        stored = await self.archive.get_state(self.run_id, f"{NOVELTY_STATE}/{item.seq}") \
            if self.novelty_stored else None
        if item.evaluated or stored is not None:
            self.novelty.remember(str(item.seq), item.code,
                                  embedding=(stored or {}).get("embedding"))
        self._gate.release(item.seq)
        self.state.finished[item.seq] = item

    def may_start(self, seq: int) -> bool:
        """Whether proposal `seq` may call its operator: the programs evaluated so far plus
        every proposal before it still in flight stay below the program budget (a duplicate or
        a rejected reply, once ingested, makes room for one more). Monotone in seq, so
        proposals start in sequence order."""
        budget = self.config.budget.max_programs
        return budget is None or \
            self.ingestor.evaluated + seq - self.ingestor.ingested < budget

    async def run(self, plan: Plan) -> None:
        started = time.perf_counter()
        released = False
        try:
            await self._wait_for_budget(plan.seq)
            started = time.perf_counter()
            outcome = await self._propose(plan)
            if outcome is None:
                return  # the run cannot work (a model failing from the start): no call
            call_ids = await self.recorder.record(outcome.calls, "mutation")
            cost = calls_cost(outcome.calls)
            if outcome.error_kind == BUDGET:
                return
            t0 = time.perf_counter()
            verdict, embed_calls = await self._gate_novelty(plan, outcome)
            self._gate.release(plan.seq)
            released = True
            if verdict is not None:
                verdict = await self.novelty.confirm(verdict, outcome.code or "")  # the judge
                novelty_calls = embed_calls + verdict.calls
                call_ids += await self.recorder.record(novelty_calls, "novelty")
                cost += calls_cost(novelty_calls)
            novelty_s = time.perf_counter() - t0
            result, eval_s = None, 0.0
            if outcome.code is not None and verdict is not None and verdict.novel:
                result, eval_s = await self.evaluation.in_slot(outcome.code)
            timings = self._timings(plan, outcome, started, novelty_s, eval_s, cost)
            if verdict is not None and not verdict.novel:
                self._cite_twin(verdict)
            item = await self.committer.commit(plan, outcome, verdict, result, call_ids, timings)
            item.cost_usd = cost
            self.state.finished[plan.seq] = item
        finally:
            if not released:
                self._gate.release(plan.seq)

    async def _wait_for_budget(self, seq: int) -> None:
        if self.may_start(seq):
            return
        self.state.unstarted.add(seq)
        # The loop may have checked the budget before this task first ran (then it saw nothing
        # to drop): wake it, so a reached budget drops this proposal instead of leaving it
        # waiting for an ingest that never comes.
        self.state.wake.set()
        try:
            while not self.may_start(seq):
                await self.state.ingested.wait()
        finally:
            self.state.unstarted.discard(seq)

    async def _propose(self, plan: Plan) -> ProposalOutcome | None:
        """The operator's outcome (at most N proposals at once), or None when the run cannot
        work and no call may be made. A budget refusal stops the run after in-flight work."""
        self.state.proposing += 1
        try:
            async with self._llm_slots:
                if self.state.fatal is not None:
                    return None
                outcome = await self.proposer.propose(plan)
                # Judged before the first await below, so no proposal waiting for the
                # semaphore makes one more call to a model that cannot work.
                self._observe_startup(plan, outcome)
        finally:
            self.state.proposing -= 1
        if outcome.error_kind == BUDGET and self.state.stop_level == 0:
            text = (outcome.error_text or "").removeprefix("BudgetReached: ")
            self.state.stop_after_in_flight(f"budget reached: {text}")
            self.state.wake.set()
        return outcome

    async def _gate_novelty(self, plan: Plan,
                            outcome: ProposalOutcome) -> tuple[Verdict | None, list[Any]]:
        """The novelty verdict, decided in sequence order (the judge confirms it later), and
        the embedding calls it took. Returns holding the gate: the caller releases it."""
        embedding, embed_calls = (None, []) if outcome.code is None else \
            await self.novelty.embed(outcome.code)      # network: before the gate
        await self._gate.wait(plan.seq)
        if outcome.code is None:
            return None, embed_calls
        hash_value = code_hash(outcome.code)
        verdict = self.novelty.decide(outcome.code, hash_value, embedding)
        if verdict.novel or verdict.judge_pending:
            self.novelty.remember(str(plan.seq), outcome.code, hash_value, embedding)
            if self.novelty_stored:  # so a resume rebuilds this state exactly
                await self.archive.set_state(self.run_id, f"{NOVELTY_STATE}/{plan.seq}",
                                             {"embedding": embedding})
        return verdict, embed_calls

    @staticmethod
    def _timings(plan: Plan, outcome: ProposalOutcome, started: float, novelty_s: float,
                 eval_s: float, cost: float) -> dict[str, Any]:
        timings: dict[str, Any] = {
            "propose_s": outcome.seconds, "novelty_s": novelty_s, "eval_s": eval_s,
            "total_s": time.perf_counter() - started, "attempts": outcome.attempts,
            "cost_usd": cost, "summary": outcome.summary(),
            "arm": plan.credit.label if plan.credit is not None else ""}
        if plan.second is not None:
            timings["second_parent_id"] = plan.second.program_id
        return timings

    def _observe_startup(self, plan: Plan, outcome: ProposalOutcome) -> None:
        """A model that failed from its first call on stops the run: the proposal that
        shows it is still committed, then the loop raises (`RunState.fatal`)."""
        if plan.operator in self.proposer.offline or outcome.error_kind == BUDGET:
            return
        try:
            self.startup.observe(plan.operator, outcome.error_kind, outcome.error_text,
                                 any(getattr(c, "error", None) is None for c in outcome.calls))
        except RunCannotWork as exc:
            self.state.fail(exc)

    def _cite_twin(self, verdict: Verdict) -> None:
        """A duplicate's reason names the program it repeats by proposal key ("initial",
        "7:3"), not by the sequence number the novelty filter keys on. Not by program id: ids
        follow commit order, so a stored text holding one would differ between two runs of one
        seed. Whatever shows it (`evolve show`, the dashboard) prints the program id the key
        resolves to (evolve.dashboard.data)."""
        if verdict.similar_to is None:
            return
        key = proposal_key(self.seed, int(verdict.similar_to))
        verdict.reason = verdict.reason.replace(f"program {verdict.similar_to}",
                                                f"proposal {key}")

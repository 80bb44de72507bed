"""The evolution loop: an asyncio controller, the single writer of the archive.

Pipeline per proposal `seq`: plan (sampler + bandit, synchronous, from the RNG seeded by
(run seed, seq)) -> operator (at most N at once) -> ordered novelty gate -> sandbox evaluation
(at most M at once) -> commit to the archive at once -> ingest into sampler/bandit/scratchpad in
sequence order.

Determinism. A proposal's choices depend only on (seed, seq) and on the programs ingested before
it was planned; ingestion is in sequence order and proposal `s` is planned exactly when programs
`< s - W` have been ingested (W = N + M, the window). The novelty gate decides duplicates in
sequence order too. So the same seed and the same operator replies (as a function of the prompt)
give the same archive contents for any N and M; only ids, timestamps and latencies differ. The
price is head-of-line blocking: a slow proposal holds back planning of those W after it.

Resume. Nothing is needed beyond the archive: committed proposals are replayed through the same
path (they complete instantly with their stored result), which rebuilds sampler, islands,
bandit and novelty state exactly; proposals lost in a crash are planned again from the same
state and key, and `Archive.add_program` refuses a key twice.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from evaluators.result import EvalResult, FailureKind, StageResult
from evolve.config import EvolveConfig, to_toml
from evolve.engine.committed import (
    INITIAL_KEY,
    INITIAL_SEQ,
    Committed,
    committed_from_archive,
    proposal_key,
)
from evolve.engine.gate import OrderedGate
from evolve.engine.ingest import ENGINE_STATE, FeedbackMixin
from evolve.engine.proposal import Plan, ProposalOutcome, Proposer, calls_cost
from evolve.engine.run_files import CONFIG_NAME, ProgressSnapshot, atomic_write
from evolve.engine.sampling import IslandSampler, Member
from evolve.engine.scratchpad import Scratchpad
from evolve.patch.mutation import unified_diff
from evolve.patch.novelty import NoveltyFilter, Verdict, code_hash, embedder_for
from evolve.problem.spec import ProblemSpec
from evolve.prompting import ProgramView, PromptBuilder

WINDOW_STATE = "window"


class Controller(FeedbackMixin):
    def __init__(self, config: EvolveConfig, problem: ProblemSpec, archive: Any, executor: Any,
                 run_dir: Path, *, run_id: int, llm: Any | None, bandit: Any,
                 arms: dict[str, Any], offline: dict[str, Any],
                 on_progress: Callable[[ProgressSnapshot], None] | None = None,
                 log: Callable[[str], None] | None = None):
        self.config = config
        self.problem = problem
        self.archive = archive
        self.executor = executor
        self.run_dir = run_dir
        self.run_id = run_id
        self.llm = llm
        self.bandit = bandit
        self.arms = arms
        self.on_progress = on_progress
        self.log = log or (lambda _msg: None)
        self.seed = config.seed
        self.window = config.concurrency.proposals + self._eval_slots()
        self.prompts = PromptBuilder(problem, config.prompts, config.mutation.max_code_chars)
        self.proposer = Proposer(self.prompts, config.mutation, llm, offline,
                                 {m.name: m.max_tokens for m in config.operators.models})
        self.sampler = IslandSampler(config.sampling, config.islands, problem.config.metrics.features)
        self.novelty = NoveltyFilter(config.novelty, judge=self._judge if (
            llm is not None and config.novelty.judge_model) else None,
            embedder=embedder_for(config.novelty, config.operators.models))
        self.scratchpad = Scratchpad(config.scratchpad)
        self.committed: dict[int, Committed] = {}       # by seq (initial = -1)
        self.by_id: dict[int, Committed] = {}
        self.initial: Committed | None = None
        self.best: Committed | None = None
        self.cost_usd = 0.0
        self._llm_sem = asyncio.Semaphore(config.concurrency.proposals)
        self._eval_sem = asyncio.Semaphore(self._eval_slots())
        self._gate = OrderedGate(0)
        self._finished: dict[int, Committed] = {}        # committed, waiting to be ingested
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._wake = asyncio.Event()
        self._stop_reason: str | None = None
        self._stop_level = 0                            # 1 = finish in-flight, 2 = stop now
        self._next_seq = 0
        self._ingested = 0
        self._proposing = 0
        self._evaluating = 0
        self._elapsed_before = 0.0
        self._started = time.monotonic()
        self._fatal: BaseException | None = None
        self._migrations_stored: set[int] = set()
        self._done = 0                                  # candidate programs committed
        self._main: asyncio.Future[None] | None = None  # the loop, while run() runs
        self._in_feedback = False                       # the loop awaits ingest work
        self._unpriced: set[str] = set()                # models warned about (no price)

    def _eval_slots(self) -> int:
        import os

        return self.config.concurrency.evaluations or os.cpu_count() or 1

    # ================================================================ public
    def request_stop(self, reason: str = "interrupted") -> None:
        """First call: finish in-flight work, then stop. Second call: stop at once."""
        self._stop_level += 1
        self._stop_reason = self._stop_reason or reason
        if self._stop_level >= 2:
            for task in self._tasks.values():
                task.cancel()
            if self._main is not None and self._in_feedback:
                self._main.cancel()  # e.g. waiting on a scratchpad summary
        self._wake.set()

    @property
    def stopping(self) -> int:
        """0 = running, 1 = finishing in-flight work, 2 = stopping at once."""
        return self._stop_level

    @property
    def elapsed_s(self) -> float:
        return self._elapsed_before + time.monotonic() - self._started

    @property
    def programs_done(self) -> int:
        return self._done

    async def start_new(self) -> None:
        """A fresh run: store the initial program (evaluated) as proposal 'initial'."""
        atomic_write(self.run_dir / CONFIG_NAME, to_toml(self.config))
        # The window decides what each proposal sees; a resume (maybe on a machine with another
        # core count, when concurrency.evaluations is unset) must use the same one.
        self.archive.set_state(self.run_id, WINDOW_STATE, self.window)
        self.archive.add_event(self.run_id, "start", f"run started on {self.problem.name}",
                               {"seed": self.seed, "isolation": self.executor.isolation,
                                "window": self.window})
        await self._ensure_initial()

    async def start_resume(self) -> None:
        """Rebuild everything from the archive; evaluate the initial program only if missing."""
        self.committed = committed_from_archive(self.archive.programs(self.run_id))
        self.by_id = {item.program_id: item for item in self.committed.values()}
        self._done = sum(1 for seq in self.committed if seq >= 0)
        self._migrations_stored = {
            int((e.data or {}).get("at_ingest", -1))
            for e in self.archive.events(self.run_id, kind="migration")}
        self.cost_usd = self.archive.cost_so_far(self.run_id)
        self.window = int(self.archive.get_state(self.run_id, WINDOW_STATE, self.window))
        saved = self.archive.get_state(self.run_id, ENGINE_STATE) or {}
        self._elapsed_before = float(saved.get("elapsed_s", 0.0))
        self.archive.set_run_status(self.run_id, "running")
        self.archive.add_event(self.run_id, "resume",
                               f"resumed with {self.programs_done} programs committed",
                               {"programs": self.programs_done, "cost_usd": self.cost_usd,
                                "isolation": self.executor.isolation})
        self.log(f"resuming run {self.run_id}: {self.programs_done} programs committed, "
                 f"${self.cost_usd:.4f} spent")
        await self._ensure_initial()

    async def run(self) -> str:
        """Run until a budget is reached or a stop is requested; returns the final status."""
        self._started = time.monotonic()
        self._publish("start")
        deadline_task = asyncio.create_task(self._deadline()) \
            if self.config.budget.max_minutes else None
        status = "failed"
        self._main = asyncio.ensure_future(self._loop())
        try:
            try:
                await self._main
            except asyncio.CancelledError:
                if not (self._main.cancelled() and self._stop_level >= 2):
                    raise  # the caller cancelled us: not a stop request
            status = "interrupted" if self._stop_reason == "interrupted" else "completed"
        except BaseException as exc:
            if self._stop_reason is None or not isinstance(exc, asyncio.CancelledError):
                self._stop_reason = f"failed: {type(exc).__name__}: {exc}"
            raise
        finally:
            if deadline_task:
                deadline_task.cancel()
            for task in self._tasks.values():
                task.cancel()
            if self._tasks:
                await asyncio.gather(*self._tasks.values(), return_exceptions=True)
            self._save_state()
            reason = self._stop_reason or ("failed" if status == "failed" else "budget")
            self.archive.add_event(self.run_id, "stop", f"run {status}: {reason}",
                                   {"reason": reason, "programs": self.programs_done})
            self.archive.finish_run(self.run_id, status)
            self._publish("stop", status=status)
        if self._fatal is not None:
            raise self._fatal
        return status

    # ================================================================ the loop
    async def _loop(self) -> None:
        max_programs = self.config.budget.max_programs
        while True:
            self._check_budgets()
            if self._fatal is not None:
                raise self._fatal
            if self._stop_level == 0:
                while ((max_programs is None or self._next_seq < max_programs)
                       and self._next_seq < self._ingested + self.window):
                    self._launch(self._next_seq)
                    self._next_seq += 1
            if not self._tasks and (self._stop_level > 0 or self._ingested >= self._next_seq):
                break
            self._wake.clear()
            if self._ingest_ready():
                await self._after_ingest()
                continue
            await self._wake.wait()

    def _check_budgets(self) -> None:
        budget = self.config.budget
        if self._stop_level:
            return
        if budget.max_usd is not None and self.cost_usd >= budget.max_usd:
            self._stop_reason = f"dollar budget ${budget.max_usd:g} reached"
            self._stop_level = 1
        elif budget.target_score is not None and self.best is not None and \
                self.best.score is not None and self.best.score >= budget.target_score:
            self.request_stop(f"target score {budget.target_score:g} reached")
            self.request_stop(f"target score {budget.target_score:g} reached")
        elif budget.max_programs is not None and self._ingested >= budget.max_programs:
            self._stop_reason = f"program budget {budget.max_programs} reached"

    async def _deadline(self) -> None:
        minutes = self.config.budget.max_minutes or 0.0
        await asyncio.sleep(max(0.0, minutes * 60 - self._elapsed_before))
        self._stop_reason = f"time budget {minutes:g} min reached"
        self._stop_level = 1
        self.request_stop(self._stop_reason)  # level 2: in-flight work is cancelled

    def _ingest_ready(self) -> bool:
        return self._ingested in self._finished

    async def _after_ingest(self) -> None:
        # One program at a time: the loop plans what became eligible before the next one is
        # ingested, so proposal `s` sees exactly the programs `< s - W` even when several
        # evaluations finished at once (fast ones do: a warm sandbox takes ~20 ms).
        self._in_feedback = True
        try:
            if self._ingested in self._finished:
                item = self._finished.pop(self._ingested)
                await self._ingest(item)
                self._ingested += 1
        finally:
            self._in_feedback = False

    # ================================================================ planning
    def _launch(self, seq: int) -> None:
        plan = self._plan(seq)
        if seq in self.committed:   # replay of a committed proposal: no operator, no sandbox
            self._tasks[seq] = asyncio.create_task(self._replay(self.committed[seq]))
        else:
            self._tasks[seq] = asyncio.create_task(self._work(plan))
        self._tasks[seq].add_done_callback(lambda _t, s=seq: self._task_done(s))

    def _task_done(self, seq: int) -> None:
        task = self._tasks.pop(seq, None)
        if task is not None and not task.cancelled() and task.exception() is not None:
            self._fatal = self._fatal or task.exception()
        self._wake.set()

    def _plan(self, seq: int) -> Plan:
        rng = random.Random(f"{self.seed}:{seq}")
        island = self.sampler.island_for(seq)
        arm = self.bandit.select(rng)
        self.bandit.on_submit(arm)
        operator = str(arm.operator)
        is_llm = operator not in self.proposer.offline
        kind = str(arm.mutation)
        parent: Member | None = None
        if is_llm and self.config.mutation.repair_invalid_parents and \
                rng.random() < self.config.mutation.repair_rate:
            parent = self.sampler.select_repair_target(island, rng)
            if parent is not None:
                parent.repaired = True
                kind = "repair"
        if parent is None:
            parent = self.sampler.select_parent(island, rng)
            if not parent.valid and is_llm:
                kind = "repair"
        second = None
        if kind == "crossover":
            second = self.sampler.second_parent(island, parent, rng)
            if second is None:
                kind = "full"
        inspirations = self.sampler.inspirations(island, parent, rng) if is_llm else []
        temps = self.config.operators.models
        temperature = None
        for model in temps:
            if model.name == operator:
                temperature = rng.choice(model.temperatures)
        parent_view = self._view(parent, "parent") if is_llm else \
            ProgramView(code=self.committed[parent.seq].code)
        return Plan(seq=seq, key=proposal_key(self.seed, seq), island=island, arm=arm, kind=kind,
                    parent=parent, parent_view=parent_view, rng=rng,
                    second=second, second_view=self._view(second) if second else None,
                    inspirations=inspirations,
                    inspiration_views=[self._view(m) for m in inspirations],
                    scratchpad=list(self.scratchpad.recommendations), temperature=temperature)

    def _view(self, member: Member, role: str = "") -> ProgramView:
        item = self.committed[member.seq]
        stdout = stderr = ""
        if role == "parent" and self.config.prompts.output_excerpt_chars:
            if item.stdout is None or item.stderr is None:  # resumed: load once from the archive
                evaluations = self.archive.evaluations(item.program_id)
                item.stdout = evaluations[-1].stdout if evaluations else ""
                item.stderr = evaluations[-1].stderr if evaluations else ""
            stdout, stderr = item.stdout, item.stderr
        label = "initial program" if member.seq < 0 else f"program {member.seq}"
        return self.prompts.view(item.code, score=item.score, valid=item.valid, label=label,
                                 metrics=item.metrics, feedback=item.feedback,
                                 error=item.error_text or "", stdout=stdout, stderr=stderr)

    # ================================================================ one proposal
    async def _replay(self, item: Committed) -> None:
        await self._gate.wait(item.seq)
        if item.evaluated:
            self.novelty.remember(str(item.seq), item.code)
        self._gate.release(item.seq)
        self._finished[item.seq] = item

    async def _work(self, plan: Plan) -> None:
        started = time.perf_counter()
        released = False
        try:
            self._proposing += 1
            try:
                async with self._llm_sem:
                    outcome = await self.proposer.propose(plan)
            finally:
                self._proposing -= 1
            call_ids = self._record_calls(outcome.calls, "mutation")
            cost = calls_cost(outcome.calls)
            await self._gate.wait(plan.seq)
            verdict: Verdict | None = None
            novelty_s = 0.0
            if outcome.code is not None:
                t0 = time.perf_counter()
                hash_value = code_hash(outcome.code)
                verdict, embedding = await self.novelty.check(outcome.code, hash_value)
                call_ids += self._record_calls(verdict.calls, "novelty")
                cost += calls_cost(verdict.calls)
                if verdict.novel:
                    self.novelty.remember(str(plan.seq), outcome.code, hash_value, embedding)
                novelty_s = time.perf_counter() - t0
            self._gate.release(plan.seq)
            released = True
            result = None
            eval_s = 0.0
            if outcome.code is not None and verdict is not None and verdict.novel:
                self._evaluating += 1
                try:
                    async with self._eval_sem:
                        t0 = time.perf_counter()
                        result = await self._evaluate(outcome.code)
                        eval_s = time.perf_counter() - t0
                finally:
                    self._evaluating -= 1
            timings = {"propose_s": outcome.seconds, "novelty_s": novelty_s, "eval_s": eval_s,
                       "total_s": time.perf_counter() - started, "attempts": outcome.attempts,
                       "cost_usd": cost, "summary": outcome.summary(),
                       "arm": str(getattr(plan.arm, "label", ""))}
            if plan.second is not None:
                timings["second_parent_id"] = plan.second.program_id
            item = self._commit(plan, outcome, verdict, result, call_ids, timings)
            item.cost_usd = cost
            self._finished[plan.seq] = item
        finally:
            if not released:
                self._gate.release(plan.seq)

    async def _evaluate(self, code: str) -> EvalResult:
        """The executor's result; an exception from the executor itself (a bug, not the
        candidate's failure) becomes an evaluator-error result instead of ending the run."""
        try:
            return await self.executor.evaluate(self.problem, code)
        except Exception as exc:
            stage = self.problem.stages[0].name
            return EvalResult(stages=[StageResult(
                stage=stage, failure=FailureKind.EVALUATOR_ERROR,
                reason=f"the executor failed: {type(exc).__name__}: {exc}")])

    def _record_calls(self, calls: list[Any], purpose: str) -> list[int]:
        ids = []
        for call in calls:
            fields = call.archive_fields() if hasattr(call, "archive_fields") else dict(call)
            fields.setdefault("purpose", purpose)
            fields.setdefault("finish_reason", getattr(call, "finish_reason", None))
            ids.append(self.archive.record_llm_call(self.run_id, **fields))
            if fields.get("cost_usd") is not None:
                self.cost_usd += float(fields["cost_usd"])
            elif self.config.budget.max_usd is not None and fields.get("error") is None:
                self._warn_unknown_price(str(fields.get("model")))
        return ids

    def _warn_unknown_price(self, model: str) -> None:
        if model in self._unpriced:
            return
        self._unpriced.add(model)
        message = (f"the price of {model} is unknown, so the dollar budget cannot count its "
                   f"calls; set llm.prices.\"{model}\" (USD per million tokens)")
        self.log(f"warning: {message}")
        self.archive.add_event(self.run_id, "warning", message, {"model": model})

    def _commit(self, plan: Plan, outcome: ProposalOutcome, verdict: Verdict | None,
                result: Any, call_ids: list[int], timings: dict[str, Any]) -> Committed:
        parent_item = self.committed[plan.parent.seq]
        generation = 1 + max(plan.parent.generation,
                             plan.second.generation if plan.second else 0)
        fields: dict[str, Any] = {"code": outcome.code or "", "score": None, "valid": False,
                                  "metrics": {}, "feedback": "", "stage_reached": None,
                                  "evaluations": ()}
        if outcome.code is None:
            status, error_kind, error_text = "rejected", outcome.error_kind, outcome.error_text
        elif verdict is not None and not verdict.novel:
            status, error_kind, error_text = "duplicate", verdict.kind, verdict.reason
        else:
            status = "evaluated"
            error_kind, error_text, valid = self._judge_result(result)
            fields.update(score=result.program_score, valid=valid,
                          metrics=result.metrics, feedback=result.feedback,
                          stage_reached=result.stage_reached, evaluations=result.stages)
        diff = unified_diff(parent_item.code, outcome.code) if outcome.code else None
        program_id = self.archive.add_program(
            self.run_id, code_hash=code_hash(fields["code"]), parent_id=plan.parent.program_id,
            inspiration_ids=[m.program_id for m in plan.inspirations], island=plan.island,
            generation=generation, operator=plan.operator, mutation_kind=plan.kind,
            status=status, error_kind=error_kind, error_text=error_text, timings=timings,
            diff=diff, proposal_key=plan.key, llm_call_ids=call_ids, **fields)
        item = Committed(
            seq=plan.seq, program_id=program_id, island=plan.island, code=fields["code"],
            status=status, score=fields["score"], valid=fields["valid"], generation=generation,
            metrics=dict(fields["metrics"]), feedback=fields["feedback"], error_kind=error_kind,
            error_text=error_text, operator=plan.operator, mutation=plan.kind,
            parent_seq=plan.parent.seq, second_seq=plan.second.seq if plan.second else None,
            summary=str(timings.get("summary", "")), arm_label=timings.get("arm"),
            stdout=result.stages[-1].stdout if result is not None and result.stages else "",
            stderr=result.stages[-1].stderr if result is not None and result.stages else "")
        self.committed[plan.seq] = item
        self._done += 1
        self.by_id[program_id] = item
        self._maybe_best(item)
        self._publish("program", last=item)
        return item

    def _judge_result(self, result: Any) -> tuple[str | None, str | None, bool]:
        """(error kind, error text, valid). Valid = every stage ran and passed: a program the
        cascade stopped early (below a threshold) keeps its partial score but is not valid,
        so it never competes with fully evaluated programs."""
        if result.failure is not None:
            return str(result.failure.value), result.reason, False
        if not result.valid:
            return "invalid-output", result.reason or "the evaluator marked it invalid", False
        final = self.problem.stages[-1].name
        if result.stage_reached != final:
            last = result.last
            return ("below-threshold", f"stage '{last.stage}' scored {last.score:g}, below its "
                    f"threshold; the cascade stopped before stage '{final}'", False)
        return None, None, True

    async def _ensure_initial(self) -> None:
        found = self.committed.get(INITIAL_SEQ)
        if found is None:
            code = self.problem.initial_code()
            self.log(f"evaluating the initial program of {self.problem.name}")
            result = await self._evaluate(code)
            error_kind, error_text, valid = self._judge_result(result)
            score = result.program_score
            program_id = self.archive.add_program(
                self.run_id, code=code, code_hash=code_hash(code), island=0, generation=0,
                operator="initial", mutation_kind="initial", status="evaluated",
                stage_reached=result.stage_reached, score=score, valid=valid,
                metrics=result.metrics, feedback=result.feedback, error_kind=error_kind,
                error_text=error_text, timings={"eval_s": result.wall_s},
                proposal_key=INITIAL_KEY, evaluations=result.stages)
            last = result.last
            found = Committed(seq=INITIAL_SEQ, program_id=program_id, island=0, code=code,
                              status="evaluated", score=score, valid=valid, generation=0,
                              metrics=result.metrics, feedback=result.feedback,
                              error_kind=error_kind, error_text=error_text,
                              stdout=last.stdout if last else "",
                              stderr=last.stderr if last else "")
            self.committed[INITIAL_SEQ] = found
            self.by_id[program_id] = found
            self.log(f"initial program: score {found.score}"
                     + ("" if found.valid else f" (invalid: {found.error_text})"))
        self.initial = found
        self.novelty.remember("-1", found.code)
        self.sampler.add_initial(Member(seq=INITIAL_SEQ, program_id=found.program_id, island=0,
                                        score=found.score, valid=found.valid, generation=0,
                                        metrics=found.metrics))
        for item in self.committed.values():
            self._maybe_best(item, write=False)
        if self.best is not None:
            self._write_best(self.best)

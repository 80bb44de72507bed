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

Archive calls. Every one goes through `ArchiveThread`: one dedicated thread runs them in order
(so the run stays the single writer) and the loop awaits them, so a database that is slow or
locked by another process holds back only the proposals waiting on it, never the loop.

Resume. Nothing is needed beyond the archive: committed proposals are replayed through the same
path (they complete instantly with their stored result), which rebuilds sampler, islands,
bandit and novelty state exactly; proposals lost in a crash are planned again from the same
state and key, and `Archive.add_program` refuses a key twice.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from evaluators.result import EvalResult, FailureKind, StageResult
from evolve.config import EvolveConfig, to_toml
from evolve.engine.archive_thread import ArchiveThread
from evolve.engine.best import BestKeeper
from evolve.engine.collaborators import ArmChooser, Executor, LLMCompleter
from evolve.engine.committed import (
    INITIAL_KEY,
    INITIAL_SEQ,
    Committed,
    committed_from_archive,
    proposal_key,
)
from evolve.engine.errors import RunCannotWork
from evolve.engine.gate import OrderedGate
from evolve.engine.history import recent_attempts
from evolve.engine.in_flight import InFlightPublisher, nodes_in_flight
from evolve.engine.ingest import ENGINE_STATE, Ingestor, ScratchpadWriter
from evolve.engine.model_health import StartupWatch
from evolve.engine.proposal import (
    BUDGET,
    OfflineOperator,
    Plan,
    ProposalOutcome,
    Proposer,
    calls_cost,
)
from evolve.engine.run_files import CONFIG_NAME, ProgressSnapshot, atomic_write
from evolve.engine.scratchpad import Scratchpad
from evolve.patch.mutation import unified_diff
from evolve.patch.novelty import NoveltyFilter, Verdict, code_hash, embedder_for
from evolve.problem.spec import ProblemSpec
from evolve.prompting import ProgramView, PromptBuilder
from evolve.select.bandit import Arm
from evolve.select.sampler import IslandSampler, Member

WINDOW_STATE = "window"
NOVELTY_STATE = "novelty"   # novelty/{seq}: a remembered candidate's embedding


class Controller:
    def __init__(self, config: EvolveConfig, problem: ProblemSpec, archive: ArchiveThread,
                 executor: Executor, run_dir: Path, *, run_id: int, llm: LLMCompleter | None,
                 bandit: ArmChooser, arms: dict[str, Arm], offline: dict[str, OfflineOperator],
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
        # With embeddings or a judge, which candidates the filter remembered (and their
        # vectors) is not derivable from statuses alone: it is stored for resume.
        self._novelty_stored = self.novelty.embedder is not None or self.novelty.judge is not None
        self.scratchpad = Scratchpad(config.scratchpad)
        self.startup = StartupWatch(config.llm.fail_fast_after,
                                    {m.name: m.api_base for m in config.operators.models})
        self.committed: dict[int, Committed] = {}       # by seq (initial = -1)
        self.by_id: dict[int, Committed] = {}
        self.initial: Committed | None = None
        self.best_keeper = BestKeeper(archive, run_id, run_dir, problem.initial_path.suffix,
                                      self.seed)
        llm_models = [str(a.operator) for a in arms.values() if str(a.operator) not in offline]
        self.ingestor = Ingestor(
            archive=archive, run_id=run_id, sampler=self.sampler, bandit=bandit, arms=arms,
            scratchpad=self.scratchpad, committed=self.committed,
            bench_after=config.llm.bench_after, log=self.log,
            writer=ScratchpadWriter(
                config, self.scratchpad, archive, run_id, llm=llm, prompts=self.prompts,
                model=llm_models[0] if llm_models else None, record_calls=self._record_calls,
                best_score=lambda: self.best.score if self.best else None, lag=self.window))
        self.cost_usd = 0.0
        self.unknown_cost_calls = 0                      # LLM calls whose price is unknown
        self._llm_sem = asyncio.Semaphore(config.concurrency.proposals)
        self._eval_sem = asyncio.Semaphore(self._eval_slots())
        self._gate = OrderedGate(0)
        self._finished: dict[int, Committed] = {}        # committed, waiting to be ingested
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._wake = asyncio.Event()
        self._ingest_event = asyncio.Event()             # set (and cleared) after each ingest
        self._unstarted: set[int] = set()                # planned, waiting for the budget
        self._stop_reason: str | None = None
        self._stop_level = 0                            # 1 = finish in-flight, 2 = stop now
        self._next_seq = 0
        self._proposing = 0
        self._evaluating = 0                            # waiting for a slot or running
        self._in_sandbox = 0                            # running
        self._in_flight = InFlightPublisher(
            archive, run_id, lambda: nodes_in_flight(self.executor, self._in_sandbox))
        self._elapsed_before = 0.0
        self._started = time.monotonic()
        self._fatal: BaseException | None = None
        self._done = 0                                  # candidates committed and evaluated
        self._main: asyncio.Future[None] | None = None  # the loop, while run() runs
        self._in_feedback = False                       # the loop awaits ingest work

    def _eval_slots(self) -> int:
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

    @property
    def best(self) -> Committed | None:
        return self.best_keeper.best

    async def start_new(self) -> None:
        """A fresh run: store the initial program (evaluated) as proposal 'initial'."""
        atomic_write(self.run_dir / CONFIG_NAME, to_toml(self.config))
        # The window decides what each proposal sees; a resume (maybe on a machine with another
        # core count, when concurrency.evaluations is unset) must use the same one.
        await self.archive.set_state(self.run_id, WINDOW_STATE, self.window)
        await self.archive.add_event(self.run_id, "start", f"run started on {self.problem.name}",
                                     {"seed": self.seed, "isolation": self.executor.isolation,
                                      "window": self.window})
        await self._ensure_initial()

    async def start_resume(self) -> None:
        """Rebuild everything from the archive; evaluate the initial program only if missing."""
        # In place: the ingestor holds this same dict (a new one would leave it reading none).
        self.committed.clear()
        self.committed.update(committed_from_archive(await self.archive.programs(self.run_id)))
        self.by_id = {item.program_id: item for item in self.committed.values()}
        self._done = sum(1 for seq, item in self.committed.items() if seq >= 0 and item.evaluated)
        await self.ingestor.restore()
        self.cost_usd = await self.archive.cost_so_far(self.run_id)
        self.unknown_cost_calls = (await self.archive.cost_summary(self.run_id)).unknown_calls
        self.window = int(await self.archive.get_state(self.run_id, WINDOW_STATE, self.window))
        self.ingestor.writer.lag = self.window
        saved = (await self.archive.get_state(self.run_id, ENGINE_STATE)) or {}
        self._elapsed_before = float(saved.get("elapsed_s", 0.0))
        await self.archive.set_run_status(self.run_id, "running")
        await self.archive.add_event(self.run_id, "resume",
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
        self._in_flight.start()   # for the dashboard, which reads only the archive
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
            if isinstance(exc, RunCannotWork):
                self._stop_reason = str(exc)
            elif self._stop_reason is None or not isinstance(exc, asyncio.CancelledError):
                self._stop_reason = f"failed: {type(exc).__name__}: {exc}"
            raise
        finally:
            if deadline_task:
                deadline_task.cancel()
            for task in self._tasks.values():
                task.cancel()
            if self._tasks:
                await asyncio.gather(*self._tasks.values(), return_exceptions=True)
            await self.ingestor.writer.aclose()
            await self._in_flight.aclose()
            await self._save_state()
            reason = self._stop_reason or ("failed" if status == "failed" else "budget")
            await self.archive.add_event(self.run_id, "stop", f"run {status}: {reason}",
                                         {"reason": reason, "programs": self.programs_done})
            await self.archive.finish_run(self.run_id, status)
            self._publish("stop", status=status)
        if self._fatal is not None:
            raise self._fatal
        return status

    async def abandon(self, reason: str) -> None:
        """Record that the run stopped before its loop started (e.g. a broken evaluator)."""
        self._stop_reason = reason
        await self._save_state()
        await self.archive.add_event(self.run_id, "stop", f"run failed: {reason}",
                                     {"reason": reason, "programs": self.programs_done})
        await self.archive.finish_run(self.run_id, "failed")

    # ================================================================ the loop
    async def _loop(self) -> None:
        max_programs = self.config.budget.max_programs
        while True:
            # Cleared first: planning may await the archive, and a task finishing meanwhile
            # sets the event again, so the wait below cannot miss it.
            self._wake.clear()
            self._check_budgets()
            if self._fatal is not None:
                raise self._fatal
            if self._stop_level > 0:
                self._drop_unstarted()
            if self._stop_level == 0:
                # Planning follows the window alone, so when a proposal is planned does not
                # depend on the budget (a resume with a larger one replays the same plans). The
                # program budget (evaluated programs) decides when a proposal may *start*
                # (`_may_start`); one never started when the budget is reached is dropped.
                while (self._next_seq < self.ingestor.ingested + self.window
                       and (max_programs is None or self.ingestor.evaluated < max_programs)):
                    await self._launch(self._next_seq)
                    self._next_seq += 1
            if not self._tasks and (self._stop_level > 0 or self.ingestor.ingested >= self._next_seq):
                break
            if self._ingest_ready():
                # One program at a time, planning in between: proposal s is planned exactly
                # when programs < s - W are in, however many completed at once.
                await self._ingest_next()
                continue
            await self._wake.wait()

    def _check_budgets(self) -> None:
        budget = self.config.budget
        if self._stop_level:
            return
        if not self.bandit.active:
            benched = sorted({str(a.operator) for a in self.arms.values()})
            self._fatal = self._fatal or RunCannotWork(
                f"every operator is benched after failing {self.config.llm.bench_after} times "
                f"in a row ({', '.join(benched)}); check the models with `evolve models check`, "
                f"or set operators.use_offline = \"always\" to go on with the offline operators "
                f"when the models fail")
            return
        if budget.max_usd is not None and self.cost_usd >= budget.max_usd:
            self._stop_reason = f"dollar budget ${budget.max_usd:g} reached"
            self._stop_level = 1
        elif budget.target_score is not None and self.best is not None and \
                self.best.score is not None and self.best.score >= budget.target_score:
            self.request_stop(f"target score {budget.target_score:g} reached")
            self.request_stop(f"target score {budget.target_score:g} reached")
        elif budget.max_programs is not None and self.ingestor.evaluated >= budget.max_programs:
            self._stop_reason = f"program budget {budget.max_programs} reached"
            self._drop_unstarted()
        elif self.ingestor.stalled >= budget.stall_after:
            self._stop_reason = (f"nothing new can be proposed: the last {self.ingestor.stalled} "
                                 f"proposals gave no new program to evaluate (duplicates or "
                                 f"rejected replies); budget.stall_after = {budget.stall_after}")
            self._stop_level = 1

    async def _deadline(self) -> None:
        minutes = self.config.budget.max_minutes or 0.0
        await asyncio.sleep(max(0.0, minutes * 60 - self._elapsed_before))
        self._stop_reason = f"time budget {minutes:g} min reached"
        self._stop_level = 1
        self.request_stop(self._stop_reason)  # level 2: in-flight work is cancelled

    def _ingest_ready(self) -> bool:
        return self.ingestor.ingested in self._finished

    async def _ingest_next(self) -> None:
        self._in_feedback = True
        try:
            item = self._finished.pop(self.ingestor.ingested)
            await self.ingestor.ingest(item)
            self._ingest_event.set()  # wakes proposals waiting for the budget to start
            self._ingest_event.clear()
            if self.ingestor.ingested % 10 == 0:
                await self._save_state()
        finally:
            self._in_feedback = False

    # ================================================================ planning
    async def _launch(self, seq: int) -> None:
        plan = await self._plan(seq)
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

    async def _plan(self, seq: int) -> Plan:
        rng = random.Random(f"{self.seed}:{seq}")
        island = self.sampler.island_for(seq)
        arm = self.bandit.select(rng)
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
        if parent is None and not is_llm:
            # An offline operator may pick its own parent among the island's programs
            # (`optimise`: the best skeleton it has not converged on); None = the sampler's.
            choose = getattr(self.proposer.offline[operator], "choose_parent", None)
            if choose is not None:
                parent = choose(self.sampler.valid_members(island), rng, seq=seq)
        if parent is None:
            parent = self.sampler.select_parent(island, rng)
            if not parent.valid and is_llm:
                kind = "repair"
        second = None
        if kind == "crossover":
            second = self.sampler.second_parent(island, parent, rng)
            if second is None:
                kind = "full"
        # The bandit learns about the mutation actually made: a crossover without a second
        # parent is a full rewrite; a repair has no arm of its own and teaches no arm.
        credit = arm if kind == arm.mutation else self.arms.get(Arm(operator, kind).label)
        if credit is not None:
            self.bandit.on_submit(credit)
        inspirations = self.sampler.inspirations(island, parent, rng, second) if is_llm else []
        temps = self.config.operators.models
        temperature = None
        for model in temps:
            if model.name == operator:
                temperature = rng.choice(model.temperatures)
        if is_llm:
            await self._load_output(parent)
            parent_view = self._view(parent, "parent")
        else:
            parent_view = ProgramView(code=self.committed[parent.seq].code)
        return Plan(seq=seq, key=proposal_key(self.seed, seq), island=island, arm=arm, kind=kind,
                    credit=credit,
                    parent=parent, parent_view=parent_view, rng=rng,
                    second=second, second_view=self._view(second) if second else None,
                    inspirations=inspirations,
                    inspiration_views=[self._view(m) for m in inspirations],
                    scratchpad=list(self.scratchpad.recommendations), temperature=temperature,
                    history=recent_attempts(self.committed, self.ingestor.ingested, parent.seq,
                                            island, self.config.prompts.history) if is_llm else [])

    async def _load_output(self, member: Member) -> None:
        """A resumed parent's output, loaded once from the archive for its prompt."""
        item = self.committed[member.seq]
        if self.config.prompts.output_excerpt_chars and (item.stdout is None or item.stderr is None):
            evaluations = await self.archive.evaluations(item.program_id)
            item.stdout = evaluations[-1].stdout if evaluations else ""
            item.stderr = evaluations[-1].stderr if evaluations else ""

    def _view(self, member: Member, role: str = "") -> ProgramView:
        item = self.committed[member.seq]
        stdout = stderr = ""
        if role == "parent" and self.config.prompts.output_excerpt_chars:
            stdout, stderr = item.stdout or "", item.stderr or ""
        label = "initial program" if member.seq < 0 else f"program {member.seq}"
        return self.prompts.view(item.code, score=item.score, valid=item.valid, label=label,
                                 metrics=item.metrics, feedback=item.feedback,
                                 error=item.error_text or "", stdout=stdout, stderr=stderr)

    # ================================================================ one proposal
    async def _replay(self, item: Committed) -> None:
        await self._gate.wait(item.seq)
        stored = await self.archive.get_state(self.run_id, f"{NOVELTY_STATE}/{item.seq}") \
            if self._novelty_stored else None
        if item.evaluated or stored is not None:
            self.novelty.remember(str(item.seq), item.code,
                                  embedding=(stored or {}).get("embedding"))
        self._gate.release(item.seq)
        self._finished[item.seq] = item

    def _may_start(self, seq: int) -> bool:
        """Whether proposal `seq` may call its operator: the programs evaluated so far plus
        every proposal before it still in flight stay below the program budget (a duplicate or
        a rejected reply, once ingested, makes room for one more). Monotone in seq, so
        proposals start in sequence order."""
        budget = self.config.budget.max_programs
        return budget is None or \
            self.ingestor.evaluated + seq - self.ingestor.ingested < budget

    def _drop_unstarted(self) -> None:
        """The program budget is reached: proposals planned but never started are dropped
        (nothing of them was sent or stored; a resume plans them again, identically)."""
        if not self._unstarted:
            return
        first = min(self._unstarted)
        for seq in list(self._unstarted):
            task = self._tasks.get(seq)
            if task is not None:
                task.cancel()
        self._next_seq = min(self._next_seq, first)

    async def _work(self, plan: Plan) -> None:
        started = time.perf_counter()
        released = False
        try:
            if not self._may_start(plan.seq):
                self._unstarted.add(plan.seq)
                # The loop may have checked the budget before this task first ran (then it
                # saw nothing to drop): wake it, so a reached budget drops this proposal
                # instead of leaving it waiting for an ingest that never comes.
                self._wake.set()
                try:
                    while not self._may_start(plan.seq):
                        await self._ingest_event.wait()
                finally:
                    self._unstarted.discard(plan.seq)
            started = time.perf_counter()
            self._proposing += 1
            try:
                async with self._llm_sem:
                    if self._fatal is not None:
                        return  # the run cannot work (a model failing from the start): no call
                    outcome = await self.proposer.propose(plan)
                    # Judged before the first await below, so no proposal waiting for the
                    # semaphore makes one more call to a model that cannot work.
                    self._observe_startup(plan, outcome)
            finally:
                self._proposing -= 1
            if outcome.error_kind == BUDGET and self._stop_level == 0:
                text = (outcome.error_text or "").removeprefix("BudgetReached: ")
                self._stop_reason = f"budget reached: {text}"
                self._stop_level = 1
                self._wake.set()
            call_ids = await self._record_calls(outcome.calls, "mutation")
            cost = calls_cost(outcome.calls)
            if outcome.error_kind == BUDGET:
                return
            t0 = time.perf_counter()
            embedding, embed_calls = (None, []) if outcome.code is None else \
                await self.novelty.embed(outcome.code)      # network: before the gate
            await self._gate.wait(plan.seq)
            verdict: Verdict | None = None
            if outcome.code is not None:
                hash_value = code_hash(outcome.code)
                verdict = self.novelty.decide(outcome.code, hash_value, embedding)
                if verdict.novel or verdict.judge_pending:
                    self.novelty.remember(str(plan.seq), outcome.code, hash_value, embedding)
                    if self._novelty_stored:  # so a resume rebuilds this state exactly
                        await self.archive.set_state(self.run_id, f"{NOVELTY_STATE}/{plan.seq}",
                                                     {"embedding": embedding})
            self._gate.release(plan.seq)
            released = True
            if verdict is not None:
                verdict = await self.novelty.confirm(verdict, outcome.code or "")  # the judge
                novelty_calls = embed_calls + verdict.calls
                call_ids += await self._record_calls(novelty_calls, "novelty")
                cost += calls_cost(novelty_calls)
            novelty_s = time.perf_counter() - t0
            result = None
            eval_s = 0.0
            if outcome.code is not None and verdict is not None and verdict.novel:
                self._evaluating += 1
                try:
                    async with self._eval_sem:
                        t0 = time.perf_counter()
                        self._in_sandbox += 1
                        try:
                            result = await self._evaluate(outcome.code)
                        finally:
                            self._in_sandbox -= 1
                        eval_s = time.perf_counter() - t0
                finally:
                    self._evaluating -= 1
            timings = {"propose_s": outcome.seconds, "novelty_s": novelty_s, "eval_s": eval_s,
                       "total_s": time.perf_counter() - started, "attempts": outcome.attempts,
                       "cost_usd": cost, "summary": outcome.summary(),
                       "arm": plan.credit.label if plan.credit is not None else ""}
            if plan.second is not None:
                timings["second_parent_id"] = plan.second.program_id
            if verdict is not None and not verdict.novel:
                self._cite_twin(verdict)
            item = await self._commit(plan, outcome, verdict, result, call_ids, timings)
            item.cost_usd = cost
            self._finished[plan.seq] = item
        finally:
            if not released:
                self._gate.release(plan.seq)

    def _observe_startup(self, plan: Plan, outcome: ProposalOutcome) -> None:
        """A model that failed from its first call on stops the run: the proposal that
        shows it is still committed, then the loop raises (`_fatal`)."""
        if plan.operator in self.proposer.offline or outcome.error_kind == BUDGET:
            return
        try:
            self.startup.observe(plan.operator, outcome.error_kind, outcome.error_text,
                                 any(getattr(c, "error", None) is None for c in outcome.calls))
        except RunCannotWork as exc:
            self._fatal = self._fatal or exc

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

    async def _record_calls(self, calls: list[Any], purpose: str) -> list[int]:
        ids = []
        for call in calls:
            fields = call.archive_fields() if hasattr(call, "archive_fields") else dict(call)
            fields.setdefault("purpose", purpose)
            fields.setdefault("finish_reason", getattr(call, "finish_reason", None))
            ids.append(await self.archive.record_llm_call(self.run_id, **fields))
            # The budget itself is held by the LLM client's SpendLedger (before each call);
            # this is the spend as the archive records it, for progress and the stop check.
            if fields.get("cost_usd") is not None:
                self.cost_usd += float(fields["cost_usd"])
            else:
                self.unknown_cost_calls += 1   # shown as unknown, never as $0
        return ids

    async def _commit(self, plan: Plan, outcome: ProposalOutcome, verdict: Verdict | None,
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
        program_id = await self.archive.add_program(
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
            attempts=int(timings.get("attempts") or 1),
            stdout=result.stages[-1].stdout if result is not None and result.stages else "",
            stderr=result.stages[-1].stderr if result is not None and result.stages else "")
        self.committed[plan.seq] = item
        if status == "evaluated":
            self._done += 1
        self.by_id[program_id] = item
        await self.best_keeper.offer(item)
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
            program_id = await self.archive.add_program(
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
            fault = evaluator_fault(result)
            if fault is not None:
                raise RunCannotWork(
                    f"the evaluator of {self.problem.name} failed on the initial program, so no "
                    f"candidate could be scored: {fault}. Fix {self.problem.evaluator_path}, check "
                    f"it with `evolve eval {self.config.problem} {self.problem.initial_path}`, and "
                    f"start the run again")
        self._refuse_invalid_initial(found)
        self.initial = found
        self.ingestor.initial_score = found.score
        self.novelty.remember("-1", found.code)
        self.sampler.add_initial(Member(seq=INITIAL_SEQ, program_id=found.program_id, island=0,
                                        score=found.score, valid=found.valid, generation=0,
                                        metrics=found.metrics))
        for item in self.committed.values():
            await self.best_keeper.offer(item, write=False)
        if self.best is not None:
            self.best_keeper.write(self.best)

    def _refuse_invalid_initial(self, initial: Committed) -> None:
        """Every proposal starts from the initial program or a descendant: when it is invalid
        (it does not run, or its output is rejected) and no program of the run is valid, each
        proposal would only fail again. A resume of such a run refuses the same way. An initial
        program the cascade stopped at a threshold did run: the run goes on."""
        if initial.valid or initial.error_kind == "below-threshold" or any(
                item.valid for item in self.committed.values()):
            return
        path = self.problem.initial_path
        raise RunCannotWork(
            f"the initial program of {self.problem.name} is invalid, so there is nothing to "
            f"evolve from: {initial.error_kind}: {initial.error_text}. Fix {path}, check it with "
            f"`evolve eval {self.config.problem} {path}`, and start a new run")

    # ================================================================ bookkeeping
    async def _judge(self, candidate: str, existing: str) -> tuple[bool, list[Any]]:
        model = self.config.novelty.judge_model
        assert model is not None and self.llm is not None
        reply = await self.llm.complete(model, self.prompts.judge_messages(candidate, existing),
                                        temperature=0.0)
        first = reply.text.strip().split()[0].upper() if reply.ok and reply.text.strip() else ""
        return first.startswith("NOVEL"), reply.calls

    async def _save_state(self) -> None:
        """A snapshot for inspection and the dashboard, in one write (every 10 programs and at
        the end). Resume does not need it beyond the elapsed time: it replays the archive."""
        await self.archive.set_state(self.run_id, ENGINE_STATE, {
            "elapsed_s": self.elapsed_s, "committed": self.programs_done,
            "ingested": self.ingestor.ingested, "next_seq": self._next_seq,
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
            isolation=self.executor.isolation))


def evaluator_fault(result: EvalResult) -> str | None:
    """Why a result says the evaluator (not the program) is broken, or None: it did not load,
    raised in its own code, the sandbox could not start, or its result is malformed."""
    last = result.last
    if last is None:
        return "the evaluator produced no result"
    if last.failure == FailureKind.EVALUATOR_ERROR:
        return last.reason or "evaluator error"
    if last.failure == FailureKind.INVALID_OUTPUT and last.score is None and \
            not last.reason.startswith(("the evaluator rejected", "the program modified")):
        return f"its result is malformed ({last.reason})"
    return None

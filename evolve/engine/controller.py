"""The evolution loop: an asyncio controller, the single writer of the archive.

Pipeline per proposal `seq`: plan (`planner.py`: sampler + bandit, from the RNG seeded by
(run seed, seq)) -> operator (at most N at once) -> ordered novelty gate -> sandbox evaluation
(at most M at once) -> commit to the archive at once (`pipeline.py`, `commit.py`) -> ingest into
sampler/bandit/scratchpad in sequence order (`ingest.py`). This module is the loop around them:
the window, the budgets, starting and stopping. Its parts are built in `assemble.py`.

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
import time
from collections.abc import Callable
from pathlib import Path

from evolve.config import EvolveConfig, to_toml
from evolve.engine.archive_thread import ArchiveThread
from evolve.engine.best import BestKeeper
from evolve.engine.collaborators import ArmChooser, Executor
from evolve.engine.committed import Committed, committed_from_archive
from evolve.engine.errors import RunCannotWork
from evolve.engine.in_flight import InFlightPublisher
from evolve.engine.ingest import ENGINE_STATE, Ingestor
from evolve.engine.initial import InitialProgram
from evolve.engine.pipeline import ProposalPipeline
from evolve.engine.planner import Planner
from evolve.engine.progress import Progress
from evolve.engine.run_files import CONFIG_NAME, atomic_write
from evolve.engine.run_state import RunState
from evolve.engine.scratchpad import Scratchpad
from evolve.problem.spec import ProblemSpec
from evolve.select.bandit import Arm
from evolve.select.sampler import IslandSampler

WINDOW_STATE = "window"


class Controller:
    """The loop: plans proposals as the window allows, starts each through the pipeline,
    ingests finished ones in sequence order, and stops at the first budget or request."""

    def __init__(self, config: EvolveConfig, problem: ProblemSpec, state: RunState,
                 archive: ArchiveThread, executor: Executor, run_dir: Path, *, run_id: int,
                 planner: Planner, pipeline: ProposalPipeline, initial: InitialProgram,
                 ingestor: Ingestor, sampler: IslandSampler,
                 bandit: ArmChooser, arms: dict[str, Arm], scratchpad: Scratchpad,
                 best_keeper: BestKeeper, in_flight: InFlightPublisher, progress: Progress,
                 log: Callable[[str], None]):
        self.config = config
        self.problem = problem
        self.state = state
        self.archive = archive
        self.executor = executor
        self.run_dir = run_dir
        self.run_id = run_id
        self.planner = planner
        self.pipeline = pipeline
        self.initial_program = initial
        self.ingestor = ingestor
        self.sampler = sampler
        self.bandit = bandit
        self.arms = arms
        self.scratchpad = scratchpad
        self.best_keeper = best_keeper
        self._in_flight = in_flight
        self.progress = progress
        self.log = log
        self.seed = config.seed
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._next_seq = 0
        self._main: asyncio.Future[None] | None = None  # the loop, while run() runs
        self._in_feedback = False                       # the loop awaits ingest work

    # ================================================================ public
    def request_stop(self, reason: str = "interrupted") -> None:
        """First call: finish in-flight work, then stop. Second call: stop at once."""
        self.state.stop_level += 1
        self.state.stop_reason = self.state.stop_reason or reason
        if self.state.stop_level >= 2:
            for task in self._tasks.values():
                task.cancel()
            if self._main is not None and self._in_feedback:
                self._main.cancel()  # e.g. waiting on a scratchpad summary
        self.state.wake.set()

    @property
    def stopping(self) -> int:
        """0 = running, 1 = finishing in-flight work, 2 = stopping at once."""
        return self.state.stop_level

    @property
    def elapsed_s(self) -> float:
        return self.state.elapsed_s

    @property
    def programs_done(self) -> int:
        return self.state.done

    @property
    def window(self) -> int:
        return self.state.window

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
        await self.initial_program.ensure()

    async def start_resume(self) -> None:
        """Rebuild everything from the archive; evaluate the initial program only if missing."""
        state = self.state
        # In place: the ingestor and the history operators hold this same dict.
        state.committed.clear()
        state.committed.update(committed_from_archive(await self.archive.programs(self.run_id)))
        state.by_id = {item.program_id: item for item in state.committed.values()}
        state.done = sum(1 for seq, item in state.committed.items()
                         if seq >= 0 and item.evaluated)
        await self.ingestor.restore()
        state.cost_usd = await self.archive.cost_so_far(self.run_id)
        state.unknown_cost_calls = (await self.archive.cost_summary(self.run_id)).unknown_calls
        state.window = int(await self.archive.get_state(self.run_id, WINDOW_STATE, self.window))
        saved = (await self.archive.get_state(self.run_id, ENGINE_STATE)) or {}
        state.elapsed_before = float(saved.get("elapsed_s", 0.0))
        await self.archive.set_run_status(self.run_id, "running")
        await self.archive.add_event(self.run_id, "resume",
                                     f"resumed with {self.programs_done} programs committed",
                                     {"programs": self.programs_done, "cost_usd": state.cost_usd,
                                      "isolation": self.executor.isolation})
        self.log(f"resuming run {self.run_id}: {self.programs_done} programs committed, "
                 f"${state.cost_usd:.4f} spent")
        await self.initial_program.ensure()

    async def run(self) -> str:
        """Run until a budget is reached or a stop is requested; returns the final status."""
        self.state.started = time.monotonic()
        self.progress.publish("start")
        self._in_flight.start()   # for the dashboard, which reads only the archive
        deadline_task = asyncio.create_task(self._deadline()) \
            if self.config.budget.max_minutes else None
        status = "failed"
        self._main = asyncio.ensure_future(self._loop())
        try:
            status = await self._await_loop()
        except BaseException as exc:
            if isinstance(exc, RunCannotWork):
                self.state.stop_reason = str(exc)
            elif self.state.stop_reason is None or not isinstance(exc, asyncio.CancelledError):
                self.state.stop_reason = f"failed: {type(exc).__name__}: {exc}"
            raise
        finally:
            if deadline_task:
                deadline_task.cancel()
            await self._finish(status)
        if self.state.fatal is not None:
            raise self.state.fatal
        return status

    async def _await_loop(self) -> str:
        assert self._main is not None
        try:
            await self._main
        except asyncio.CancelledError:
            if not (self._main.cancelled() and self.state.stop_level >= 2):
                raise  # the caller cancelled us: not a stop request
        return "interrupted" if self.state.stop_reason == "interrupted" else "completed"

    async def _finish(self, status: str) -> None:
        """Cancel what is left, store the state, record the stop: also after a failure."""
        for task in self._tasks.values():
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks.values(), return_exceptions=True)
        await self.ingestor.writer.aclose()
        await self._in_flight.aclose()
        await self._save_state()
        reason = self.state.stop_reason or ("failed" if status == "failed" else "budget")
        await self.archive.add_event(self.run_id, "stop", f"run {status}: {reason}",
                                     {"reason": reason, "programs": self.programs_done})
        await self.archive.finish_run(self.run_id, status)
        self.progress.publish("stop", status=status)

    async def abandon(self, reason: str) -> None:
        """Record that the run stopped before its loop started (e.g. a broken evaluator)."""
        self.state.stop_reason = reason
        await self._save_state()
        await self.archive.add_event(self.run_id, "stop", f"run failed: {reason}",
                                     {"reason": reason, "programs": self.programs_done})
        await self.archive.finish_run(self.run_id, "failed")

    # ================================================================ the loop
    async def _loop(self) -> None:
        state = self.state
        while True:
            # Cleared first: planning may await the archive, and a task finishing meanwhile
            # sets the event again, so the wait below cannot miss it.
            state.wake.clear()
            self._check_budgets()
            if state.fatal is not None:
                raise state.fatal
            if state.stop_level > 0:
                self._drop_unstarted()
            if state.stop_level == 0:
                await self._plan_window()
            if not self._tasks and (state.stop_level > 0
                                    or self.ingestor.ingested >= self._next_seq):
                break
            if self.ingestor.ingested in state.finished:
                # One program at a time, planning in between: proposal s is planned exactly
                # when programs < s - W are in, however many completed at once.
                await self._ingest_next()
                continue
            await state.wake.wait()

    async def _plan_window(self) -> None:
        """Planning follows the window alone, so when a proposal is planned does not depend on
        the budget (a resume with a larger one replays the same plans). The program budget
        (evaluated programs) decides when a proposal may *start* (`may_start`); one never
        started when the budget is reached is dropped."""
        max_programs = self.config.budget.max_programs
        while (self._next_seq < self.ingestor.ingested + self.window
               and (max_programs is None or self.ingestor.evaluated < max_programs)):
            await self._launch(self._next_seq)
            self._next_seq += 1

    def _check_budgets(self) -> None:
        budget, state = self.config.budget, self.state
        if state.stop_level:
            return
        if not self.bandit.active:
            benched = sorted({str(a.operator) for a in self.arms.values()})
            state.fail(RunCannotWork(
                f"every operator is benched after failing {self.config.llm.bench_after} times "
                f"in a row ({', '.join(benched)}); check the models with `evolve models check`, "
                f"or set operators.use_offline = \"always\" to go on with the offline operators "
                f"when the models fail"))
            return
        if budget.max_usd is not None and state.cost_usd >= budget.max_usd:
            state.stop_after_in_flight(f"dollar budget ${budget.max_usd:g} reached")
        elif budget.target_score is not None and self.best is not None and \
                self.best.score is not None and self.best.score >= budget.target_score:
            self.request_stop(f"target score {budget.target_score:g} reached")
            self.request_stop(f"target score {budget.target_score:g} reached")
        elif budget.max_programs is not None and self.ingestor.evaluated >= budget.max_programs:
            state.stop_reason = f"program budget {budget.max_programs} reached"
            self._drop_unstarted()
        elif self.ingestor.stalled >= budget.stall_after:
            state.stop_after_in_flight(
                f"nothing new can be proposed: the last {self.ingestor.stalled} proposals gave "
                f"no new program to evaluate (duplicates or rejected replies); "
                f"budget.stall_after = {budget.stall_after}")

    async def _deadline(self) -> None:
        minutes = self.config.budget.max_minutes or 0.0
        await asyncio.sleep(max(0.0, minutes * 60 - self.state.elapsed_before))
        self.state.stop_after_in_flight(f"time budget {minutes:g} min reached")
        self.request_stop(self.state.stop_reason or "")  # level 2: in-flight work is cancelled

    async def _ingest_next(self) -> None:
        self._in_feedback = True
        try:
            item = self.state.finished.pop(self.ingestor.ingested)
            await self.ingestor.ingest(item)
            self.state.ingested.set()  # wakes proposals waiting for the budget to start
            self.state.ingested.clear()
            if self.ingestor.ingested % 10 == 0:
                await self._save_state()
        finally:
            self._in_feedback = False

    async def _launch(self, seq: int) -> None:
        plan = await self.planner.plan(seq)
        if seq in self.state.committed:   # replay of a committed proposal
            self._tasks[seq] = asyncio.create_task(self.pipeline.replay(self.state.committed[seq]))
        else:
            self._tasks[seq] = asyncio.create_task(self.pipeline.run(plan))
        self._tasks[seq].add_done_callback(lambda _t, s=seq: self._task_done(s))

    def _task_done(self, seq: int) -> None:
        task = self._tasks.pop(seq, None)
        if task is not None and not task.cancelled() and task.exception() is not None:
            self.state.fail(task.exception())  # type: ignore[arg-type]
        self.state.wake.set()

    def _drop_unstarted(self) -> None:
        """The program budget is reached: proposals planned but never started are dropped
        (nothing of them was sent or stored; a resume plans them again, identically)."""
        if not self.state.unstarted:
            return
        first = min(self.state.unstarted)
        for seq in list(self.state.unstarted):
            task = self._tasks.get(seq)
            if task is not None:
                task.cancel()
        self._next_seq = min(self._next_seq, first)

    # ================================================================ bookkeeping
    async def _save_state(self) -> None:
        """A snapshot for inspection and the dashboard, in one write (every 10 programs and at
        the end). Resume does not need it beyond the elapsed time: it replays the archive."""
        await self.archive.set_state(self.run_id, ENGINE_STATE, {
            "elapsed_s": self.elapsed_s, "committed": self.programs_done,
            "ingested": self.ingestor.ingested, "next_seq": self._next_seq,
            "sampler": self.sampler.state_dict(), "bandit": self.bandit.state_dict(),
            "scratchpad_version": self.scratchpad.version})

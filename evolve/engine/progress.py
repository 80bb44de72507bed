"""Progress reports for the live view (`ProgressSnapshot`): at the start, after each commit and
at the stop. Executors that know where evaluations run (`Placement`: Ray) add it per node."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from evolve.config import EvolveConfig
from evolve.engine.best import BestKeeper
from evolve.engine.collaborators import Executor, Placement
from evolve.engine.committed import Committed
from evolve.engine.evaluation import Evaluation
from evolve.engine.run_files import ProgressSnapshot
from evolve.engine.run_state import RunState
from evolve.problem.spec import ProblemSpec
from evolve.select.sampler import IslandSampler


class Progress:
    def __init__(self, config: EvolveConfig, problem: ProblemSpec, state: RunState, *,
                 run_id: int, run_dir: Path, executor: Executor, sampler: IslandSampler,
                 best_keeper: BestKeeper, evaluation: Evaluation,
                 report: Callable[[ProgressSnapshot], None] | None):
        self.config = config
        self.problem = problem
        self.state = state
        self.run_id = run_id
        self.run_dir = run_dir
        self.executor = executor
        self.sampler = sampler
        self.best_keeper = best_keeper
        self.evaluation = evaluation
        self.report = report

    def publish(self, event: str, *, last: Committed | None = None,
                status: str = "running") -> None:
        if self.report is None:
            return
        best, initial, state = self.best_keeper.best, self.state.initial, self.state
        snapshot = ProgressSnapshot(
            event=event, run_id=self.run_id, run_dir=str(self.run_dir), problem=self.problem.name,
            programs_done=state.done, programs_budget=self.config.budget.max_programs,
            best_score=best.score if best else None,
            best_program_id=best.program_id if best else None,
            initial_score=initial.score if initial else None,
            cost_usd=state.cost_usd, unknown_cost_calls=state.unknown_cost_calls,
            elapsed_s=state.elapsed_s, proposing=state.proposing,
            evaluating=self.evaluation.waiting_or_running,
            islands=self.sampler.island_stats(),
            last=None if last is None else {
                "seq": last.seq, "program_id": last.program_id, "island": last.island,
                "status": last.status, "score": last.score, "valid": last.valid,
                "operator": last.operator, "mutation": last.mutation,
                "error_kind": last.error_kind, "error_text": last.error_text},
            status=status, stop_reason=state.stop_reason,
            isolation=self.executor.isolation)
        if isinstance(self.executor, Placement):
            snapshot.placement = self.executor.placement()
        self.report(snapshot)

    def program(self, item: Committed) -> None:
        self.publish("program", last=item)

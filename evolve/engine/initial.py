"""The initial program: evaluated and stored once as proposal 'initial' (found again on resume),
then given to the sampler, the novelty filter and the best keeper. A broken evaluator or an
initial program that cannot run stops the run before any proposal, with what to fix."""

from __future__ import annotations

from collections.abc import Callable

from evolve.config import EvolveConfig
from evolve.engine.archive_thread import ArchiveThread
from evolve.engine.best import BestKeeper
from evolve.engine.commit import evaluator_fault, judge_result
from evolve.engine.committed import INITIAL_KEY, INITIAL_SEQ, Committed
from evolve.engine.errors import RunCannotWork
from evolve.engine.evaluation import Evaluation
from evolve.engine.run_state import RunState
from evolve.patch.novelty import NoveltyFilter, code_hash
from evolve.problem.spec import ProblemSpec
from evolve.select.sampler import IslandSampler, Member


class InitialProgram:
    def __init__(self, config: EvolveConfig, problem: ProblemSpec, state: RunState,
                 archive: ArchiveThread, run_id: int, *, evaluation: Evaluation,
                 sampler: IslandSampler, novelty: NoveltyFilter, best_keeper: BestKeeper,
                 log: Callable[[str], None]):
        self.config = config
        self.problem = problem
        self.state = state
        self.archive = archive
        self.run_id = run_id
        self.evaluation = evaluation
        self.sampler = sampler
        self.novelty = novelty
        self.best_keeper = best_keeper
        self.log = log

    async def ensure(self) -> None:
        found = self.state.committed.get(INITIAL_SEQ)
        if found is None:
            found = await self._evaluate_and_store()
        self._refuse_invalid(found)
        self.state.initial = found
        self.novelty.remember("-1", found.code)
        self.sampler.add_initial(Member(seq=INITIAL_SEQ, program_id=found.program_id, island=0,
                                        score=found.score, valid=found.valid, generation=0,
                                        metrics=found.metrics))
        for item in self.state.committed.values():
            await self.best_keeper.offer(item, write=False)
        if self.best_keeper.best is not None:
            self.best_keeper.write(self.best_keeper.best)

    async def _evaluate_and_store(self) -> Committed:
        code = self.problem.initial_code()
        self.log(f"evaluating the initial program of {self.problem.name}")
        result = await self.evaluation.evaluate(code)
        error_kind, error_text, valid = judge_result(self.problem, result)
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
        self.state.committed[INITIAL_SEQ] = found
        self.state.by_id[program_id] = found
        self.log(f"initial program: score {found.score}"
                 + ("" if found.valid else f" (invalid: {found.error_text})"))
        fault = evaluator_fault(result)
        if fault is not None:
            raise RunCannotWork(
                f"the evaluator of {self.problem.name} failed on the initial program, so no "
                f"candidate could be scored: {fault}. Fix {self.problem.evaluator_path}, check "
                f"it with `evolve eval {self.config.problem} {self.problem.initial_path}`, and "
                f"start the run again")
        return found

    def _refuse_invalid(self, initial: Committed) -> None:
        """Every proposal starts from the initial program or a descendant: when it is invalid
        (it does not run, or its output is rejected) and no program of the run is valid, each
        proposal would only fail again. A resume of such a run refuses the same way. An initial
        program the cascade stopped at a threshold did run: the run goes on."""
        if initial.valid or initial.error_kind == "below-threshold" or any(
                item.valid for item in self.state.committed.values()):
            return
        path = self.problem.initial_path
        raise RunCannotWork(
            f"the initial program of {self.problem.name} is invalid, so there is nothing to "
            f"evolve from: {initial.error_kind}: {initial.error_text}. Fix {path}, check it with "
            f"`evolve eval {self.config.problem} {path}`, and start a new run")

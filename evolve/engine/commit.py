"""Committing a proposal's outcome to the archive (the run is its single writer), and judging an
evaluation result: valid, stopped below a threshold, failed, or a broken evaluator."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from evaluators.result import EvalResult, FailureKind
from evolve.engine.archive_thread import ArchiveThread
from evolve.engine.best import BestKeeper
from evolve.engine.committed import Committed
from evolve.engine.proposal import Plan, ProposalOutcome
from evolve.engine.run_state import RunState
from evolve.patch.mutation import unified_diff
from evolve.patch.novelty import Verdict, code_hash
from evolve.problem.spec import ProblemSpec


class Committer:
    def __init__(self, archive: ArchiveThread, run_id: int, problem: ProblemSpec,
                 state: RunState, best_keeper: BestKeeper,
                 on_commit: Callable[[Committed], None]):
        self.archive = archive
        self.run_id = run_id
        self.problem = problem
        self.state = state
        self.best_keeper = best_keeper
        self.on_commit = on_commit

    async def commit(self, plan: Plan, outcome: ProposalOutcome, verdict: Verdict | None,
                     result: EvalResult | None, call_ids: list[int],
                     timings: dict[str, Any]) -> Committed:
        parent_item = self.state.committed[plan.parent.seq]
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
            assert result is not None
            status = "evaluated"
            error_kind, error_text, valid = judge_result(self.problem, result)
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
        last = result.stages[-1] if result is not None and result.stages else None
        item = Committed(
            seq=plan.seq, program_id=program_id, island=plan.island, code=fields["code"],
            status=status, score=fields["score"], valid=fields["valid"], generation=generation,
            metrics=dict(fields["metrics"]), feedback=fields["feedback"], error_kind=error_kind,
            error_text=error_text, operator=plan.operator, mutation=plan.kind,
            parent_seq=plan.parent.seq, second_seq=plan.second.seq if plan.second else None,
            summary=str(timings.get("summary", "")), arm_label=timings.get("arm"),
            attempts=int(timings.get("attempts") or 1),
            stdout=last.stdout if last is not None else "",
            stderr=last.stderr if last is not None else "")
        self.state.committed[plan.seq] = item
        if status == "evaluated":
            self.state.done += 1
        self.state.by_id[program_id] = item
        await self.best_keeper.offer(item)
        self.on_commit(item)
        return item


def judge_result(problem: ProblemSpec, result: EvalResult) -> tuple[str | None, str | None, bool]:
    """(error kind, error text, valid). Valid = every stage ran and passed: a program the
    cascade stopped early (below a threshold) keeps its partial score but is not valid,
    so it never competes with fully evaluated programs."""
    if result.failure is not None:
        return str(result.failure.value), result.reason, False
    if not result.valid:
        return "invalid-output", result.reason or "the evaluator marked it invalid", False
    final = problem.stages[-1].name
    if result.stage_reached != final:
        last = result.last
        assert last is not None
        return ("below-threshold", f"stage '{last.stage}' scored {last.score:g}, below its "
                f"threshold; the cascade stopped before stage '{final}'", False)
    return None, None, True


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

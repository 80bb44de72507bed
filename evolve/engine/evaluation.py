"""Evaluating candidates through the executor, at most M at once, counting what is in flight."""

from __future__ import annotations

import asyncio
import time

from evaluators.result import EvalResult, FailureKind, StageResult
from evolve.engine.collaborators import Executor
from evolve.problem.spec import ProblemSpec


class Evaluation:
    def __init__(self, executor: Executor, problem: ProblemSpec, slots: int):
        self.executor = executor
        self.problem = problem
        self._slots = asyncio.Semaphore(slots)
        self.waiting_or_running = 0     # evaluations waiting for a slot or running
        self.running = 0                # evaluations in the sandbox now

    async def in_slot(self, code: str) -> tuple[EvalResult, float]:
        """The result once a slot is free, and the seconds the evaluation itself took."""
        self.waiting_or_running += 1
        try:
            async with self._slots:
                t0 = time.perf_counter()
                self.running += 1
                try:
                    result = await self.evaluate(code)
                finally:
                    self.running -= 1
                return result, time.perf_counter() - t0
        finally:
            self.waiting_or_running -= 1

    async def evaluate(self, code: str) -> EvalResult:
        """The executor's result; an exception from the executor itself (a bug, not the
        candidate's failure) becomes an evaluator-error result instead of ending the run."""
        try:
            return await self.executor.evaluate(self.problem, code)
        except Exception as exc:
            stage = self.problem.stages[0].name
            return EvalResult(stages=[StageResult(
                stage=stage, failure=FailureKind.EVALUATOR_ERROR,
                reason=f"the executor failed: {type(exc).__name__}: {exc}")])

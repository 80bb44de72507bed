"""The result of evaluating one program: per-stage outcomes and a fixed set of failure kinds.

These models are the contract between the sandbox (which produces them), the controller (which
stores them in the archive) and the prompts (which feed `reason` and `feedback` back to the LLM).
"""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class FailureKind(StrEnum):
    TIMEOUT = "timeout"
    MEMORY = "memory"
    CRASH = "crash"
    INVALID_OUTPUT = "invalid-output"
    SYNTAX = "syntax"
    IMPORT = "import"
    SANDBOX_DENIED = "sandbox-denied"
    EVALUATOR_ERROR = "evaluator-error"


class StageResult(BaseModel):
    """What one stage of the cascade produced for one program."""

    model_config = ConfigDict(extra="forbid")

    stage: str
    score: float | None = None          # None when the stage failed before producing one
    valid: bool = False
    metrics: dict[str, Any] = Field(default_factory=dict)
    feedback: str = ""                  # the evaluator's own text for the LLM
    failure: FailureKind | None = None
    reason: str = ""                    # short, actionable: what went wrong and where
    wall_s: float = 0.0                 # wall time of the whole sandboxed run
    cpu_s: float = 0.0                  # CPU time of the child process tree
    stdout: str = ""                    # truncated excerpts for the archive and the LLM
    stderr: str = ""
    isolation: str = ""                 # the sandbox level in force: bwrap, unshare, rlimits

    @property
    def ok(self) -> bool:
        return (self.failure is None and self.valid and self.score is not None
                and math.isfinite(self.score))


class EvalResult(BaseModel):
    """The whole cascade for one program; `stages` holds every stage that ran, in order."""

    model_config = ConfigDict(extra="forbid")

    stages: list[StageResult] = Field(default_factory=list)
    # Set by the cascade when it ran to its end and the problem declares its final score and
    # metrics (problem.toml `[score]`); None: the last stage's own, as without a declaration.
    final_score: float | None = None
    final_metrics: dict[str, Any] | None = None
    final_feedback: str | None = None

    @property
    def last(self) -> StageResult | None:
        return self.stages[-1] if self.stages else None

    @property
    def stage_reached(self) -> str | None:
        return self.last.stage if self.last else None

    @property
    def score(self) -> float | None:
        """The program's score: the declared final score when the cascade ran to its end, else
        the score of the deepest stage reached (None if it failed)."""
        last = self.last
        if last is None or not last.ok:
            return None
        return self.final_score if self.final_score is not None else last.score

    @property
    def program_score(self) -> float | None:
        """The score to record, even for a program that failed or stopped at a gate (then the
        deepest stage's own score, which may be None)."""
        if self.final_score is not None:
            return self.final_score
        return self.last.score if self.last else None

    @property
    def valid(self) -> bool:
        return self.last is not None and self.last.ok

    @property
    def failure(self) -> FailureKind | None:
        return self.last.failure if self.last else None

    @property
    def reason(self) -> str:
        return self.last.reason if self.last else "not evaluated"

    @property
    def metrics(self) -> dict[str, Any]:
        if self.final_metrics is not None:
            return dict(self.final_metrics)
        return dict(self.last.metrics) if self.last else {}

    @property
    def feedback(self) -> str:
        if self.final_feedback is not None:
            return self.final_feedback
        return self.last.feedback if self.last else ""

    @property
    def wall_s(self) -> float:
        return sum(s.wall_s for s in self.stages)

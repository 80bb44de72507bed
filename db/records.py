"""Plain, detached records the archive hands back.

Frozen dataclasses rather than ORM rows: they never lazy-load, never need a Session, and are safe
to pass between threads and into the dashboard.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from evaluators.result import FailureKind, StageResult


@dataclass(frozen=True)
class Run:
    id: int
    name: str | None
    problem: str
    config_toml: str
    seed: int
    isolation: str
    status: str
    started_at: datetime
    finished_at: datetime | None


@dataclass(frozen=True)
class Program:
    id: int
    run_id: int
    code: str
    code_hash: str
    diff: str | None
    parent_id: int | None
    inspiration_ids: list[int]
    island: int
    generation: int
    operator: str | None
    mutation_kind: str | None
    status: str
    stage_reached: str | None
    score: float | None
    valid: bool
    metrics: dict[str, Any]
    feedback: str
    error_kind: str | None
    error_text: str | None
    timings: dict[str, Any]
    proposal_key: str | None
    created_at: datetime


@dataclass(frozen=True)
class Evaluation:
    id: int
    program_id: int
    position: int
    stage: str
    score: float | None
    valid: bool
    metrics: dict[str, Any]
    feedback: str
    failure: str | None
    reason: str
    wall_s: float
    cpu_s: float
    stdout: str
    stderr: str
    isolation: str

    def as_stage_result(self) -> StageResult:
        return StageResult(
            stage=self.stage, score=self.score, valid=self.valid, metrics=dict(self.metrics),
            feedback=self.feedback,
            failure=FailureKind(self.failure) if self.failure else None,
            reason=self.reason, wall_s=self.wall_s, cpu_s=self.cpu_s, stdout=self.stdout,
            stderr=self.stderr, isolation=self.isolation)


@dataclass(frozen=True)
class LLMCall:
    id: int
    run_id: int
    program_id: int | None
    model: str
    purpose: str
    prompt: str
    response: str | None
    tokens_in: int | None
    tokens_out: int | None
    cost_usd: float | None
    latency_s: float | None
    error: str | None
    finish_reason: str | None
    created_at: datetime


@dataclass(frozen=True)
class Event:
    id: int
    run_id: int
    kind: str
    message: str
    data: dict[str, Any] | None
    created_at: datetime


@dataclass(frozen=True)
class CostSummary:
    """LLM spend of a run: the known total and how many calls had no known price."""

    known_usd: float
    calls: int
    unknown_calls: int
    tokens_in: int
    tokens_out: int
    by_model: dict[str, float] = field(default_factory=dict)

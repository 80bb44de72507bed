"""Summaries of a run computed from its programs: score history, arms, islands, failures.

Shared by the live view, the dashboard overview, `evolve status` and `evolve plot`, so each
number means the same thing everywhere.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from evolve.dashboard.data import ProgramView
from evolve.select.bandit import reward as bandit_reward


@dataclass(frozen=True)
class ArmRow:
    operator: str
    mutation: str
    pulls: int
    mean_reward: float
    spend_usd: float
    best_score: float | None
    unknown_cost_calls: int = 0

    @property
    def label(self) -> str:
        return f"{self.operator}:{self.mutation}" if self.mutation else self.operator


@dataclass(frozen=True)
class IslandRow:
    island: int | None
    programs: int
    valid: int
    best_score: float | None
    best_id: int | None


@dataclass(frozen=True)
class FailureSummary:
    counts: dict[str, int]
    latest_reason: str
    latest_program: int | None

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def best_history(programs: Sequence[ProgramView]) -> list[float]:
    """Best valid score so far after each program (in creation order), from the first valid one."""
    history: list[float] = []
    best: float | None = None
    for program in programs:
        if program.valid and program.score is not None and (best is None or program.score > best):
            best = program.score
        if best is not None:
            history.append(best)
    return history


def best_vs_dollars(programs: Sequence[ProgramView]) -> list[tuple[float, float]]:
    """(dollars spent so far, best score so far) after each program."""
    points: list[tuple[float, float]] = []
    spent = 0.0
    best: float | None = None
    for program in programs:
        spent += program.cost_usd
        if program.valid and program.score is not None and (best is None or program.score > best):
            best = program.score
        if best is not None:
            points.append((spent, best))
    return points


def resample_by_x(points: Sequence[tuple[float, float]], buckets: int) -> list[float]:
    """A step function y(x) sampled at `buckets` evenly spaced x values (for a sparkline)."""
    if not points or buckets <= 0:
        return []
    low, high = points[0][0], points[-1][0]
    if high <= low:
        return [points[-1][1]] * buckets
    out: list[float] = []
    index = 0
    for step in range(buckets):
        x = low + (high - low) * step / (buckets - 1 if buckets > 1 else 1)
        while index + 1 < len(points) and points[index + 1][0] <= x:
            index += 1
        out.append(points[index][1])
    return out


def initial_score(programs: Sequence[ProgramView]) -> float | None:
    """The score of the starting program (the first program without a parent)."""
    for program in programs:
        if program.parent_id is None:
            return program.score if program.valid else None
    return None


def arm_reward(program: ProgramView, parent: ProgramView | None, initial: float | None) -> float:
    """The reward the bandit learns from (evolve.select.bandit.reward) for one stored program."""
    parent_score = parent.score if parent is not None and parent.valid else None
    return bandit_reward(program.score, parent_score, initial, ok=program.valid)


def arm_rows(programs: Sequence[ProgramView]) -> list[ArmRow]:
    """One row per (operator, mutation kind) that produced a child, most pulled first."""
    by_id = {p.id: p for p in programs}
    initial = initial_score(programs)
    groups: dict[tuple[str, str], list[ProgramView]] = defaultdict(list)
    for program in programs:
        if program.parent_id is None:
            continue                        # a starting program was not proposed by an arm
        groups[(program.operator, program.mutation_kind)].append(program)
    rows = []
    for (operator, mutation), members in groups.items():
        rewards = [arm_reward(p, by_id.get(p.parent_id) if p.parent_id is not None else None, initial)
                   for p in members]
        scores = [p.score for p in members if p.valid and p.score is not None]
        rows.append(ArmRow(operator=operator, mutation=mutation, pulls=len(members),
                           mean_reward=sum(rewards) / len(rewards),
                           spend_usd=sum(p.cost_usd for p in members),
                           unknown_cost_calls=sum(p.unknown_cost_calls for p in members),
                           best_score=max(scores) if scores else None))
    return sorted(rows, key=lambda r: (-r.pulls, r.label))


def island_rows(programs: Sequence[ProgramView]) -> list[IslandRow]:
    groups: dict[int | None, list[ProgramView]] = defaultdict(list)
    for program in programs:
        groups[program.island].append(program)
    rows = []
    for island in sorted(groups, key=lambda i: (i is None, i or 0)):
        members = groups[island]
        scored = [p for p in members if p.valid and p.score is not None]
        best = max(scored, key=lambda p: (p.score, -p.id)) if scored else None
        rows.append(IslandRow(island=island, programs=len(members), valid=len(scored),
                              best_score=best.score if best else None,
                              best_id=best.id if best else None))
    return rows


def failure_summary(programs: Sequence[ProgramView]) -> FailureSummary:
    """Failures counted by kind (invalid results without a kind count as 'invalid')."""
    counts: Counter[str] = Counter()
    latest: ProgramView | None = None
    for program in programs:
        if program.failed:
            counts[program.error_kind or "invalid"] += 1
            latest = program
    reason = ""
    if latest is not None:
        reason = (latest.error_text or latest.feedback or latest.error_kind).strip()
        reason = reason.splitlines()[-1] if reason else ""
    return FailureSummary(counts=dict(counts.most_common()), latest_reason=reason,
                          latest_program=latest.id if latest else None)


def operator_series(programs: Sequence[ProgramView]) -> dict[str, list[tuple[int, float, float]]]:
    """Per operator: (program number in the run, dollars spent so far, operator's best so far),
    a point each time one of its programs is valid, for plotting one line per operator."""
    series: dict[str, list[tuple[int, float, float]]] = defaultdict(list)
    best: dict[str, float] = {}
    spent = 0.0
    for number, program in enumerate(programs, start=1):
        spent += program.cost_usd
        name = program.operator or "initial"
        if program.valid and program.score is not None:
            best[name] = max(best.get(name, program.score), program.score)
            series[name].append((number, spent, best[name]))
    return dict(series)


SPARK_BLOCKS = "▁▂▃▄▅▆▇█"


def sparkline(values: Sequence[float], width: int) -> str:
    """Values as a one-line bar chart of at most `width` cells (the last values when longer)."""
    if not values or width <= 0:
        return ""
    if len(values) > width:
        step = len(values) / width
        values = [values[min(len(values) - 1, int((i + 1) * step) - 1)] for i in range(width)]
    low, high = min(values), max(values)
    span = high - low
    top = len(SPARK_BLOCKS) - 1
    return "".join(SPARK_BLOCKS[0 if span == 0 else round((v - low) / span * top)]
                   for v in values)

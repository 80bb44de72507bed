"""A run's progress as one value (`RunSnapshot`): built from the controller's progress or from
the archive alone, for `evolve run`'s live view, `evolve status` and the dashboard."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from evolve.config import BudgetConfig, ConfigError, load_config
from evolve.dashboard.data import RunData, load_run
from evolve.dashboard.stats import ArmRow, arm_rows, best_history, failure_summary, island_rows

if TYPE_CHECKING:   # db pulls in SQLAlchemy; `evolve --help` must not pay for it
    from db import Archive


@dataclass(frozen=True)
class BudgetProgress:
    """One budget: how much is used of the limit (programs, dollars or minutes)."""

    name: str
    used: float
    limit: float
    unit: str = ""

    @property
    def fraction(self) -> float:
        return 1.0 if self.limit <= 0 else min(1.0, self.used / self.limit)

    def text(self) -> str:
        if self.unit == "$":
            return f"${self.used:.2f} / ${self.limit:.2f}"
        if self.unit == "min":
            return f"{self.used:.1f} / {self.limit:g} min"
        return f"{self.used:g} / {self.limit:g}"


@dataclass
class RunSnapshot:
    """The state of a run at one moment, as the live view and `evolve status` show it."""

    run_id: int
    problem: str = ""
    status: str = "running"
    elapsed_s: float = 0.0
    programs: int = 0                               # stored: duplicates and rejected too
    evaluated: int = 0                              # evaluated candidates, as budgets count
    budgets: list[BudgetProgress] = field(default_factory=list)
    eta_s: float | None = None                      # until the first budget runs out
    target_score: float | None = None
    best_score: float | None = None
    best_program_id: int | None = None
    best_history: list[float] = field(default_factory=list)
    island_best: dict[int, float | None] = field(default_factory=dict)
    arms: list[ArmRow] = field(default_factory=list)
    queued: int | None = None                       # None: only the running process knows
    running: int | None = None
    placement: dict[str, int] = field(default_factory=dict)  # running per node (Ray)
    failures: dict[str, int] = field(default_factory=dict)
    latest_failure: str = ""
    spent_usd: float = 0.0
    unknown_cost_calls: int = 0                     # LLM calls whose price was unknown

    @property
    def failure_total(self) -> int:
        return sum(self.failures.values())


def _budget_config(config_toml: str) -> BudgetConfig:
    try:
        return load_config(base=tomllib.loads(config_toml) if config_toml else {}).budget
    except (ConfigError, tomllib.TOMLDecodeError):
        return load_config().budget


def estimate_eta(budgets: list[BudgetProgress], elapsed_s: float) -> float | None:
    """Seconds until the first budget runs out, at the average rate so far."""
    etas = []
    for budget in budgets:
        if budget.used >= budget.limit:
            return 0.0
        if budget.unit == "min":
            etas.append((budget.limit - budget.used) * 60.0)
        elif budget.used > 0 and elapsed_s > 0:
            etas.append((budget.limit - budget.used) * elapsed_s / budget.used)
    return min(etas) if etas else None


def _now_like(moment: datetime | None) -> datetime:
    """Now, aware or naive like `moment` so the two can be subtracted (archive times are UTC)."""
    now = datetime.now(UTC)
    return now if moment is None or moment.tzinfo is not None else now.replace(tzinfo=None)


def _elapsed(data: RunData, now: datetime | None) -> float:
    """Active seconds: the controller's own count when stored (it leaves out the time between a
    crash and `evolve resume`), else from the run's start to its end or now."""
    engine = data.state.get("engine")
    stored = engine.get("elapsed_s") if isinstance(engine, dict) else None
    if isinstance(stored, (int, float)) and data.run.status != "running":
        return float(stored)
    run = data.run
    start = run.started or (data.programs[0].created if data.programs else None)
    if start is None:
        return float(stored) if isinstance(stored, (int, float)) else 0.0
    end = run.finished or now or _now_like(start)
    return max(0.0, (end - start).total_seconds())


def snapshot_from_run(data: RunData, *, queued: int | None = None, running: int | None = None,
                      elapsed_s: float | None = None, now: datetime | None = None) -> RunSnapshot:
    """Build a snapshot from a run read out of the archive."""
    run = data.run
    programs = data.programs
    elapsed = elapsed_s if elapsed_s is not None else _elapsed(data, now)
    budget = _budget_config(run.config_toml)
    spent = data.spent_usd
    # The program budget counts evaluated candidates, as the engine does: the starting program
    # (no parent) is not one, nor are duplicates and rejected replies (they make room for more).
    evaluated = data.evaluated
    budgets = []
    if budget.max_programs:
        budgets.append(BudgetProgress("programs", evaluated, budget.max_programs))
    if budget.max_usd is not None:
        budgets.append(BudgetProgress("dollars", spent, budget.max_usd, "$"))
    if budget.max_minutes:
        budgets.append(BudgetProgress("time", elapsed / 60.0, budget.max_minutes, "min"))
    best = data.best()
    failures = failure_summary(programs)
    progress = data.state.get("progress") if isinstance(data.state.get("progress"), dict) else {}
    finished = run.status != "running"
    # Another process (`evolve status`) sees what is in flight through the run state the
    # controller publishes per node; the live view passes its own counts instead.
    in_flight = data.in_flight()
    if running is None and "running" not in progress and in_flight:
        running = sum(in_flight.values())
    return RunSnapshot(
        run_id=run.id, problem=run.problem, status=run.status, elapsed_s=elapsed,
        programs=len(programs), evaluated=evaluated, budgets=budgets,
        eta_s=None if finished else estimate_eta(budgets, elapsed),
        target_score=budget.target_score,
        best_score=best.score if best else None, best_program_id=best.id if best else None,
        best_history=best_history(programs),
        island_best={row.island: row.best_score for row in island_rows(programs)
                     if row.island is not None},
        arms=arm_rows(programs),
        queued=queued if queued is not None else progress.get("queued"),
        running=running if running is not None else progress.get("running"),
        failures=failures.counts, latest_failure=failures.latest_reason,
        spent_usd=spent, unknown_cost_calls=data.unknown_cost_calls,
        placement=in_flight,
    )


def snapshot_from_archive(archive: Archive, run_id: int, **kwargs: Any) -> RunSnapshot:
    """Read a run's snapshot from the archive alone (works while another process writes it)."""
    return snapshot_from_run(load_run(archive, run_id), **kwargs)

"""What `evolve run` shows while it works: a rich Live panel on a terminal, log lines otherwise.

The controller hands a `RunSnapshot` to `ProgressView.update` whenever something changed. A
snapshot can also be built from the archive alone (`snapshot_from_archive`), which is how
`evolve status` shows a run that another process is writing, or one that has finished.

    view = make_progress_view(live=None)        # None: Live on a terminal, lines when piped
    with view:
        ...  view.update(snapshot)  ...
"""

from __future__ import annotations

import math
import time
import tomllib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from evolve.dashboard.cost_text import cost_text
from evolve.dashboard.data import RunData, load_run
from evolve.dashboard.stats import ArmRow, arm_rows, best_history, failure_summary, island_rows
from evolve.dashboard.stats import sparkline as spark_text


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


def _budget_config(config_toml: str) -> Any:
    from evolve.config import ConfigError, load_config

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


def snapshot_from_archive(archive: Any, run_id: int, **kwargs: Any) -> RunSnapshot:
    """Read a run's snapshot from the archive alone (works while another process writes it)."""
    return snapshot_from_run(load_run(archive, run_id), **kwargs)


def archive_progress(view: ProgressView, archive: Any, *,
                     min_interval_s: float = 0.5) -> Callable[[Any], None]:
    """An `on_progress` callback for the controller: each progress report (any object with
    run_id, event, status, proposing, evaluating, elapsed_s) becomes a view update built from
    the archive, at most every `min_interval_s` seconds; the final report always shows.

    It runs inside the controller's event loop, so each update reads only the programs stored
    since the last one (a long run would otherwise stall on re-reading its whole archive)."""
    last_shown = -math.inf
    previous: RunData | None = None

    def report(progress: Any) -> None:
        nonlocal last_shown, previous
        now = time.monotonic()
        status = getattr(progress, "status", "running")
        final = getattr(progress, "event", "") == "stop" or status != "running"
        if not final and now - last_shown < min_interval_s:
            return
        last_shown = now
        previous = load_run(archive, progress.run_id, previous=previous)
        snap = snapshot_from_run(previous, queued=getattr(progress, "proposing", None),
                                 running=getattr(progress, "evaluating", None),
                                 elapsed_s=getattr(progress, "elapsed_s", None))
        snap.status = status
        snap.placement = dict(getattr(progress, "placement", None) or {})
        if final:
            snap.eta_s = None
        view.update(snap)

    return report


@contextmanager
def live_reporter(live: bool | None = None, *, console: Console | None = None,
                  archive_url: str | None = None,
                  min_interval_s: float = 0.5) -> Iterator[Callable[[Any], None]]:
    """The `on_progress` callback for `run_session`, showing the live view while it is open:

        with live_reporter(live=False if no_live else None) as on_progress:
            await run_session(config, run_dir, on_progress=on_progress)

    The archive (`archive_url`, default RUN_DIR/archive.sqlite from the first report) is opened
    read-side on the first report, once the controller has created it."""
    view = make_progress_view(live, console)
    opened: dict[str, Any] = {}

    def report(progress: Any) -> None:
        if "callback" not in opened:
            from db import Archive

            opened["archive"] = Archive.open(
                archive_url or Path(progress.run_dir) / "archive.sqlite", create=False)
            opened["callback"] = archive_progress(view, opened["archive"],
                                                  min_interval_s=min_interval_s)
        opened["callback"](progress)

    with view:
        try:
            yield report
        finally:
            if "archive" in opened:
                opened["archive"].close()


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def _score(value: float | None) -> str:
    return "-" if value is None else f"{value:.6g}"


def reward_text(value: float) -> str:
    """A reward (score gained over the parent) in plain decimals, never 1.2e-05: four
    significant digits, thousands grouped."""
    if value == 0 or not math.isfinite(value):
        return "0" if value == 0 else str(value)
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    decimals = max(0, 3 - math.floor(math.log10(abs(value))))
    return f"{value:.{decimals}f}".rstrip("0").rstrip(".")


def _counted(snap: RunSnapshot) -> str:
    """The program count the summary line uses (evaluated candidates), and what else is stored."""
    others = snap.programs - snap.evaluated
    return f"{snap.evaluated} evaluated" + (f" ({others} more stored: the initial program, "
                                            f"duplicates, rejected)" if others > 0 else "")


def render_snapshot(snap: RunSnapshot, width: int = 80) -> RenderableType:
    """The live panel: budgets, best score, islands, arms, evaluations, failures, spend."""
    head = Text.assemble(
        (f"run {snap.run_id}", "bold"), f" · {snap.problem} · ",
        (snap.status, "red" if snap.status in ("failed", "interrupted") else "green"),
        f" · {format_duration(snap.elapsed_s)} · {snap.evaluated} evaluated · "
        f"{cost_text(snap.spent_usd, snap.unknown_cost_calls)} spent")

    budgets = Table.grid(padding=(0, 1))
    for budget in snap.budgets:
        budgets.add_row(f"{budget.name:>8}", ProgressBar(total=1.0, completed=budget.fraction,
                                                         width=max(10, width // 3)),
                        budget.text())
    eta = "done" if snap.eta_s == 0 else format_duration(snap.eta_s)
    budgets.add_row("ETA", "", eta if snap.status == "running" else snap.status)

    best = Text.assemble(("best ", "bold"), (_score(snap.best_score), "bold cyan"))
    if snap.best_program_id is not None:
        best.append(f" (#{snap.best_program_id})")
    if snap.target_score is not None:
        best.append(f" target {snap.target_score:g}")
    best.append("  ")
    best.append(spark_text(snap.best_history, max(10, width - len(best.plain) - 6)), "cyan")
    islands = Text("islands  " + "  ".join(f"{i}: {_score(s)}"
                                           for i, s in sorted(snap.island_best.items())))

    arms = Table(box=None, pad_edge=False, expand=False, header_style="bold")
    for column, justify in (("operator", "left"), ("mutation", "left"), ("pulls", "right"),
                            ("mean reward", "right"), ("spend", "right")):
        arms.add_column(column, justify=justify)  # type: ignore[arg-type]
    for arm in snap.arms:
        arms.add_row(Text(arm.operator), Text(arm.mutation), str(arm.pulls),
                     reward_text(arm.mean_reward), cost_text(arm.spend_usd, arm.unknown_cost_calls))

    if snap.running is None and snap.queued is None:
        work = Text("evaluations in flight: shown by the live view of `evolve run`"
                    if snap.status == "running" else "", style="dim")
    else:
        work = Text(f"evaluations: {snap.running or 0} running, {snap.queued or 0} queued")
        if snap.placement:
            work.append(" · on " + ", ".join(f"{node} {count}"
                                             for node, count in snap.placement.items()))
    if snap.failures:
        kinds = ", ".join(f"{kind} {count}" for kind, count in snap.failures.items())
        fails = Text.assemble(("failures ", "bold"), (f"{snap.failure_total}", "red"),
                              f" ({kinds})")
    else:
        fails = Text("failures 0")
    # The latest reason stays on one line (cut with an ellipsis) so the panel keeps its height.
    latest = Text(f"latest: {snap.latest_failure}", style="dim", no_wrap=True,
                  overflow="ellipsis") if snap.latest_failure else Text("")
    parts = [budgets, best, islands, arms if snap.arms else Text("no arms pulled yet"), work,
             fails, latest]
    body = Group(*(part for part in parts if not (isinstance(part, Text) and not part.plain)))
    return Panel(body, title=head, title_align="left")


def snapshot_lines(snap: RunSnapshot) -> list[str]:
    """The panel's content as plain lines, one item per line, for a pipe: nothing boxed, cut
    or wrapped."""
    lines = [f"run {snap.run_id} · {snap.problem} · {snap.status} · "
             f"{format_duration(snap.elapsed_s)} · {_counted(snap)} · "
             f"{cost_text(snap.spent_usd, snap.unknown_cost_calls)} spent"]
    lines += [f"budget {budget.name}: {budget.text()}" for budget in snap.budgets]
    if snap.status == "running":
        lines.append(f"eta: {format_duration(snap.eta_s)}")
    lines.append(f"best: {_score(snap.best_score)}"
                 + (f" (program {snap.best_program_id})" if snap.best_program_id is not None
                    else "")
                 + (f", target {snap.target_score:g}" if snap.target_score is not None else ""))
    lines += [f"island {i}: best {_score(s)}" for i, s in sorted(snap.island_best.items())]
    lines += [f"arm {arm.operator} {arm.mutation}: {arm.pulls} pulls, mean reward "
              f"{reward_text(arm.mean_reward)}, spend "
              f"{cost_text(arm.spend_usd, arm.unknown_cost_calls)}" for arm in snap.arms]
    if not snap.arms:
        lines.append("arms: no arms pulled yet")
    if snap.running is not None or snap.queued is not None:
        lines.append(f"evaluations: {snap.running or 0} running, {snap.queued or 0} queued"
                     + (" · on " + ", ".join(f"{node} {count}" for node, count
                                            in snap.placement.items()) if snap.placement
                        else ""))
    lines.append(f"failures: {snap.failure_total}" + (
        " (" + ", ".join(f"{k} {v}" for k, v in snap.failures.items()) + ")"
        if snap.failures else ""))
    if snap.latest_failure:
        lines.append(f"latest failure: {snap.latest_failure}")
    return lines


def snapshot_line(snap: RunSnapshot) -> str:
    """One plain log line for a snapshot (used when the output is not a terminal)."""
    parts = [f"evaluated {snap.evaluated}"]
    for budget in snap.budgets:
        if budget.name != "programs":
            parts.append(f"{budget.name} {budget.text()}")
        else:
            parts[0] = f"evaluated {budget.text()}"
    parts.append(f"best {_score(snap.best_score)}"
                 + (f" (#{snap.best_program_id})" if snap.best_program_id is not None else ""))
    parts.append(f"spent {cost_text(snap.spent_usd, snap.unknown_cost_calls)}")
    if snap.running is not None or snap.queued is not None:
        parts.append(f"running {snap.running or 0} queued {snap.queued or 0}")
    if snap.failures:
        parts.append(f"failures {snap.failure_total} ("
                     + ", ".join(f"{k} {v}" for k, v in snap.failures.items()) + ")")
    if snap.status == "running":
        parts.append(f"eta {format_duration(snap.eta_s)}")
    else:
        parts.append(snap.status)
    return " | ".join(parts)


class ProgressView(Protocol):
    def update(self, snapshot: RunSnapshot) -> None: ...
    def __enter__(self) -> ProgressView: ...
    def __exit__(self, *exc: object) -> None: ...


class LiveProgress:
    """The rich Live panel, redrawn on each update."""

    def __init__(self, console: Console | None = None, refresh_per_second: float = 4.0) -> None:
        self.console = console or Console()
        self._live = Live(Text("starting..."), console=self.console,
                          refresh_per_second=refresh_per_second, transient=False)

    def __enter__(self) -> LiveProgress:
        self._live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._live.stop()

    def update(self, snapshot: RunSnapshot) -> None:
        self._live.update(render_snapshot(snapshot, self.console.width), refresh=True)


class LogProgress:
    """Plain lines: one when the program count, best score or status changes, at most every
    `min_interval_s` seconds (a final status always prints)."""

    def __init__(self, console: Console | None = None, min_interval_s: float = 5.0) -> None:
        self.console = console or Console(highlight=False)
        self.min_interval_s = min_interval_s
        self._last_key: tuple[Any, ...] | None = None
        self._last_time = 0.0

    def __enter__(self) -> LogProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, snapshot: RunSnapshot) -> None:
        key = (snapshot.programs, snapshot.best_score, snapshot.status, snapshot.failure_total)
        now = time.monotonic()
        final = snapshot.status != "running"
        if key == self._last_key or (not final and now - self._last_time < self.min_interval_s):
            return
        self._last_key, self._last_time = key, now
        stamp = datetime.now().strftime("%H:%M:%S")
        self.console.print(f"[{stamp}] {snapshot_line(snapshot)}", markup=False, highlight=False)


def make_progress_view(live: bool | None = None, console: Console | None = None,
                       min_interval_s: float = 5.0) -> ProgressView:
    """`live=None`: the Live panel when the console is a terminal, log lines otherwise;
    `live=False` (`--no-live`): always log lines."""
    console = console or Console()
    if live is None:
        live = console.is_terminal
    return LiveProgress(console) if live else LogProgress(console, min_interval_s)

"""The run overview: score over programs and over dollars, arms, islands, failures, scratchpad."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Label, Sparkline, Static

from evolve.dashboard.cost_text import cost_cell
from evolve.dashboard.data import RunData
from evolve.dashboard.stats import (
    arm_rows,
    best_history,
    best_vs_dollars,
    failure_summary,
    island_rows,
    resample_by_x,
)

DOLLAR_BUCKETS = 60


def _score(value: float | None) -> str:
    return "-" if value is None else f"{value:.6g}"


def in_flight_text(data: RunData) -> Text:
    """Evaluations running now, per node (Ray: `host/node-id`; local: this host)."""
    nodes = data.in_flight()
    if not nodes:
        return Text("evaluations in flight: none" if data.run.status == "running" else "",
                    style="dim")
    return Text.assemble(("evaluations in flight: ", "bold"), f"{sum(nodes.values())} · on ",
                         ", ".join(f"{node} {count}" for node, count in sorted(nodes.items())))


class OverviewPane(VerticalScroll):
    """Everything about the run as a whole; scrolls at 80x24."""

    def compose(self) -> ComposeResult:
        yield Label("", id="ov-headline")
        yield Label("", id="ov-in-flight")
        yield Label("best score over programs", classes="ov-title", id="ov-programs-title")
        yield Sparkline([], id="ov-spark-programs", classes="ov-spark")
        yield Label("best score over dollars", classes="ov-title", id="ov-dollars-title")
        yield Sparkline([], id="ov-spark-dollars", classes="ov-spark")
        yield Label("arms (operator × mutation)", classes="ov-title")
        arms: DataTable = DataTable(id="ov-arms", cursor_type="none", show_cursor=False)
        arms.add_columns("operator", "mutation", "pulls", "mean reward", "spend $", "best")
        yield arms
        yield Label("islands", classes="ov-title")
        islands: DataTable = DataTable(id="ov-islands", cursor_type="none", show_cursor=False)
        islands.add_columns("island", "programs", "valid", "best", "best id")
        yield islands
        yield Label("failures", classes="ov-title")
        yield Static("", id="ov-failures")
        yield Label("scratchpad", classes="ov-title")
        yield Static("", id="ov-scratchpad")

    def show(self, data: RunData) -> None:
        programs = data.programs
        best = data.best()
        history = best_history(programs)
        headline = Text.assemble(
            (f"{data.run.problem} · {data.run.label} · ", ""),
            (data.run.status, "green" if data.run.status in ("running", "finished") else "red"),
            f" · {data.evaluated} evaluated · best ",
            (_score(best.score if best else None), "bold cyan"),
            f" (#{best.id})" if best else "",
            f" · {data.spent_text()} spent")
        self.query_one("#ov-headline", Label).update(headline)
        self.query_one("#ov-in-flight", Label).update(in_flight_text(data))

        self.query_one("#ov-spark-programs", Sparkline).data = history
        self.query_one("#ov-programs-title", Label).update(
            f"best score over programs: {_score(history[0]) if history else '-'} → "
            f"{_score(history[-1]) if history else '-'} in {data.evaluated} evaluated programs")
        dollars = best_vs_dollars(programs)
        spent = dollars[-1][0] if dollars else 0.0
        dollar_title = self.query_one("#ov-dollars-title", Label)
        spark = self.query_one("#ov-spark-dollars", Sparkline)
        if spent > 0:
            spark.data = resample_by_x(dollars, DOLLAR_BUCKETS)
            dollar_title.update(f"best score over dollars: $0 → ${spent:.4f}")
        else:
            spark.data = []
            dollar_title.update("best score over dollars: no LLM spend recorded")
        spark.display = spent > 0         # an empty sparkline would draw a misleading flat line

        arms = self.query_one("#ov-arms", DataTable)
        arms.clear()
        for arm in arm_rows(programs):
            arms.add_row(Text(arm.operator), Text(arm.mutation or "-"), str(arm.pulls),
                         f"{arm.mean_reward:.4g}",
                         cost_cell(arm.spend_usd, arm.unknown_cost_calls),
                         _score(arm.best_score))
        islands = self.query_one("#ov-islands", DataTable)
        islands.clear()
        for row in island_rows(programs):
            islands.add_row("-" if row.island is None else str(row.island), str(row.programs),
                            str(row.valid), _score(row.best_score),
                            "-" if row.best_id is None else f"#{row.best_id}")

        failures = failure_summary(programs)
        if failures.total:
            text = Text(", ".join(f"{kind}: {count}" for kind, count in failures.counts.items()))
            text.append(f"\nlatest (#{failures.latest_program}): {failures.latest_reason}", "dim")
        else:
            text = Text("none")
        self.query_one("#ov-failures", Static).update(text)
        self.query_one("#ov-scratchpad", Static).update(
            Text(data.scratchpad() or "none yet", style="" if data.scratchpad() else "dim"))

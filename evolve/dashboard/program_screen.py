"""One program in detail: summary (metrics, feedback, cost, timings, stages), code, diff against
its parent, lineage as a tree you can walk, and the LLM prompt and reply that produced it."""

from __future__ import annotations

import difflib
from typing import Any

from rich.console import Group, RenderableType
from rich.rule import Rule
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Label, Static, TabbedContent, TabPane, Tree

from evolve.dashboard.cost_text import cost_text
from evolve.dashboard.data import ProgramView, RunData, attr
from evolve.dashboard.host import DashboardHost

TABS = ("summary", "code", "diff", "lineage", "prompt")


def _label(p: ProgramView) -> Text:
    text = Text(f"#{p.id} ", style="bold")
    text.append(p.score_text(), style="cyan" if p.valid else "red")
    text.append(f" {p.arm or 'initial'} g{p.generation}")
    if p.error_kind:
        text.append(f" {p.error_kind}", style="red")
    return text


def summary_renderable(p: ProgramView, data: RunData, stages: list[Any]) -> RenderableType:
    calls = data.calls_by_program.get(p.id, [])
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column()
    rows = [
        ("score", p.score_text()), ("valid", str(p.valid)),
        ("status", p.status or "-"), ("stage reached", p.stage_reached or "-"),
        ("parent", f"#{p.parent_id}" if p.parent_id is not None else "- (starting program)"),
        ("inspirations", ", ".join(f"#{i}" for i in p.inspiration_ids) or "-"),
        ("island / gen", f"{p.island} / {p.generation}"),
        ("operator", p.operator or "initial"), ("mutation", p.mutation_kind or "-"),
        ("cost", f"{p.cost_text()} in {len(calls)} LLM call(s), "
                 f"{sum(c.tokens_in for c in calls)}+{sum(c.tokens_out for c in calls)} tokens"),
        ("timings", p.timing_text()[0]),
    ]
    if p.timing_text()[1]:
        rows.append(("details", p.timing_text()[1]))
    if p.error_kind or p.error_text:
        rows.append(("error", f"{p.error_kind}: {p.error_text}".strip(": ")))
    for key, value in rows:
        facts.add_row(key, Text(str(value)))
    # Feedback first after the facts: it is what explains the score, and at 80x24 it stays
    # visible without scrolling.
    parts: list[RenderableType] = [facts, Rule("evaluator feedback"), Text(p.feedback or "(none)")]
    if p.metrics:
        metrics = Table("metric", "value", box=None, header_style="bold", pad_edge=False)
        for key, value in p.metrics.items():
            metrics.add_row(Text(str(key)), Text(str(value)))
        parts += [Rule("metrics"), metrics]
    if stages:
        table = Table("stage", "score", "valid", "failure", "wall s", "reason", box=None,
                      header_style="bold", pad_edge=False)
        for s in stages:
            score = attr(s, "score")
            table.add_row(Text(str(attr(s, "stage", ""))),
                          "-" if score is None else f"{score:.6g}",
                          str(attr(s, "valid", False)), Text(str(attr(s, "failure", "") or "-")),
                          f"{float(attr(s, 'wall_s', 0.0)):.2f}",
                          Text(str(attr(s, "reason", ""))))
        parts += [Rule("stages"), table]
    return Group(*parts)


def diff_text(p: ProgramView, data: RunData) -> str:
    """The stored diff, else one computed against the parent's code."""
    if p.diff.strip():
        return p.diff
    parent = data.by_id.get(p.parent_id) if p.parent_id is not None else None
    if parent is None:
        return ""
    return "".join(difflib.unified_diff(parent.code.splitlines(keepends=True),
                                        p.code.splitlines(keepends=True),
                                        fromfile=f"program {parent.id}", tofile=f"program {p.id}"))


def prompt_renderable(p: ProgramView, data: RunData) -> RenderableType:
    calls = data.calls_by_program.get(p.id, [])
    if not calls:
        return Text("No LLM call produced this program "
                    f"({'starting program' if p.parent_id is None else p.operator or 'offline'}"
                    " operator).", style="dim")
    parts: list[RenderableType] = []
    for call in calls:
        head = (f"{call.model} · {call.purpose or 'proposal'} · {call.tokens_in}+"
                f"{call.tokens_out} tokens · {cost_text(call.cost_usd, int(call.cost_usd is None))} · "
                f"{call.latency_s:.2f}s")
        parts.append(Rule(Text(head), style="bold"))
        if call.error:
            parts.append(Text(f"error: {call.error}", style="red"))
        for role, content in call.messages():
            parts += [Text(f"[{role}]", style="bold magenta"), Text(content)]
        parts += [Text("[reply]", style="bold green"), Text(call.response or "(empty)")]
    return Group(*parts)


class ProgramScreen(Screen):
    """The detail view of one program; `escape` goes back to the table."""

    BINDINGS = [
        Binding("escape,b", "app.pop_screen", "Back"),
        Binding("m", "tab('summary')", "Metrics"),
        Binding("c", "tab('code')", "Code"),
        Binding("d", "tab('diff')", "Diff"),
        Binding("l", "tab('lineage')", "Lineage"),
        Binding("p", "tab('prompt')", "Prompt"),
        Binding("u", "parent", "Parent"),
        Binding("q", "app.quit", "Quit"),
    ]

    def __init__(self, program_id: int) -> None:
        super().__init__()
        self.program_id = program_id

    @property
    def dash(self) -> DashboardHost:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        data = self.dash.data
        p = data.by_id[self.program_id]
        yield Label(_label(p) + Text(f"  · island {p.island} · {p.cost_text()}"),
                    id="program-title")
        with TabbedContent(initial="summary", id="program-tabs"):
            with TabPane("Summary", id="summary"), VerticalScroll():
                yield Static(summary_renderable(p, data, self.dash.stages_of(p.id)),
                             id="summary-body")
            with TabPane("Code", id="code"), VerticalScroll():
                yield Static(Syntax(p.code, "python", line_numbers=True, word_wrap=True,
                                    theme="ansi_dark"), id="code-body")
            with TabPane("Diff", id="diff"), VerticalScroll():
                text = diff_text(p, data)
                yield Static(Syntax(text, "diff", word_wrap=True, theme="ansi_dark") if text
                             else Text("starting program: no parent to compare with", "dim"),
                             id="diff-body")
            with TabPane("Lineage", id="lineage"):
                yield self._lineage_tree(p, data)
            with TabPane("Prompt", id="prompt"), VerticalScroll():
                yield Static(prompt_renderable(p, data), id="prompt-body")
        yield Footer()

    def _lineage_tree(self, p: ProgramView, data: RunData) -> Tree[int]:
        chain = data.ancestors(p.id) + [p]
        tree: Tree[int] = Tree(_label(chain[0]), data=chain[0].id, id="lineage-tree")
        tree.root.expand()
        node = tree.root
        for program in chain[1:]:
            node = node.add(_label(program), data=program.id, expand=True)

        def add_children(parent_node: Any, program_id: int, depth: int) -> None:
            for child_id in data.children.get(program_id, []):
                child = data.by_id[child_id]
                has_children = bool(data.children.get(child_id))
                grand = parent_node.add(_label(child), data=child_id, expand=depth == 0,
                                        allow_expand=has_children)
                add_children(grand, child_id, depth + 1)

        add_children(node, p.id, 0)
        tree.select_node(node)
        self._focus_node = node
        return tree

    def on_mount(self) -> None:
        tree = self.query_one("#lineage-tree", Tree)
        tree.move_cursor(self._focus_node)

    def action_tab(self, tab: str) -> None:
        self.query_one("#program-tabs", TabbedContent).active = tab
        # Focus the tab's content so arrows, PageUp/PageDown and Home/End scroll it (or walk
        # the lineage tree) right away.
        pane = self.query_one(f"#{tab}", TabPane)
        target = pane.query_one(Tree) if tab == "lineage" else pane.query_one(VerticalScroll)
        target.focus()

    def action_parent(self) -> None:
        parent = self.dash.data.by_id[self.program_id].parent_id
        if parent is not None and parent in self.dash.data.by_id:
            self.app.switch_screen(ProgramScreen(parent))
        else:
            self.notify("the starting program has no parent")

    @on(Tree.NodeSelected, "#lineage-tree")
    def _walk(self, event: Tree.NodeSelected) -> None:
        target = event.node.data
        if target is not None and target != self.program_id:
            self.app.switch_screen(ProgramScreen(int(target)))

"""`evolve dashboard`: browse a run in the terminal. Read-only; reloads the archive on a timer,
so it can watch a run that another process is still writing (the archive is SQLite in WAL mode,
where readers never block the writer)."""

from __future__ import annotations

from typing import Any

from textual import on
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.widgets import Footer, Header, Input, TabbedContent, TabPane

from evolve.dashboard.data import RunData, attr, load_run
from evolve.dashboard.overview import OverviewPane
from evolve.dashboard.program_screen import ProgramScreen
from evolve.dashboard.programs import ProgramsPane


class DashboardApp(App[None]):
    CSS_PATH = "dashboard.tcss"
    TITLE = "evolve"

    BINDINGS = [
        Binding("q", "quit", "Quit"),
        Binding("slash", "search", "Search"),
        Binding("s", "sort", "Sort col"),
        Binding("r", "reverse", "Reverse"),
        Binding("enter", "open", "Open", show=False),
        Binding("g", "top", "Top row", show=False),
        Binding("o", "tab('overview')", "Overview"),
        Binding("t", "tab('programs')", "Table"),
        Binding("f5", "reload", "Reload", show=False),
    ]

    def __init__(self, archive: Any, run_id: int, *, refresh_s: float = 2.0,
                 source: str = "") -> None:
        super().__init__()
        self.archive = archive
        self.run_id = run_id
        self.refresh_s = refresh_s
        self.source = source
        self.data: RunData = load_run(archive, run_id)
        self._seen = self._fingerprint()
        self._stages: dict[int, list[Any]] = {}

    def compose(self) -> ComposeResult:
        yield Header()
        with TabbedContent(initial="programs-tab", id="main-tabs"):
            with TabPane("Programs", id="programs-tab"):
                yield ProgramsPane(id="programs-pane")
            with TabPane("Overview", id="overview-tab"):
                yield OverviewPane(id="overview-pane")
        yield Footer()

    def on_mount(self) -> None:
        self._show()
        self.query_one(ProgramsPane).table.focus()
        self.set_interval(self.refresh_s, self.action_reload_if_changed)

    # --- data ---------------------------------------------------------------------------
    def _fingerprint(self) -> tuple[Any, ...]:
        """Cheap aggregate queries that change whenever the run stores something."""
        run = self.archive.get_run(self.run_id)
        return (self.archive.count_programs(self.run_id), attr(run, "status"),
                self.archive.cost_summary(self.run_id).calls,
                self.archive.last_activity(self.run_id))

    def stages_of(self, program_id: int) -> list[Any]:
        """The per-stage evaluations of a program (read once, they never change)."""
        if program_id not in self._stages:
            self._stages[program_id] = list(self.archive.evaluations(program_id))
        return self._stages[program_id]

    def _show(self) -> None:
        data = self.data
        self.sub_title = (f"{data.run.problem} · {data.run.label} · {data.run.status} · "
                          f"{len(data.programs)} programs")
        self.query_one(ProgramsPane).set_programs(data.programs)
        self.query_one(OverviewPane).show(data)

    def action_reload_if_changed(self) -> None:
        seen = self._fingerprint()
        if seen != self._seen:
            self._seen = seen
            self.action_reload()

    def action_reload(self) -> None:
        self.data = load_run(self.archive, self.run_id, previous=self.data)
        self._show()

    # --- actions ------------------------------------------------------------------------
    def action_search(self) -> None:
        self.query_one(TabbedContent).active = "programs-tab"
        self.query_one("#search", Input).focus()

    def action_sort(self) -> None:
        self.query_one(ProgramsPane).next_sort_column()

    def action_reverse(self) -> None:
        self.query_one(ProgramsPane).reverse_sort()

    def action_top(self) -> None:
        table = self.query_one(ProgramsPane).table
        table.move_cursor(row=0)
        table.focus()

    def action_tab(self, tab: str) -> None:
        self.query_one("#main-tabs", TabbedContent).active = f"{tab}-tab"
        # Move focus into the shown pane; otherwise focus falls back to a widget in the hidden
        # pane and TabbedContent switches right back to it.
        if tab == "programs":
            self.query_one(ProgramsPane).table.focus()
        else:
            self.query_one(OverviewPane).focus()

    def action_open(self) -> None:
        program_id = self.query_one(ProgramsPane).selected_id()
        if program_id is not None:
            self.open_program(program_id)

    def open_program(self, program_id: int) -> None:
        if program_id in self.data.by_id:
            self.push_screen(ProgramScreen(program_id))

    @on(ProgramsPane.Chosen)
    def _chosen(self, event: ProgramsPane.Chosen) -> None:
        self.open_program(event.program_id)

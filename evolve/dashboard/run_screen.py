"""The dashboard's main screen: the programs table and the run overview, as two tabs.

Its keys (search, sort, tabs) belong to this screen, so they neither show in the footer of nor
act behind the program detail screen.
"""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Header, Input, TabbedContent, TabPane

from evolve.dashboard.data import RunData
from evolve.dashboard.host import DashboardHost
from evolve.dashboard.overview import OverviewPane
from evolve.dashboard.programs import ProgramsPane


class RunScreen(Screen):
    BINDINGS = [
        Binding("slash", "search", "Search"),
        Binding("s", "sort", "Sort col"),
        Binding("r", "reverse", "Reverse"),
        Binding("enter", "open", "Open", show=False),
        Binding("g", "top", "Top row", show=False),
        Binding("o", "tab('overview')", "Overview"),
        Binding("t", "tab('programs')", "Table"),
    ]

    @property
    def dash(self) -> DashboardHost:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Header()
        with TabbedContent(initial="programs-tab", id="main-tabs"):
            with TabPane("Programs", id="programs-tab"):
                yield ProgramsPane(id="programs-pane")
            with TabPane("Overview", id="overview-tab"):
                yield OverviewPane(id="overview-pane")
        yield Footer()

    def on_mount(self) -> None:
        self.show(self.dash.data)
        self.query_one(ProgramsPane).table.focus()

    def show(self, data: RunData) -> None:
        self.query_one(ProgramsPane).set_programs(data.programs)
        self.query_one(OverviewPane).show(data)

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
            self.dash.open_program(program_id)

    @on(ProgramsPane.Chosen)
    def _chosen(self, event: ProgramsPane.Chosen) -> None:
        self.dash.open_program(event.program_id)

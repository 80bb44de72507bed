"""The programs table with its search box: sortable by any column, filtered as you type."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import DataTable, Input, Label

from evolve.dashboard.data import ProgramView
from evolve.dashboard.query import SORT_KEYS, QueryError, filter_programs, sort_programs

# (column key, header, width)
COLUMNS: tuple[tuple[str, str, int], ...] = (
    ("id", "id", 5), ("score", "score", 10), ("island", "isl", 3), ("generation", "gen", 3),
    ("operator", "operator", 16), ("mutation", "mutation", 9), ("status", "status", 9),
    ("cost", "cost $", 8),
)
SORT_ORDER = [key for key, _, _ in COLUMNS]


def _cells(p: ProgramView) -> list[Text | str]:
    score_style = "cyan" if p.valid else "red"
    status = p.error_kind or p.status or ("ok" if p.valid else "invalid")
    return [str(p.id), Text(p.score_text(), style=score_style, justify="right"),
            "-" if p.island is None else str(p.island), str(p.generation),
            p.operator or "initial", p.mutation_kind or "-",
            Text(status, style="" if p.valid else "red"),
            Text(f"{p.cost_usd:.4f}", justify="right")]


class ProgramsPane(Vertical):
    """Search box, summary line and the table; posts `Chosen` when a row is opened."""

    class Chosen(Message):
        def __init__(self, program_id: int) -> None:
            super().__init__()
            self.program_id = program_id

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.programs: list[ProgramView] = []
        self.shown: list[ProgramView] = []
        self.sort_column = "score"
        self.sort_descending = True
        self.query_text = ""

    def compose(self) -> ComposeResult:
        yield Input(placeholder="filter: score>0.5 island:1 operator:gpt status:failed ...",
                    id="search")
        yield Label("", id="table-info")
        table: DataTable = DataTable(id="programs", cursor_type="row", zebra_stripes=True)
        for key, header, width in COLUMNS:
            table.add_column(header, key=key, width=width)
        yield table

    @property
    def table(self) -> DataTable:
        return self.query_one("#programs", DataTable)

    def set_programs(self, programs: Sequence[ProgramView]) -> None:
        self.programs = list(programs)
        self._render_rows()

    def sort_by(self, column: str, descending: bool | None = None) -> None:
        if column not in SORT_KEYS:
            raise ValueError(f"unknown column {column}")
        if descending is None:
            # The same column again flips the order; a new column starts high-to-low for
            # numbers people rank (score, cost), low-to-high otherwise.
            descending = (not self.sort_descending if column == self.sort_column
                          else column in ("score", "cost", "generation", "id"))
        self.sort_column, self.sort_descending = column, descending
        self._render_rows()

    def next_sort_column(self) -> None:
        index = (SORT_ORDER.index(self.sort_column) + 1) % len(SORT_ORDER)
        self.sort_by(SORT_ORDER[index])

    def reverse_sort(self) -> None:
        self.sort_by(self.sort_column, not self.sort_descending)

    def selected_id(self) -> int | None:
        table = self.table
        if not self.shown or table.cursor_row < 0 or table.cursor_row >= table.row_count:
            return None
        key = table.coordinate_to_cell_key((table.cursor_row, 0)).row_key
        return int(key.value) if key.value is not None else None

    def _render_rows(self) -> None:
        info = self.query_one("#table-info", Label)
        try:
            matching = filter_programs(self.programs, self.query_text)
            problem = ""
        except QueryError as exc:
            matching, problem = list(self.programs), str(exc)
        self.shown = sort_programs(matching, self.sort_column, self.sort_descending)
        table = self.table
        keep = self.selected_id()
        table.clear()
        for program in self.shown:
            table.add_row(*_cells(program), key=str(program.id))
        for key, header, _ in COLUMNS:
            arrow = (" ▼" if self.sort_descending else " ▲") if key == self.sort_column else ""
            table.columns[key].label = Text(header + arrow)  # type: ignore[index]
        if keep is not None and str(keep) in table.rows:
            table.move_cursor(row=table.get_row_index(str(keep)))
        order = "high→low" if self.sort_descending else "low→high"
        text = (f"{len(self.shown)} of {len(self.programs)} programs · sorted by "
                f"{self.sort_column} {order}")
        info.update(Text(problem, style="red") if problem else Text(text, style="dim"))

    @on(Input.Changed, "#search")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.query_text = event.value
        self._render_rows()

    @on(Input.Submitted, "#search")
    def _search_done(self) -> None:
        self.table.focus()

    @on(DataTable.HeaderSelected, "#programs")
    def _header_clicked(self, event: DataTable.HeaderSelected) -> None:
        self.sort_by(str(event.column_key.value))

    @on(DataTable.RowSelected, "#programs")
    def _row_opened(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value is not None:
            self.post_message(self.Chosen(int(event.row_key.value)))

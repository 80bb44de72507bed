"""The programs table with its search box: sortable by any column, filtered as you type."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import DataTable, Input, Label

from evolve.dashboard.cost_text import cost_cell
from evolve.dashboard.data import ProgramView
from evolve.dashboard.query import SEARCH_EXAMPLES, SORT_KEYS, QueryError, filter_programs, sort_key

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
    # Every string from the archive goes in as Text: a plain str cell is read as markup, and a
    # candidate's or an LLM's text must not style or hide anything on the user's screen.
    return [str(p.id), Text(p.score_text(), style=score_style, justify="right"),
            "-" if p.island is None else str(p.island), str(p.generation),
            Text(p.operator or "initial"), Text(p.mutation_kind or "-"),
            Text(status, style="" if p.valid else "red"),
            Text(cost_cell(p.cost_usd, p.unknown_cost_calls), justify="right")]


class ProgramsPane(Vertical):
    """Search box, summary line and the table; posts `Chosen` when a row is opened."""

    class Chosen(Message):
        def __init__(self, program_id: int) -> None:
            super().__init__()
            self.program_id = program_id

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.programs: list[ProgramView] = []
        self.by_id: dict[int, ProgramView] = {}
        self.shown_count = 0
        self.sort_column = "score"
        self.sort_descending = True
        self.query_text = ""
        self._filter_problem = ""

    def compose(self) -> ComposeResult:
        yield Input(placeholder=f"filter: {' '.join(SEARCH_EXAMPLES)} ...",
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
        """Show `programs`. When they extend what is shown (a refresh during a run), only the
        new rows are added: rebuilding thousands of rows every refresh would stall the UI."""
        old = self.programs
        programs = list(programs)
        extends = len(programs) >= len(old) and all(
            a.id == b.id for a, b in zip(old, programs[:len(old)], strict=True))
        self.programs = programs
        self.by_id = {p.id: p for p in programs}
        if extends and old:
            self._add_rows(programs[len(old):])
        else:
            self._rebuild()

    def sort_by(self, column: str, descending: bool | None = None) -> None:
        if column not in SORT_KEYS:
            raise ValueError(f"unknown column {column}")
        if descending is None:
            # The same column again flips the order; a new column starts high-to-low for
            # numbers people rank (score, cost), low-to-high otherwise.
            descending = (not self.sort_descending if column == self.sort_column
                          else column in ("score", "cost", "generation", "id"))
        self.sort_column, self.sort_descending = column, descending
        self._apply_sort()

    def next_sort_column(self) -> None:
        index = (SORT_ORDER.index(self.sort_column) + 1) % len(SORT_ORDER)
        self.sort_by(SORT_ORDER[index])

    def reverse_sort(self) -> None:
        self.sort_by(self.sort_column, not self.sort_descending)

    def selected_id(self) -> int | None:
        table = self.table
        if table.row_count == 0 or not 0 <= table.cursor_row < table.row_count:
            return None
        key = table.coordinate_to_cell_key((table.cursor_row, 0)).row_key
        return int(key.value) if key.value is not None else None

    def _matching(self, programs: Sequence[ProgramView]) -> list[ProgramView]:
        try:
            self._filter_problem = ""
            return filter_programs(programs, self.query_text)
        except QueryError as exc:
            self._filter_problem = str(exc)
            return list(programs)

    def _rebuild(self) -> None:
        keep = self.selected_id()
        self.table.clear()
        self.shown_count = 0
        self._add_rows(self.programs, keep=keep)

    def _add_rows(self, programs: Sequence[ProgramView], keep: int | None = None) -> None:
        table = self.table
        # The row under the cursor, read before adding: with no rows yet, the cursor must end on
        # the first row of the sorted table, not on whichever program was added first.
        if keep is None and table.row_count:
            keep = self.selected_id()
        for program in self._matching(programs):
            table.add_row(*_cells(program), key=str(program.id))
            self.shown_count += 1
        self._apply_sort(keep, to_top=keep is None)

    def _apply_sort(self, keep: int | None = None, *, to_top: bool = False) -> None:
        """Sort the rows; the cursor stays on `keep` (default: the current row), or goes to the
        first row when that program is not shown (or `to_top`)."""
        table = self.table
        if keep is None and not to_top:
            keep = self.selected_id()
        key = sort_key(self.sort_column, self.sort_descending)
        table.sort("id", key=lambda cell: key(self.by_id[int(cell)]),
                   reverse=self.sort_descending)
        for column, header, _ in COLUMNS:
            arrow = (" ▼" if self.sort_descending else " ▲") if column == self.sort_column else ""
            table.columns[column].label = Text(header + arrow)  # type: ignore[index]
        if keep is not None and str(keep) in table.rows:
            table.move_cursor(row=table.get_row_index(str(keep)))
        elif table.row_count:
            table.move_cursor(row=0)
        order = "high→low" if self.sort_descending else "low→high"
        text = (f"{self.shown_count} of {len(self.programs)} programs · sorted by "
                f"{self.sort_column} {order}")
        self.query_one("#table-info", Label).update(
            Text(self._filter_problem, style="red") if self._filter_problem
            else Text(text, style="dim"))

    @on(Input.Changed, "#search")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.query_text = event.value
        self._rebuild()

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

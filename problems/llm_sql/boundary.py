"""The one place where the judge meets the candidate's `solve`.

Plain data crosses in both directions: the table goes in as column names and rows of `str`
(the DataFrame is built here, for the candidate), the result comes back as nested lists of
whatever cell objects the returned DataFrame held, with the seconds of the call alone. When the
candidate runs in its own process, `run_solve` is what runs there; the judge keeps only
`plain_cells` and the checks that follow it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import pandas as pd

from evaluators.channel import PROGRAM_MODULE
from evaluators.harness_api import call_timed, get_function

# The leaderboard's Solution.solve keyword arguments. Only col_merge changes the task; the others
# are the values its greedy is run with, passed so that a program written for that interface
# runs unchanged (a program may ignore them). parallel=False: the sandbox gives one CPU share.
SOLVE_KWARGS: dict[str, Any] = {"early_stop": 100000, "row_stop": 4, "col_stop": 2,
                                "one_way_dep": [], "distinct_value_threshold": 0.7,
                                "parallel": False}
# Bound before any candidate is imported: a candidate that swaps the method later changes
# nothing here.
_TO_NUMPY = pd.DataFrame.to_numpy
_FRAME = pd.DataFrame


def run_solve(solve: Callable[..., Any], columns: list[str], rows: list[list[str]],
              col_merge: list[list[str]]) -> tuple[list[list[Any]], float]:
    """Call solve on a fresh DataFrame of the table; return (the result's cells as nested lists,
    seconds of the call). Raises TypeError when the result is not a pandas DataFrame, and
    whatever solve raised."""
    frame = _FRAME({name: [row[j] for row in rows] for j, name in enumerate(columns)})
    result, seconds = call_timed(solve, frame, col_merge=[list(g) for g in col_merge],
                                 **{k: (list(v) if isinstance(v, list) else v)
                                    for k, v in SOLVE_KWARGS.items()})
    if type(result) is not _FRAME:
        raise TypeError(f"solve must return a pandas DataFrame, got {type(result).__name__} "
                        f"(a DataFrame subclass is refused too: return pandas.DataFrame(...))")
    return _TO_NUMPY(result, dtype=object).tolist(), seconds


class Solver:
    """In the candidate's process: the program's `solve`, called on one table at a time."""

    def __init__(self) -> None:
        # The candidate worker's own module table: the program is loaded there.
        self._solve = get_function(sys.modules[PROGRAM_MODULE], "solve")

    def run(self, columns: list[str], rows: list[list[str]],
            col_merge: list[list[str]]) -> list[list[Any]]:
        """The cells of solve's DataFrame for this table, as nested lists (plain data)."""
        cells, _ = run_solve(self._solve, columns, rows, col_merge)
        return cells


def plain_cells(value: Any) -> list[list[str]]:
    """A fresh list of rows of exact `str` copied from the candidate's cells; TypeError naming
    the first cell that is not text."""
    if type(value) is not list:
        raise TypeError(f"expected a list of rows, got {type(value).__name__}")
    out: list[list[str]] = []
    for i, row in enumerate(list(value)):
        if type(row) is not list:
            raise TypeError(f"row {i} is {type(row).__name__}, expected a list of cells")
        cells = []
        for j, cell in enumerate(list(row)):
            if type(cell) is str:
                cells.append(cell)
            elif issubclass(type(cell), str):
                cells.append(str.__str__(cell))  # str's own slot: an exact copy, no overrides
            else:
                raise TypeError(
                    f"output row {i}, field {j} is {type(cell).__name__}, not text: every cell "
                    f"must stay the input's text (str), missing values as ''")
        out.append(cells)
    return out

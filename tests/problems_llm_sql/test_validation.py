"""The output check: exactly the input's cells, every row once, groups merged; clear messages."""

from __future__ import annotations

import pandas as pd
import pytest

from problems.llm_sql.boundary import plain_cells, run_solve
from problems.llm_sql.tables import check_groups, merge_rows, merged_names
from problems.llm_sql.validate import check_cells

COLUMNS = ["year", "month", "carrier", "dest"]
ROWS = [["2013", "1", "UA", "IAH"], ["2013", "1", "AA", "MIA"], ["2013", "11", "UA", "IAH"],
        ["2013", "1", "UA", "IAH"]]
GROUPS = [["year", "month"]]
MERGED = merge_rows(COLUMNS, ROWS, GROUPS)
NAMES = merged_names(COLUMNS, GROUPS)


def test_merge_joins_each_group_in_place_in_the_groups_order():
    assert NAMES == ["year+month", "carrier", "dest"]
    assert MERGED[2] == ["201311", "UA", "IAH"]
    # A group listed out of column order is joined in the listed order, at its first column.
    assert merge_rows(COLUMNS, ROWS, [["dest", "year"]])[0] == ["1", "UA", "IAH2013"]
    assert merged_names(COLUMNS, [["dest", "year"]]) == ["month", "carrier", "dest+year"]


@pytest.mark.parametrize(("groups", "message"), [
    ([["year"]], "at least two"), ([["year", "nope"]], "not a column"),
    ([["year", "month"], ["month", "dest"]], "two merge groups")])
def test_bad_groups_are_refused(groups, message):
    with pytest.raises(ValueError, match=message):
        check_groups(COLUMNS, groups)


def test_rows_and_fields_in_any_order_are_accepted():
    got = [list(reversed(MERGED[3])), MERGED[2], ["MIA", "20131", "AA"], MERGED[0]]
    check_cells(MERGED, got, NAMES)


def test_a_missing_row_is_refused():
    with pytest.raises(ValueError, match="has 3 rows, expected 4: return every input row"):
        check_cells(MERGED, MERGED[:3], NAMES)


def test_a_duplicated_row_is_refused_and_the_missing_one_named():
    got = [MERGED[0], MERGED[1], MERGED[1], MERGED[3]]
    with pytest.raises(ValueError, match=r"output row 2 .* duplicates an input row already "
                                         r"placed, and input row 2 .*'201311'.* is missing"):
        check_cells(MERGED, got, NAMES)


def test_an_altered_cell_is_refused_with_the_closest_input_row():
    got = [MERGED[0], MERGED[1], ["201311", "UA", "IAD"], MERGED[3]]
    with pytest.raises(ValueError, match=r"output row 2 .* is not any input row's fields: "
                                         r"closest is input row 2, which has \['IAH'\] where "
                                         r"the output has \['IAD'\]"):
        check_cells(MERGED, got, NAMES)


def test_cells_swapped_between_rows_are_refused():
    got = [["20131", "AA", "IAH"], ["20131", "UA", "MIA"], MERGED[2], MERGED[3]]
    with pytest.raises(ValueError, match="output row 0 .* is not any input row's fields"):
        check_cells(MERGED, got, NAMES)


def test_unmerged_or_dropped_fields_are_refused():
    unmerged = [["2013", "1", "UA", "IAH"]] + MERGED[1:]
    with pytest.raises(ValueError, match=r"output row 0 has 4 fields, expected 3: each row's "
                                         r"fields are \['year\+month', 'carrier', 'dest'\]"):
        check_cells(MERGED, unmerged, NAMES)
    # Merged in the wrong order: same text length, not the group's concatenation.
    wrong = [["12013", "UA", "IAH"]] + MERGED[1:]
    with pytest.raises(ValueError, match="not any input row's fields"):
        check_cells(MERGED, wrong, NAMES)
    dropped = [row[:2] for row in MERGED]
    with pytest.raises(ValueError, match="has 2 fields, expected 3"):
        check_cells(MERGED, dropped, NAMES)


class LyingStr(str):
    """Claims to equal anything and prints as something else."""

    def __eq__(self, other):
        return True

    __hash__ = str.__hash__

    def __str__(self):
        return "IAH"


def test_plain_cells_copies_str_subclasses_by_their_genuine_text():
    cells = plain_cells([[LyingStr("XXX"), "a"]])
    assert cells == [["XXX", "a"]] and type(cells[0][0]) is str
    with pytest.raises(ValueError, match="not any input row's fields"):
        check_cells([["IAH", "a"]], cells, ["x", "y"])


@pytest.mark.parametrize(("value", "message"), [
    ([[float("nan"), "a"]], "output row 0, field 0 is float, not text"),
    ([["a", 3]], "field 1 is int"),
    ([("a", "b")], "row 0 is tuple"),
    ("ab", "expected a list of rows")])
def test_plain_cells_refuses_what_is_not_text(value, message):
    with pytest.raises(TypeError, match=message):
        plain_cells(value)


class FrameSubclass(pd.DataFrame):
    pass


@pytest.mark.parametrize(("result", "name"), [
    (FrameSubclass({"a": ["x"]}), "FrameSubclass"), ([["x"]], "list"), (None, "NoneType")])
def test_run_solve_refuses_what_is_not_a_plain_dataframe(result, name):
    with pytest.raises(TypeError, match=f"must return a pandas DataFrame, got {name}"):
        run_solve(lambda df, **kwargs: result, ["a"], [["x"]], [])


def test_run_solve_passes_the_leaderboards_keywords_and_a_fresh_table():
    seen = {}

    def solve(df, early_stop, row_stop, col_stop, col_merge, one_way_dep,
              distinct_value_threshold, parallel):
        seen.update(columns=list(df.columns), cells=df.to_numpy().tolist(), merge=col_merge,
                    rest=(early_stop, row_stop, col_stop, one_way_dep,
                          distinct_value_threshold, parallel))
        col_merge.append(["mutated"])  # changes the candidate's copy only
        return df

    cells, seconds = run_solve(solve, COLUMNS, ROWS, GROUPS)
    assert seen["columns"] == COLUMNS and seen["cells"] == ROWS and cells == ROWS
    assert seen["merge"] == [["year", "month"], ["mutated"]] and GROUPS == [["year", "month"]]
    assert seen["rest"] == (100000, 4, 2, [], 0.7, False)
    assert 0 <= seconds < 5

"""Check that a program's table holds exactly the input's cells: every output row is one input
row's merged fields in some order, and every input row appears exactly once.

Works on plain data only (lists of exact `str`), so it is the same check whichever process the
candidate ran in. Rows are compared as multisets of fields (a sorted tuple per row), so the check
is O(cells log fields) however the rows were permuted.
"""

from __future__ import annotations

from collections import Counter

_SHOWN = 60  # characters of a row shown in a message


def _preview(fields: list[str] | tuple[str, ...]) -> str:
    text = repr(list(fields))
    return text if len(text) <= _SHOWN else text[:_SHOWN] + "...]"


def _closest_input(expected: list[list[str]], row: list[str]) -> tuple[int, list[str], list[str]]:
    """The input row sharing most fields with `row`, with the fields the output lacks and the
    ones it has in excess (for the error message; run once, on the first bad row)."""
    got = Counter(row)
    best, best_shared = 0, -1
    for k, candidate in enumerate(expected):
        shared = sum((Counter(candidate) & got).values())
        if shared > best_shared:
            best, best_shared = k, shared
    want = Counter(expected[best])
    return best, sorted((want - got).elements()), sorted((got - want).elements())


def check_cells(expected: list[list[str]], got: list[list[str]], field_names: list[str]) -> None:
    """Raise ValueError with a message saying what is wrong and what to return instead.

    `expected`: the input rows, merged; `got`: the program's rows (lists of str); `field_names`:
    the merged fields' names, for the messages."""
    n, m = len(expected), len(field_names)
    if len(got) != n:
        raise ValueError(f"the table has {len(got)} rows, expected {n}: return every input row "
                         f"exactly once")
    for i, row in enumerate(got):
        if len(row) != m:
            raise ValueError(
                f"output row {i} has {len(row)} fields, expected {m}: each row's fields are "
                f"{field_names} (every col_merge group joined into one field, its values "
                f"concatenated in the group's order), placed in any order")
    remaining = Counter(tuple(sorted(row)) for row in expected)
    first_bad: tuple[int, bool] | None = None  # (output row, whether it repeats an input row)
    for i, row in enumerate(got):
        key = tuple(sorted(row))
        if remaining.get(key, 0) > 0:
            remaining[key] -= 1
        elif first_bad is None:
            first_bad = (i, key in remaining)
    if first_bad is None:
        return
    i, repeats = first_bad
    row = got[i]
    if repeats:
        # Named once every output row is accounted for: an input row seen later is not missing.
        missing_at = next(j for j, r in enumerate(expected) if remaining[tuple(sorted(r))] > 0)
        raise ValueError(
            f"output row {i} {_preview(row)} duplicates an input row already placed, and "
            f"input row {missing_at} {_preview(expected[missing_at])} is missing: return "
            f"every input row exactly once")
    near, lacks, extra = _closest_input(expected, row)
    raise ValueError(
        f"output row {i} {_preview(row)} is not any input row's fields: closest is input "
        f"row {near}, which has {_preview(lacks)} where the output has {_preview(extra)}. "
        f"Keep each cell's text unchanged, keep a row's cells together, and merge each "
        f"col_merge group by concatenating its values in the group's order")

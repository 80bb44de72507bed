"""LLM-SQL: reorder each row's fields so that rows sent one after another share long prefixes.

`solve(df, col_merge=..., ...)` gets a table of text cells and returns a DataFrame with one row
per input row (any row order), each row holding its fields in any order, each col_merge group
joined into one field (values concatenated in the group's order). A row's hit is the longest
common prefix of its concatenated text with ANY earlier row's text, so the row order does not
change the total: choose, for every row, the field order that shares most with other rows.
"""

import pandas as pd


def merge_groups(df: pd.DataFrame, col_merge: list[list[str]]) -> pd.DataFrame:
    """Join each group's values (as text, in the group's order) into one column placed where the
    group's first column was; the other columns keep their order."""
    group_of = {column: group for group in col_merge for column in group}
    fields = {}
    for column in df.columns:
        group = group_of.get(column)
        if group is None:
            fields[column] = df[column].astype(str)
        elif group[0] == column:
            joined = df[group[0]].astype(str)
            for other in group[1:]:
                joined = joined + df[other].astype(str)
            fields["+".join(group)] = joined
    return pd.DataFrame(fields)


# EVOLVE-BLOCK-START
# One column order for all rows, fewest distinct values first: a value shared by many rows,
# placed early, is a prefix they all hit. The exponents weigh distinct counts against value
# lengths (a long shared value is worth more characters).
DISTINCT_EXPONENT = 1.0
LENGTH_EXPONENT = 0.0


def column_key(values: pd.Series) -> float:
    distinct = values.nunique()
    mean_length = values.str.len().mean() + 1.0
    return distinct ** DISTINCT_EXPONENT / mean_length ** LENGTH_EXPONENT


def solve(df, early_stop=100000, row_stop=4, col_stop=2, col_merge=None, one_way_dep=None,
          distinct_value_threshold=0.7, parallel=False):
    merged = merge_groups(df, col_merge or [])
    position = {name: i for i, name in enumerate(merged.columns)}
    columns = sorted(merged.columns, key=lambda c: (column_key(merged[c]), position[c]))
    return merged[columns].reset_index(drop=True)
# EVOLVE-BLOCK-END

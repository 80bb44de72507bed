"""Baseline: one fixed column order for every row (fewest distinct values first), rows sorted
lexicographically on it.

Sorting the rows changes nothing under the leaderboard's hit rule (a row hits on any earlier row,
so the hits add up to the table's length minus its trie's size, whatever the row order): the
gain over the original order comes from the column order alone.
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


def solve(df, early_stop=0, row_stop=None, col_stop=None, col_merge=None, one_way_dep=None,
          distinct_value_threshold=0.8, parallel=True):
    merged = merge_groups(df, col_merge or [])
    position = {name: i for i, name in enumerate(merged.columns)}
    columns = sorted(merged.columns, key=lambda c: (merged[c].nunique(), position[c]))
    return merged[columns].sort_values(by=columns, kind="stable").reset_index(drop=True)

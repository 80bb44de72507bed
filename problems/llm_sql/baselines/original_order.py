"""Baseline: the table as given, each col_merge group joined in place (hit term 0 by definition)."""

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
    return merge_groups(df, col_merge or [])

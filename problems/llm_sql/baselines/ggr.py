"""Baseline: Greedy Group Recursion (GGR), written from the description in Liu et al.,
"Optimizing LLM Queries in Relational Data Analytics Workloads" (MLSys '25).

GGR picks, in a table, the value whose placement first would share the most: the value v of
column c maximising len(v)^2 x (rows holding v in c - 1). The rows holding it put v first and
the procedure recurses on them without column c; it then goes on with the remaining rows (all
columns). When no value repeats, the remaining rows keep the node's column order. Columns whose
share of distinct values exceeds `distinct_value_threshold` are never chosen and go last (a
mostly unique value shares nothing). `one_way_dep` (functional dependencies) is not used: the
evaluator passes none. `early_stop` bounds the number of groups formed; past it the remaining
rows keep their node's column order.

Implementation: values are integer codes per column; each node keeps, per column, a count of
every value and the rows holding it, and picks values lazily from a max-heap (a value's count
only falls as rows leave the node, so a popped score that is still current is the maximum).
"""

import heapq

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


class _Grouper:
    def __init__(self, codes: list[list[int]], weights: list[list[int]], budget: int):
        self.codes = codes        # codes[c][row]: the value code of row in column c
        self.weights = weights    # weights[c][code]: len(value)^2
        self.budget = budget      # groups left to form (early_stop)

    def order(self, rows: list[int], columns: list[int]) -> list[tuple[int, list[int]]]:
        """(row, its columns in order) for every row of this node, grouped as GGR places them."""
        if len(rows) <= 1 or not columns:
            return [(r, list(columns)) for r in rows]
        holders: dict[tuple[int, int], list[int]] = {}
        for c in columns:
            column_codes = self.codes[c]
            for r in rows:
                holders.setdefault((c, column_codes[r]), []).append(r)
        count = {key: len(members) for key, members in holders.items()}
        heap = [(-self.weights[c][v] * (n - 1), c, v) for (c, v), n in count.items() if n > 1]
        heapq.heapify(heap)
        alive = dict.fromkeys(rows, True)
        placed: list[tuple[int, list[int]]] = []
        while heap and self.budget > 0:
            negative, c, v = heapq.heappop(heap)
            score = self.weights[c][v] * (count[(c, v)] - 1)
            if score <= 0:
                continue
            if score != -negative:  # rows left since it was pushed: requeue at its true score
                heapq.heappush(heap, (-score, c, v))
                continue
            self.budget -= 1
            group = [r for r in holders[(c, v)] if alive[r]]
            for r in group:
                alive[r] = False
                for other in columns:
                    count[(other, self.codes[other][r])] -= 1
            rest = [col for col in columns if col != c]
            placed.extend((r, [c] + tail) for r, tail in self.order(group, rest))
        placed.extend((r, list(columns)) for r in rows if alive[r])
        return placed


def solve(df, early_stop=100000, row_stop=None, col_stop=None, col_merge=None, one_way_dep=None,
          distinct_value_threshold=0.7, parallel=False):
    merged = merge_groups(df, col_merge or [])
    names = list(merged.columns)
    text = [merged[name].tolist() for name in names]
    n = len(merged)
    codes, weights = [], []
    for values in text:
        index: dict[str, int] = {}
        column_codes = [index.setdefault(value, len(index)) for value in values]
        codes.append(column_codes)
        weights.append([len(value) ** 2 for value in index])
    shares = [len(w) / n if n else 0.0 for w in weights]
    greedy = [c for c in range(len(names)) if shares[c] <= distinct_value_threshold]
    last = [c for c in range(len(names)) if shares[c] > distinct_value_threshold]
    placed = _Grouper(codes, weights, early_stop).order(list(range(n)), greedy)
    cells = [[text[c][r] for c in columns + last] for r, columns in placed]
    return pd.DataFrame(cells, columns=[f"field_{i}" for i in range(len(names))])

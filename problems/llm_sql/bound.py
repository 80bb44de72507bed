"""An upper bound on the hit rate any program can reach: `python -m problems.llm_sql.bound`.

A common prefix of length k of two rows' texts is k characters both texts hold, so row i's hit
is at most b_i = max over the other rows j of |chars(i) & chars(j)| (multiset intersection).
Reordering a row's fields or merging its groups keeps its characters, so b_i holds for every
arrangement, and the first row sent hits nothing: total hits <= sum(b_i) - min(b_i). The bound
is loose (characters are shared freely across positions) but sound. It costs O(rows^2 x
alphabet): about 30 s of CPU for the four tables, so it is a script, not part of the evaluator.
"""

from __future__ import annotations

import numpy as np

from problems.llm_sql.hitrate import serialise
from problems.llm_sql.tables import COL_MERGE, TABLE_NAMES, load_table, merge_rows

_CHUNK = 32  # rows compared with all others at once: chunk x rows x alphabet int16 cells


def char_counts(strings: list[str]) -> np.ndarray:
    """[rows, alphabet] count of each character in each string."""
    alphabet = {c: k for k, c in enumerate(sorted(set("".join(strings))))}
    counts = np.zeros((len(strings), len(alphabet)), dtype=np.int32)
    for i, text in enumerate(strings):
        for c in text:
            counts[i, alphabet[c]] += 1
    return counts


def hit_bound(strings: list[str]) -> int:
    """Most characters any arrangement of these rows can hit (see the module docstring)."""
    n = len(strings)
    if n < 2:
        return 0
    counts = char_counts(strings)
    best = np.zeros(n, dtype=np.int64)
    for start in range(0, n, _CHUNK):
        block = counts[start:start + _CHUNK]
        shared = np.minimum(block[:, None, :], counts[None, :, :]).sum(axis=2)
        shared[np.arange(len(block)), np.arange(start, start + len(block))] = -1  # not itself
        best[start:start + len(block)] = shared.max(axis=1)
    return int(best.sum() - best.min())


def main() -> None:
    from problems.llm_sql.evaluate import BASE, leaderboard_score

    bounds = {}
    for name in TABLE_NAMES:
        table = load_table(name)
        strings = serialise(merge_rows(table.columns, table.rows, COL_MERGE[name]))
        bounds[name] = hit_bound(strings) / sum(len(s) for s in strings)
        print(f"{name}: hit rate <= {bounds[name]:.4f} (original column order "
              f"{BASE[name]:.4f})")
    hit = sum(bounds.values()) / len(bounds)
    base = sum(BASE.values()) / len(BASE)
    score, hit_term, _ = leaderboard_score(hit, base, 0.0)
    print(f"mean hit rate <= {hit:.4f}: hit term <= {hit_term:.2f}, score <= {score:.2f}")


if __name__ == "__main__":
    main()

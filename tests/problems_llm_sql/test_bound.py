"""The character-multiset bound holds against every arrangement of small tables."""

from __future__ import annotations

import itertools
import random

from problems.llm_sql.bound import hit_bound
from problems.llm_sql.hitrate import prefix_hits


def best_hits(rows: list[list[str]]) -> int:
    """The most hits over every field order of every row (row order does not matter)."""
    orders = [list(itertools.permutations(row)) for row in rows]
    return max(int(prefix_hits(["".join(o) for o in choice]).sum())
               for choice in itertools.product(*orders))


def test_the_bound_is_never_below_the_best_arrangement():
    rng = random.Random(3)
    tight = 0
    for _ in range(40):
        rows = [[rng.choice(["a", "ab", "b", "ba", "c", "201", "3"]) for _ in range(3)]
                for _ in range(rng.randint(1, 4))]
        strings = ["".join(r) for r in rows]
        best, bound = best_hits(rows), hit_bound(strings)
        assert best <= bound, (rows, best, bound)
        tight += best == bound
    assert tight > 0  # not vacuous: reached on some tables


def test_hand_computed_bound():
    # "ab" and "ba" share 2 characters, "cc" shares none: 2 + 2 + 0 - min 0 = 4 (loose: as one
    # field each, their real hits are 0).
    assert hit_bound(["ab", "ba", "cc"]) == 4
    assert hit_bound(["x"]) == 0

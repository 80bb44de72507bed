"""The sorted-prefix hit rate against a brute-force one (every earlier row compared)."""

from __future__ import annotations

import random

import pytest

from problems.llm_sql.hitrate import hit_rate, prefix_hits, serialise
from problems.llm_sql.tables import COL_MERGE, load_table, merge_rows


def brute_force_hits(strings: list[str]) -> list[int]:
    hits = []
    for i, s in enumerate(strings):
        best = 0
        for t in strings[:i]:
            k = 0
            while k < min(len(s), len(t)) and s[k] == t[k]:
                k += 1
            best = max(best, k)
        hits.append(best)
    return hits


@pytest.mark.parametrize("seed", range(5))
def test_hits_match_brute_force_on_random_small_tables(seed):
    rng = random.Random(seed)
    for _ in range(60):
        # Few letters and short strings: many shared prefixes, duplicates, empty strings and
        # strings that are prefixes of others.
        rows = [[rng.choice(["", "a", "ab", "b", "ba", "é", "abc"]) for _ in range(3)]
                for _ in range(rng.randint(0, 25))]
        strings = serialise(rows)
        assert prefix_hits(strings).tolist() == brute_force_hits(strings)


def test_hits_match_brute_force_on_a_real_table_sample():
    table = load_table("planes")
    strings = serialise(merge_rows(table.columns, table.rows[:150], COL_MERGE["planes"]))
    assert prefix_hits(strings).tolist() == brute_force_hits(strings)


def test_hand_computed_example():
    # "abc": 0; "abd": 2 ("ab"); "b": 0; "abdx": 3 ("abd"); "": 0 -> 5 of 11 characters.
    strings = ["abc", "abd", "b", "abdx", ""]
    assert prefix_hits(strings).tolist() == [0, 2, 0, 3, 0]
    assert hit_rate(strings) == pytest.approx(5 / 11)


def test_row_order_does_not_change_the_hit_rate():
    # Hits on any earlier row add up to the total length minus the trie's size, whatever the
    # order: the sorted_rows baseline gains nothing from sorting the rows.
    table = load_table("airports")
    strings = serialise(merge_rows(table.columns, table.rows, COL_MERGE["airports"]))
    shuffled = strings[:]
    random.Random(1).shuffle(shuffled)
    assert hit_rate(sorted(strings)) == hit_rate(strings) == hit_rate(shuffled)


def test_empty_input_and_nul_characters():
    assert prefix_hits([]).tolist() == []
    assert hit_rate(["", ""]) == 0.0
    with pytest.raises(ValueError, match="NUL"):
        prefix_hits(["a\x00"])


def test_small_batches_give_the_same_hits():
    table = load_table("planes")
    strings = serialise(merge_rows(table.columns, table.rows, COL_MERGE["planes"]))
    whole = prefix_hits(strings)
    assert prefix_hits(strings, batch_cells=1000).tolist() == whole.tolist()  # ~12 rows a batch

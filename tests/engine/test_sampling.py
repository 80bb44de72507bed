"""Islands, migration and parent selection (pure; the end-to-end island test is elsewhere)."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from evolve.config import IslandsConfig, SamplingConfig
from evolve.select.sampler import IslandSampler, Member


def sampler(method: str = "weighted", k: int = 3, interval: int = 2, rate: float = 0.2,
            **extra) -> IslandSampler:
    s = IslandSampler(SamplingConfig(parent_selection=method, **extra),
                      IslandsConfig(count=k, migration_interval=interval, migration_rate=rate),
                      features=["a", "b"])
    s.add_initial(Member(seq=-1, program_id=1, island=0, score=0.0, valid=True))
    return s


def fill(s: IslandSampler, n: int) -> None:
    for seq in range(n):
        island = s.island_for(seq)
        parent = s.select_parent(island, random.Random(seq))
        s.add(Member(seq=seq, program_id=seq + 2, island=island, score=float(seq % 7),
                     valid=seq % 5 != 4, metrics={"a": seq % 3, "b": seq % 4}), parent.seq)


def test_initial_seeds_every_island_and_children_join_their_island():
    s = sampler(interval=1000)
    assert all(m == [-1] for m in s.island_members)
    fill(s, 9)
    for island in range(3):
        homes = {s.members[q].island for q in s.island_members[island] if q >= 0}
        assert homes == {island}


def test_migration_moves_the_best_to_the_next_island_and_is_reported():
    s = sampler(k=3, interval=2, rate=0.2)
    moved = []
    for seq in range(6):  # 6 = interval * k ingests -> one migration round
        island = s.island_for(seq)
        moved += s.add(Member(seq=seq, program_id=seq + 2, island=island, score=float(seq),
                              valid=True), -1)
    assert moved and {(m.source, m.target) for m in moved} == {(0, 1), (1, 2), (2, 0)}
    best_of_0 = max(q for q in range(6) if q % 3 == 0)
    assert best_of_0 in s.island_members[1]


@pytest.mark.parametrize("method", ["weighted", "power_law", "hill_climbing", "uniform"])
def test_parent_selection_returns_valid_members_of_the_island(method):
    s = sampler(method, interval=1000)
    fill(s, 30)
    rng = random.Random(1)
    for _ in range(50):
        parent = s.select_parent(1, rng)
        assert parent.valid and parent.seq in s.island_members[1]
    if method == "hill_climbing":
        assert s.select_parent(1, rng).seq == s.valid_members(1)[0].seq


def test_weighted_prefers_high_scores_and_penalizes_many_children():
    s = sampler(interval=1000)
    s.add(Member(seq=0, program_id=2, island=0, score=10.0, valid=True), -1)
    s.add(Member(seq=3, program_id=3, island=0, score=1.0, valid=True), -1)
    picks = Counter(s.select_parent(0, random.Random(i)).seq for i in range(400))
    assert picks[0] > picks[3] > 0
    s.members[0].children = 50
    picks = Counter(s.select_parent(0, random.Random(i)).seq for i in range(400))
    assert picks[3] > picks[0]


def test_power_law_is_rank_based():
    s = sampler("power_law", interval=1000, power_law_alpha=2.0)
    for seq, score in ((0, 5.0), (3, 4.0), (6, 3.0)):
        s.add(Member(seq=seq, program_id=seq + 2, island=0, score=score, valid=True), -1)
    picks = Counter(s.select_parent(0, random.Random(i)).seq for i in range(1000))
    assert picks[0] > picks[3] > picks[6]


def test_inspirations_top_plus_diverse_and_map_elites_grid():
    s = sampler(interval=1000, inspirations_top=2, inspirations_diverse=2, map_elites=True,
                map_elites_bins=2)
    fill(s, 30)
    parent = s.select_parent(0, random.Random(0))
    chosen = s.inspirations(0, parent, random.Random(0))
    assert len(chosen) == 4 and parent.seq not in {m.seq for m in chosen}
    assert [m.seq for m in chosen[:2]] == [m.seq for m in s.valid_members(0)
                                          if m.seq != parent.seq][:2]
    grid = s.grid()
    assert 1 < len(grid) <= 4  # 2 bins x 2 features
    for seq in grid.values():
        assert s.members[seq].valid


def test_repair_target_is_a_recent_invalid_program_once():
    s = sampler(interval=1000)
    s.add(Member(seq=0, program_id=2, island=0, score=None, valid=False), -1)
    target = s.select_repair_target(0, random.Random(0))
    assert target is not None and target.seq == 0
    target.repaired = True
    assert s.select_repair_target(0, random.Random(0)) is None


def test_selection_is_deterministic_for_a_seeded_rng():
    a, b = sampler(), sampler()
    fill(a, 40)
    fill(b, 40)
    assert [a.select_parent(i % 3, random.Random(i)).seq for i in range(30)] == \
        [b.select_parent(i % 3, random.Random(i)).seq for i in range(30)]


@pytest.mark.parametrize("map_elites", [False, True])
def test_crossover_parent_b_is_never_an_inspiration(map_elites):
    s = sampler(interval=1000, map_elites=map_elites)
    fill(s, 40)
    for seed in range(200):
        rng = random.Random(seed)
        parent = s.select_parent(1, rng)
        second = s.second_parent(1, parent, rng)
        assert second is not None and second.seq != parent.seq
        shown = {m.seq for m in s.inspirations(1, parent, rng, second)}
        assert second.seq not in shown and parent.seq not in shown

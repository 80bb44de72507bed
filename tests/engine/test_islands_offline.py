"""Islands really separate; offline operators alone improve the score (no LLM, no network)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from tests.engine.engine_support import engine_config, open_archive, run

ROOT = Path(__file__).resolve().parents[2]


def test_islands_separate_children_stay_home_except_migrations(tmp_path):
    config = engine_config(tmp_path, None, budget={"max_programs": 30},
                           islands={"count": 3, "migration_interval": 2, "migration_rate": 0.3},
                           concurrency={"proposals": 3, "evaluations": 2},
                           operators={"models": [], "use_offline": "always"})
    outcome = run(config, tmp_path)
    with open_archive(tmp_path) as archive:
        programs = archive.programs(outcome.run_id)
        by_id = {p.id: p for p in programs}
        children = [p for p in programs if p.proposal_key != "initial"]
        # Proposal seq goes to island seq mod 3; the budget counts evaluated programs, so
        # duplicates add proposals: the islands get the same count, give or take one.
        assert sum(p.status == "evaluated" for p in children) == 30
        counts = Counter(p.island for p in children)
        assert set(counts) == {0, 1, 2} and max(counts.values()) - min(counts.values()) <= 1
        migrated = {(e.data["program_id"], e.data["target"])
                    for e in archive.events(outcome.run_id, kind="migration")}
        assert migrated, "migrations happened"
        initial_id = next(p.id for p in programs if p.proposal_key == "initial")
        crossed = 0
        for child in children:
            parent = by_id[child.parent_id]
            if parent.id == initial_id or parent.island == child.island:
                continue
            # A parent from another island is only possible after it migrated here.
            assert (parent.id, child.island) in migrated, (child.proposal_key, parent.island)
            crossed += 1
        for island in range(3):  # every island evolves its own lineage
            assert any(by_id[c.parent_id].island == island and c.island == island
                       and c.parent_id != initial_id for c in children)


def test_offline_operators_improve_the_fixture(tmp_path):
    config = engine_config(tmp_path, None, budget={"max_programs": 16},
                           operators={"models": [], "use_offline": "auto", "offline": ["tune"]})
    outcome = run(config, tmp_path)
    with open_archive(tmp_path) as archive:
        initial = archive.find_by_proposal_key(outcome.run_id, "initial")
        assert outcome.best_score is not None and outcome.best_score > initial.score


def test_offline_operators_improve_the_circle_packing_baseline(tmp_path):
    # About 10 s: 80 programs of the real problem with the tune and swap operators only.
    config = engine_config(tmp_path, None, problem="circle_packing",
                           budget={"max_programs": 80},
                           islands={"count": 2, "migration_interval": 5, "migration_rate": 0.2},
                           sampling={"parent_selection": "weighted"},
                           concurrency={"proposals": 2, "evaluations": 2},
                           operators={"models": [], "use_offline": "auto"})
    outcome = run(config, tmp_path)
    with open_archive(tmp_path) as archive:
        initial = archive.find_by_proposal_key(outcome.run_id, "initial")
    assert initial.valid and initial.score == pytest.approx(1.4529, abs=1e-4)
    assert outcome.best_score > initial.score + 0.01

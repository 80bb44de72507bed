"""The search box's language and the table's sort order, on the programs of a real run."""

from __future__ import annotations

import pytest

from db import Archive
from evolve.dashboard.data import load_run
from evolve.dashboard.query import QueryError, filter_programs, sort_programs
from tests.support.archive_run import RunFacts


@pytest.fixture(scope="module")
def programs(toy_run: RunFacts):
    with Archive.open(toy_run.run_dir / "archive.sqlite", create=False) as archive:
        return load_run(archive, toy_run.run_id).programs


def ids(programs) -> set[int]:
    return {p.id for p in programs}


def test_terms_combine(programs, toy_run: RunFacts) -> None:
    assert ids(filter_programs(programs, "")) == ids(programs)
    assert ids(filter_programs(programs, "failed")) == set(toy_run.failed)
    assert ids(filter_programs(programs, "valid")) == ids(programs) - set(toy_run.failed)
    assert ids(filter_programs(programs, "kind:timeout")) == {
        pid for pid, kind in toy_run.failed.items() if kind == "timeout"}
    assert ids(filter_programs(programs, "gen>=2 island=1")) == {
        p.id for p in programs if p.generation >= 2 and p.island == 1}
    operator = next(p.operator for p in programs if p.id in toy_run.llm_program_ids)
    assert ids(filter_programs(programs, f"{operator.upper()} cost>0")) >= set(
        toy_run.llm_program_ids)
    assert ids(filter_programs(programs, f"OPERATOR:{operator.upper()} cost>0")) == {
        p.id for p in programs if p.operator == operator and p.cost_usd > 0}
    assert ids(filter_programs(programs, f"parent:{toy_run.initial_id}")) == set(
        toy_run.children_of_initial)
    assert ids(filter_programs(programs, "swap")) == {p.id for p in programs
                                                      if "swap" in p.operator}


def test_bad_terms_say_what_to_write(programs) -> None:
    with pytest.raises(QueryError, match="not a number"):
        filter_programs(programs, "score>high")
    with pytest.raises(QueryError, match="unknown field 'colour'.*fields:"):
        filter_programs(programs, "colour:red")


@pytest.mark.parametrize("descending", [True, False])
def test_programs_without_a_score_sort_last(programs, descending: bool) -> None:
    ordered = sort_programs(programs, "score", descending)
    scored = [p.score for p in ordered if p.score is not None]
    assert scored == sorted(scored, reverse=descending)
    first_missing = next(i for i, p in enumerate(ordered) if p.score is None)
    assert all(p.score is None for p in ordered[first_missing:])
    assert [p.operator for p in sort_programs(programs, "operator")] == sorted(
        p.operator for p in programs)

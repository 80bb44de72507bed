"""The dashboard as a new user meets it: the cursor on the first row of the sorted table, and
every filter example the search box shows matching what it says."""

from __future__ import annotations

import pytest
from textual.widgets import DataTable, Input

from db import Archive
from evolve.dashboard.app import DashboardApp
from evolve.dashboard.data import load_run
from evolve.dashboard.programs import ProgramsPane
from evolve.dashboard.query import SEARCH_EXAMPLES, filter_programs
from tests.support.archive_run import RunFacts
from tests.support.engine_run import shared_toy_run


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory: pytest.TempPathFactory) -> RunFacts:
    return shared_toy_run(tmp_path_factory.getbasetemp())


async def test_cursor_starts_on_the_first_row_and_enter_opens_it(toy_run):
    with Archive.open(toy_run.run_dir / "archive.sqlite", create=False) as archive:
        app = DashboardApp(archive, toy_run.run_id)
        app.animation_level = "none"
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.pause()
            pane = app.query_one(ProgramsPane)
            table = app.query_one("#programs", DataTable)
            assert table.cursor_row == 0
            assert pane.selected_id() == toy_run.best_id != toy_run.initial_id
            await pilot.press("down")
            second = pane.selected_id()
            await pilot.press("enter")
            await pilot.pause()
            assert app.screen.program_id == second     # the row the user sees, opened


async def test_every_search_example_filters_as_documented(toy_run):
    with Archive.open(toy_run.run_dir / "archive.sqlite", create=False) as archive:
        programs = load_run(archive, toy_run.run_id).programs
        expected = {
            "score>0.5": {p.id for p in programs if p.score is not None and p.score > 0.5},
            "island:1": {p.id for p in programs if p.island == 1},
            "operator:gpt": {p.id for p in programs if "gpt" in p.operator},
            "status:failed": {p.id for p in programs if p.failed},
        }
        assert set(expected) == set(SEARCH_EXAMPLES)
        assert expected["status:failed"] == set(toy_run.failed) != set()
        assert {p.id for p in filter_programs(programs, "failed")} == expected["status:failed"]
        assert {p.id for p in filter_programs(programs, "status:valid")} == {
            p.id for p in programs if p.valid}
        kind = next(iter(toy_run.failed.values()))
        assert {p.id for p in filter_programs(programs, f"status:{kind}")} == {
            p.id for p in programs if p.error_kind == kind}
        app = DashboardApp(archive, toy_run.run_id)
        app.animation_level = "none"
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.pause()
            assert all(example in app.query_one("#search", Input).placeholder
                       for example in SEARCH_EXAMPLES)
            for example, ids in expected.items():
                await pilot.press("slash")
                search = app.query_one("#search", Input)
                search.value = example
                await pilot.pause()
                table = app.query_one("#programs", DataTable)
                shown = {int(key.value) for key in table.rows}
                assert shown == ids, example

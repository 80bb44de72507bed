"""The Textual dashboard driven headless with its Pilot, on a run held in a real archive.

Each main screen is saved as an SVG under tests/snapshots/ and checked for the text it must show.
"""

from __future__ import annotations

import html
import io
import json
import re
from collections import Counter
from pathlib import Path

import pytest
from rich.console import Console
from textual.widgets import DataTable, Input, Static, TabbedContent, Tree

from db import Archive, code_hash_of
from evolve.dashboard.app import DashboardApp
from evolve.dashboard.program_screen import ProgramScreen
from evolve.dashboard.programs import ProgramsPane
from tests.support.archive_run import RunFacts, build_run_async

SNAPSHOTS = Path(__file__).resolve().parents[1] / "snapshots"
SMALL, LARGE = (80, 24), (140, 44)


@pytest.fixture
def archive(toy_run: RunFacts):
    opened = Archive.open(toy_run.run_dir / "archive.sqlite", create=False)
    yield opened
    opened.close()


def screenshot(app: DashboardApp, name: str) -> str:
    """Save the current screen as tests/snapshots/NAME.svg; return its text, line by line."""
    SNAPSHOTS.mkdir(exist_ok=True)
    path = Path(app.save_screenshot(filename=f"{name}.svg", path=str(SNAPSHOTS)))
    return svg_text(path.read_text())


TEXT_ELEMENT = re.compile(r'<text[^>]*\bx="([\d.]+)"[^>]*\by="([\d.]+)"[^>]*'
                          r'textLength="([\d.]+)"[^>]*>(.*?)</text>', re.S)


def svg_text(svg: str) -> str:
    """The screen text of a rich SVG export. Rich writes each styled run as a positioned
    <text> element and leaves out runs of bare spaces, so runs are placed by their x."""
    lines: dict[float, dict[int, str]] = {}
    for x, y, length, raw in TEXT_ELEMENT.findall(svg):
        text = html.unescape(raw).replace("\xa0", " ")
        if not text:
            continue
        cell = float(length) / len(text)
        row = lines.setdefault(float(y), {})
        for offset, char in enumerate(text):
            row[round(float(x) / cell) + offset] = char
    out = []
    for y in sorted(lines):
        row = lines[y]
        out.append("".join(row.get(col, " ") for col in range(max(row) + 1)).rstrip())
    return "\n".join(out)


def console_text(renderable, width: int) -> str:
    """What a rich renderable prints, as plain text."""
    console = Console(width=width, file=io.StringIO(), record=True)
    console.print(renderable)
    return console.export_text()


def make_app(archive: Archive, run_id: int, **kwargs: float) -> DashboardApp:
    app = DashboardApp(archive, run_id, **kwargs)
    app.animation_level = "none"        # each key press otherwise waits for tab animations
    return app


def table_ids(app: DashboardApp) -> list[int]:
    table = app.query_one("#programs", DataTable)
    return [int(table.coordinate_to_cell_key((row, 0)).row_key.value)
            for row in range(table.row_count)]


@pytest.mark.parametrize("size", [SMALL, LARGE], ids=["80x24", "140x44"])
async def test_opens_on_the_programs_table(toy_run: RunFacts, archive: Archive, size) -> None:
    app = make_app(archive, toy_run.run_id)
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        ids = table_ids(app)
        assert sorted(ids) == sorted(p.id for p in archive.programs(toy_run.run_id))
        assert ids[0] == archive.best(toy_run.run_id)[0].id          # best first by default
        text = screenshot(app, f"programs_{size[0]}x{size[1]}")
        assert "Programs" in text and "Overview" in text
        assert f"{len(ids)} of {len(ids)} programs" in text
        assert "Quit" in text and "Search" in text                     # keys in the footer
        await pilot.press("q")
    assert not app.is_running


async def test_sort_keys_and_reverse(toy_run: RunFacts, archive: Archive) -> None:
    programs = {p.id: p for p in archive.programs(toy_run.run_id)}
    app = make_app(archive, toy_run.run_id)
    async with app.run_test(size=SMALL) as pilot:
        await pilot.pause()
        await pilot.press("s")                                  # score -> island
        islands = [programs[i].island for i in table_ids(app)]
        assert islands == sorted(islands)
        await pilot.press("s")                                  # island -> generation
        generations = [programs[i].generation for i in table_ids(app)]
        assert generations == sorted(generations, reverse=True)
        await pilot.press("r")
        generations = [programs[i].generation for i in table_ids(app)]
        assert generations == sorted(generations)
        pane = app.query_one(ProgramsPane)
        assert (pane.sort_column, pane.sort_descending) == ("generation", False)
        # A click on a column header sorts by it; costs start high-to-low.
        table = app.query_one("#programs", DataTable)
        left = sum(column.get_render_width(table) for column in table.ordered_columns[:-1])
        await pilot.click("#programs", offset=(left + 2, 0))
        assert pane.sort_column == "cost"
        paid = {pid for pid in programs if archive.llm_calls(program_id=pid)
                and any(c.cost_usd for c in archive.llm_calls(program_id=pid))}
        assert paid and set(table_ids(app)[:len(paid)]) == paid     # the ones with a cost


async def test_search_box_filters(toy_run: RunFacts, archive: Archive) -> None:
    programs = archive.programs(toy_run.run_id)
    app = make_app(archive, toy_run.run_id)
    async with app.run_test(size=SMALL) as pilot:
        await pilot.pause()
        await pilot.press("slash", *"failed")
        assert sorted(table_ids(app)) == sorted(toy_run.failed)
        text = screenshot(app, "programs_filtered")
        assert f"{len(toy_run.failed)} of {len(programs)} programs" in text

        search = app.query_one("#search", Input)
        # Later queries are set directly (typing each key costs ~0.1 s on a small machine);
        # the box handles them through the same Changed event as typed keys.
        best = archive.best(toy_run.run_id)[0]
        threshold = best.score - 1.0
        search.value = f"score>{threshold} island:{best.island}"
        await pilot.pause()
        expected = [p.id for p in programs
                    if p.valid and p.score > threshold and p.island == best.island]
        assert best.id in expected and sorted(table_ids(app)) == sorted(expected)

        search.value = "score>x"
        await pilot.pause()
        assert len(table_ids(app)) == len(programs)            # a bad term filters nothing
        assert "not a number" in screenshot(app, "programs_bad_filter")

        operator = next(p.operator for p in programs if p.parent_id is not None)
        search.value = f"operator:{operator}"
        await pilot.pause()
        assert {p.operator for p in programs if p.id in table_ids(app)} == {operator}


async def open_program(pilot, app: DashboardApp, program_id: int) -> ProgramScreen:
    """Select a program the way a user does: filter by its id, then Enter on the row."""
    await pilot.press("slash", *f"id:{program_id}", "enter")
    assert table_ids(app) == [program_id]
    await pilot.press("enter")
    await pilot.pause()
    assert isinstance(app.screen, ProgramScreen)
    return app.screen


@pytest.mark.parametrize("size", [SMALL, LARGE], ids=["80x24", "140x44"])
async def test_program_views(toy_run: RunFacts, archive: Archive, size) -> None:
    program_id = toy_run.llm_program_ids[0]
    stored = archive.program(program_id)
    app = make_app(archive, toy_run.run_id)
    tag = f"{size[0]}x{size[1]}"
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        screen = await open_program(pilot, app, program_id)
        assert screen.program_id == program_id
        text = screenshot(app, f"program_summary_{tag}")
        assert f"#{program_id}" in text and "objective" in text          # metrics
        cost = sum(c.cost_usd or 0.0 for c in archive.llm_calls(program_id=program_id))
        assert stored.feedback in text and f"${cost:.4f}" in text       # feedback, cost

        await pilot.press("c")
        assert app.screen.query_one("#program-tabs", TabbedContent).active == "code"
        assert "def solve():" in screenshot(app, f"program_code_{tag}")

        await pilot.press("d")
        text = screenshot(app, f"program_diff_{tag}")
        changed = next(line for line in stored.diff.splitlines() if line.startswith("+A = "))
        assert changed in text and stored.diff.splitlines()[0] in text

        await pilot.press("p")
        text = screenshot(app, f"program_prompt_{tag}")
        call = archive.llm_calls(program_id=program_id)[0]
        messages = json.loads(call.prompt)
        assert f"[{messages[0]['role']}]" in text
        assert messages[0]["content"].strip().splitlines()[0][:60] in text
        # The whole exchange is in the view (the reply sits below the fold at 80x24).
        body = app.screen.query_one("#prompt-body", Static)
        shown = console_text(body.content, width=size[0])
        assert call.response.strip().splitlines()[0][:60] in shown
        assert messages[-1]["content"].strip().splitlines()[0][:60] in shown
        await pilot.press("end")                     # the view has focus: End shows the reply
        assert "[reply]" in screenshot(app, f"program_reply_{tag}")

        await pilot.press("escape")
        assert not isinstance(app.screen, ProgramScreen)


async def test_walk_the_lineage(toy_run: RunFacts, archive: Archive) -> None:
    target = max(toy_run.program_ids, key=lambda pid: len(archive.ancestors(pid)))
    parent_id = archive.program(target).parent_id
    grandparent_id = archive.program(parent_id).parent_id
    assert grandparent_id is not None
    app = make_app(archive, toy_run.run_id)
    async with app.run_test(size=SMALL) as pilot:
        await pilot.pause()
        await open_program(pilot, app, target)
        await pilot.press("l")
        tree = app.screen.query_one("#lineage-tree", Tree)
        assert app.focused is tree and tree.cursor_node.data == target
        text = screenshot(app, "program_lineage")
        for ancestor in archive.ancestors(target):
            assert f"#{ancestor.id} " in text
        await pilot.press("up", "enter")                       # walk to the parent
        await pilot.pause()
        assert isinstance(app.screen, ProgramScreen) and app.screen.program_id == parent_id
        await pilot.press("u")                                 # and on to its parent
        await pilot.pause()
        assert app.screen.program_id == grandparent_id
        await pilot.press("l")
        tree = app.screen.query_one("#lineage-tree", Tree)
        children = {p.id for p in archive.children(grandparent_id)}
        shown = {child.data for child in tree.cursor_node.children}
        assert shown == children


async def test_run_overview(toy_run: RunFacts, archive: Archive) -> None:
    app = make_app(archive, toy_run.run_id)
    async with app.run_test(size=LARGE) as pilot:
        await pilot.pause()
        await pilot.press("o")
        assert app.query_one("#main-tabs", TabbedContent).active == "overview-tab"
        text = screenshot(app, "overview_140x44")
        best = archive.best(toy_run.run_id)[0]
        assert f"best {best.score:.6g} (#{best.id})" in text
        assert "best score over programs" in text and "best score over dollars" in text
        for operator in {p.operator for p in archive.programs(toy_run.run_id)
                         if p.parent_id is not None}:
            assert operator in text                                    # arms
        assert "islands" in text
        for kind, count in Counter(toy_run.failed.values()).items():
            assert f"{kind}: {count}" in text
        assert toy_run.scratchpad_tip in text
        await pilot.press("t")
        assert app.query_one("#main-tabs", TabbedContent).active == "programs-tab"
    small = make_app(archive, toy_run.run_id)
    async with small.run_test(size=SMALL) as pilot:
        await pilot.pause()
        await pilot.press("o")
        assert "best score over programs" in screenshot(small, "overview_80x24")


async def test_an_empty_run_opens(tmp_path: Path) -> None:
    with Archive.open(tmp_path / "archive.sqlite") as writer:
        run_id = writer.create_run(problem="toy_objective", config_toml="", seed=0,
                                   isolation="rlimits")
    with Archive.open(tmp_path / "archive.sqlite", create=False) as reader:
        app = make_app(reader, run_id)
        async with app.run_test(size=SMALL) as pilot:
            await pilot.pause()
            assert table_ids(app) == []
            await pilot.press("enter", "o")
            text = screenshot(app, "overview_empty")
            assert "0 evaluated · best -" in text
            assert not isinstance(app.screen, ProgramScreen)


async def test_refreshes_while_the_run_goes_on(tmp_path: Path) -> None:
    from evolve.engine.run_files import run_lock

    facts = await build_run_async(tmp_path / "live-run", programs=2, status="running")
    writer = Archive.open(facts.run_dir / "archive.sqlite")
    reader = Archive.open(facts.run_dir / "archive.sqlite", create=False)
    try:
        # The writer holds the run's lock, as a live run does (else it shows as crashed).
        with run_lock(facts.run_dir):
            app = make_app(reader, facts.run_id, refresh_s=0.1)
            async with app.run_test(size=SMALL) as pilot:
                await pilot.pause()
                assert len(table_ids(app)) == 2 and "running" in app.sub_title
                # Written the way the controller writes: the LLM call first, then the program
                # that links it, from another connection (the controller's).
                code = "def solve():\n    return 11.0\n"
                call_id = writer.record_llm_call(
                    facts.run_id, model="openai/gpt-4.1-mini", prompt="[]", response="ok",
                    tokens_in=10, tokens_out=5, cost_usd=0.25, latency_s=0.1, error=None,
                    purpose="proposal")
                new_id = writer.add_program(
                    facts.run_id, code=code, code_hash=code_hash_of(code),
                    parent_id=facts.initial_id, island=0, generation=1, operator="tune",
                    mutation_kind="diff", status="evaluated", stage_reached="full",
                    score=11.0, valid=True, llm_call_ids=[call_id])
                writer.finish_run(facts.run_id, "finished")
                for _ in range(100):                   # the timer reloads within a few ticks
                    await pilot.pause(0.1)
                    if "finished" in app.sub_title:
                        break
                assert table_ids(app)[0] == new_id and len(table_ids(app)) == 3
                assert "finished" in app.sub_title
                assert app.data.by_id[new_id].cost_usd == pytest.approx(0.25)
                assert app.data.spent_usd == pytest.approx(0.25 + facts.spent_usd)
    finally:
        writer.close()
        reader.close()

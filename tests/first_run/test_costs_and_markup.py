"""Unknown prices read "unknown" everywhere; text from a problem, a candidate or an LLM is shown
as written (never as rich markup); duplicates name the program id `evolve show` takes."""

from __future__ import annotations

import json
import re

from typer.testing import CliRunner

from db import Archive
from evolve.cli import app
from tests.first_run.conftest import HIDDEN, LLM_MARKUP, METRIC, STYLED, HostileRun


def _programs(run: HostileRun) -> list:
    with Archive.open(run.run_dir / "archive.sqlite", create=False) as archive:
        return archive.programs(archive.runs()[-1].id)


def _invoke(*args: str, width: int = 80) -> str:
    result = CliRunner().invoke(app, list(args), terminal_width=width)
    assert result.exit_code == 0, result.output
    return result.output


def test_progress_lines_and_summary_say_unknown_not_zero(hostile_run):
    lines = [line for line in hostile_run.output.splitlines() if line.startswith("program ")]
    assert lines and all("calls of unknown price" in line or "call of unknown price" in line
                         for line in lines)
    assert "$0.0000" not in hostile_run.output
    assert re.search(r"run completed: .*unknown \(\d+ calls? of unknown price\)",
                     hostile_run.output)


def test_duplicates_cite_a_program_id_that_show_accepts(hostile_run):
    programs = _programs(hostile_run)
    duplicate = next(p for p in programs if p.status == "duplicate")
    # Stored: the twin's proposal key (independent of commit order, like the rest of the
    # archive); shown: the program id it resolves to.
    key = re.search(r"to proposal (\S+)$", duplicate.error_text).group(1)
    twin = next(p for p in programs if p.proposal_key == key)
    assert twin.status == "evaluated" and twin.code.strip() == duplicate.code.strip()
    shown = _invoke("show", str(duplicate.id), "--run-dir", str(hostile_run.run_dir),
                    "--no-code", width=200)
    assert re.search(rf"error\s+duplicate: identical .*?to\s+program {twin.id}\s", shown,
                     re.S), shown
    as_json = json.loads(_invoke("show", str(duplicate.id), "--run-dir",
                                 str(hostile_run.run_dir), "--json"))
    assert as_json["error_text"].endswith(f"to program {twin.id}")
    assert "-> duplicate |" in hostile_run.output
    assert "duplicate: duplicate" not in hostile_run.output
    _invoke("show", str(twin.id), "--run-dir", str(hostile_run.run_dir), "--no-code")


def test_show_prints_brackets_as_written_and_unknown_cost(hostile_run):
    llm_program = next(p for p in _programs(hostile_run)
                       if p.status == "evaluated" and p.parent_id is not None)
    text = _invoke("show", str(llm_program.id), "--run-dir", str(hostile_run.run_dir),
                   "--prompt", "--no-code", width=200)
    assert METRIC in text and STYLED in text and HIDDEN in text and LLM_MARKUP in text
    assert re.search(r"cost\s+unknown \(1 call of unknown price\)", text)
    assert "cost_usd 0" not in text and "$0.0000" not in text
    assert re.search(r"LLM call: .* unknown \(1\s+call of unknown price\)", text)
    as_json = json.loads(_invoke("show", str(llm_program.id), "--run-dir",
                                 str(hostile_run.run_dir), "--json"))
    assert as_json["cost_usd"] is None and as_json["unknown_cost_calls"] == 1


def test_status_best_and_runs_say_unknown(hostile_run):
    status = _invoke("status", str(hostile_run.run_dir), width=120)
    assert "unknown (" in status and "$0.0000 spent" not in status
    best = _invoke("best", str(hostile_run.run_dir), width=120)
    assert "unknown" in best
    runs = _invoke("runs", str(hostile_run.run_dir.parent), width=200)
    assert "unknown (" in runs


async def test_dashboard_shows_text_as_written_and_unknown_cost(hostile_run):
    from textual.widgets import DataTable, Static

    from evolve.dashboard.app import DashboardApp
    from evolve.dashboard.program_screen import ProgramScreen
    from tests.dashboard.test_dashboard_app import console_text

    with Archive.open(hostile_run.run_dir / "archive.sqlite", create=False) as archive:
        app = DashboardApp(archive, archive.runs()[-1].id)
        app.animation_level = "none"
        llm_program = next(p for p in archive.programs(1)
                           if p.status == "evaluated" and p.parent_id is not None)
        async with app.run_test(size=(140, 44)) as pilot:
            await pilot.pause()
            table = app.query_one("#programs", DataTable)
            row = table.get_row(str(llm_program.id))
            assert str(row[-1]) == "unknown"
            app.open_program(llm_program.id)
            await pilot.pause()
            screen = app.screen
            assert isinstance(screen, ProgramScreen)
            summary = console_text(screen.query_one("#summary-body", Static).content, 140)
            prompt = console_text(screen.query_one("#prompt-body", Static).content, 140)
    assert METRIC in summary and STYLED in summary and HIDDEN in summary
    assert "unknown (1 call of unknown price)" in summary
    assert LLM_MARKUP in prompt

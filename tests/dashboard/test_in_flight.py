"""The dashboard shows the evaluations a live run has in flight, per node, and none once it
stopped. A real run (sleep problem: each evaluation sleeps ~0.6 s, two at a time) writes the
archive while the Textual dashboard, on the same event loop, watches it through its own
connection, refreshing by itself."""

from __future__ import annotations

import asyncio
import io
import itertools
import re
import socket
from pathlib import Path

from rich.console import Console
from textual.widgets import Label

from db import Archive
from evolve.cli.live import render_snapshot, snapshot_from_archive
from evolve.engine.in_flight import IN_FLIGHT_STATE
from evolve.engine.run_files import read_run_id
from evolve.engine.session import run_session
from tests.dashboard.test_dashboard_app import make_app, screenshot
from tests.engine.engine_support import engine_config
from tests.support.llm_server import Reply, ScriptedLLMServer

SLEEP_PROBLEM = Path(__file__).resolve().parents[1] / "support" / "sleep_problem"
_SECONDS = re.compile(r"^SECONDS = (.+)$", re.M)


def slower_or_faster():
    """Each reply sets SECONDS to its own value near 0.6 s (no duplicates)."""
    counter = itertools.count(1)

    def respond(request):
        user = next(m["content"] for m in request["messages"] if m["role"] == "user")
        old = _SECONDS.search(user).group(1)
        new = round(0.6 + 0.01 * next(counter), 3)
        return Reply(f"Sleep {new} s.\n<<<<<<< SEARCH\nSECONDS = {old}\n=======\n"
                     f"SECONDS = {new!r}\n>>>>>>> REPLACE\n")

    return respond


def render_text(snap) -> str:
    console = Console(width=80, record=True, file=io.StringIO())
    console.print(render_snapshot(snap, 80))
    return console.export_text()


async def test_the_dashboard_shows_evaluations_in_flight_per_node(tmp_path):
    run_dir = tmp_path / "run"
    host = socket.gethostname()
    with ScriptedLLMServer(slower_or_faster()) as server:
        config = engine_config(run_dir, server, problem=str(SLEEP_PROBLEM), islands={"count": 1},
                               budget={"max_programs": 4},
                               concurrency={"proposals": 2, "evaluations": 2})
        run = asyncio.ensure_future(run_session(config, run_dir, handle_signals=False,
                                                log=lambda _m: None))
        while read_run_id(run_dir) is None and not run.done():
            await asyncio.sleep(0.05)
        run_id = read_run_id(run_dir)
        archive = Archive.open(run_dir / "archive.sqlite", create=False)
        try:
            app = make_app(archive, run_id, refresh_s=0.25)
            async with app.run_test(size=(80, 24)) as pilot:
                await pilot.press("o")                       # the overview tab
                label = app.query_one("#ov-in-flight", Label)
                shown, titles, screen = [], [], ""
                while not run.done():
                    await pilot.pause(0.1)
                    shown.append(str(label.content))
                    titles.append(app.sub_title)
                    if f"{host} 2" in shown[-1] and not screen:
                        screen = screenshot(app, "overview_in_flight_80x24")
                        # `evolve status` (another process) reads the same published counts.
                        status_snap = snapshot_from_archive(archive, run_id)
                        status_text = render_text(status_snap)
                outcome = await run
                await pilot.pause(0.5)                       # the next refresh sees the end
                final = str(label.content)
                final_title = app.sub_title
            stored = archive.get_state(run_id, IN_FLIGHT_STATE)
        finally:
            archive.close()
    assert outcome.status == "completed" and outcome.programs == 4
    # While running: both slots busy on this machine at some point, as the screen shows it.
    assert f"evaluations in flight: 2 · on {host} 2" in shown
    assert f"evaluations in flight: 2 · on {host} 2" in screen
    assert any(title.endswith(" · 2 in flight") for title in titles)
    # Stopped: cleared in the archive, and nothing shown as running.
    assert stored == {"nodes": {}}
    assert status_snap.running == 2 and status_snap.placement == {host: 2}
    assert "evaluations: 2 running" in status_text and f"on {host} 2" in status_text
    assert final == "" and "in flight" not in final_title

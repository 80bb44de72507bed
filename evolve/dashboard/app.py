"""`evolve dashboard`: browse a run in the terminal. Read-only; reloads the archive on a timer,
so it can watch a run that another process is still writing (the archive is SQLite in WAL mode,
where readers never block the writer)."""

from __future__ import annotations

from typing import Any

from textual.app import App
from textual.binding import Binding
from textual.screen import Screen

from evolve.dashboard.data import RunData, archive_folder, attr, load_run
from evolve.dashboard.program_screen import ProgramScreen
from evolve.dashboard.run_screen import RunScreen
from evolve.engine.in_flight import IN_FLIGHT_STATE
from evolve.engine.run_files import shown_status


class DashboardApp(App[None]):
    CSS_PATH = "dashboard.tcss"
    TITLE = "evolve"

    BINDINGS = [
        Binding("q", "quit", "Quit"),
        Binding("f5", "reload", "Reload", show=False),
    ]

    def __init__(self, archive: Any, run_id: int, *, refresh_s: float = 2.0) -> None:
        super().__init__()
        self.archive = archive
        self.run_id = run_id
        self.refresh_s = refresh_s
        self.data: RunData = load_run(archive, run_id)
        self._seen = self._fingerprint()
        self._stages: dict[int, list[Any]] = {}
        self.run_screen = RunScreen()

    def get_default_screen(self) -> Screen:
        return self.run_screen

    def on_mount(self) -> None:
        self._update_title()
        self.set_interval(self.refresh_s, self.action_reload_if_changed)

    def _fingerprint(self) -> tuple[Any, ...]:
        """Cheap aggregate queries that change whenever the run stores something."""
        run = self.archive.get_run(self.run_id)
        # The status as shown: a run killed while watched turns `crashed` (its lock is free).
        status = shown_status(str(attr(run, "status")), archive_folder(self.archive))
        return (self.archive.count_programs(self.run_id), status,
                self.archive.cost_summary(self.run_id).calls,
                self.archive.last_activity(self.run_id),
                self.archive.get_state(self.run_id, IN_FLIGHT_STATE))

    def stages_of(self, program_id: int) -> list[Any]:
        """The per-stage evaluations of a program (read once, they never change)."""
        if program_id not in self._stages:
            self._stages[program_id] = list(self.archive.evaluations(program_id))
        return self._stages[program_id]

    def _update_title(self) -> None:
        data = self.data
        running = sum(data.in_flight().values())
        self.sub_title = (f"{data.run.problem} · {data.run.label} · {data.run.status} · "
                          f"{data.evaluated} evaluated"
                          + (f" · {running} in flight" if running else ""))

    def action_reload_if_changed(self) -> None:
        seen = self._fingerprint()
        if seen != self._seen:
            self._seen = seen
            self.action_reload()

    def action_reload(self) -> None:
        self.data = load_run(self.archive, self.run_id, previous=self.data)
        self._update_title()
        self.run_screen.show(self.data)

    def open_program(self, program_id: int) -> None:
        if program_id in self.data.by_id:
            self.push_screen(ProgramScreen(program_id))

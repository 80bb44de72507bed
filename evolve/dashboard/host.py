"""What the dashboard's screens need of the app that shows them (evolve.dashboard.app), so the
screens depend on this small Protocol rather than on the app that imports them."""

from __future__ import annotations

from typing import Any, Protocol

from evolve.dashboard.data import RunData


class DashboardHost(Protocol):
    data: RunData

    def stages_of(self, program_id: int) -> list[Any]: ...

    def open_program(self, program_id: int) -> None: ...

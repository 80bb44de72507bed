"""What the dashboard's screens need of the app that shows them (evolve.dashboard.app), so the
screens depend on this small Protocol rather than on the app that imports them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from evolve.dashboard.data import RunData

if TYPE_CHECKING:   # db pulls in SQLAlchemy; `evolve --help` must not pay for it
    from db import Evaluation


class DashboardHost(Protocol):
    data: RunData

    def stages_of(self, program_id: int) -> list[Evaluation]: ...

    def open_program(self, program_id: int) -> None: ...

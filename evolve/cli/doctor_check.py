"""One finding of `evolve doctor` (machine, Ray cluster or run directory checks)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Level = Literal["ok", "warn", "fail"]


@dataclass(frozen=True)
class Check:
    name: str
    level: Level
    result: str
    hint: str = ""

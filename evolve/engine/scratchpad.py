"""The scratchpad: every R evaluations, a summary of what worked and what failed, as at most five
recommendations that later prompts include.

With a model it is an LLM summary (prompts/scratchpad.j2). With no model (offline runs) a
plain statistical summary stands in, so prompts and the archive still get advice.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from evolve.config import ScratchpadConfig

_BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+(.*\S)\s*$")


@dataclass
class AttemptRow:
    """One finished proposal as the scratchpad sees it."""

    seq: int
    operator: str
    mutation: str
    valid: bool
    score: float | None
    delta: float | None          # child score minus parent score (None if either is missing)
    error: str = ""
    summary: str = ""            # e.g. the first lines of the model's explanation


@dataclass
class Scratchpad:
    config: ScratchpadConfig
    recommendations: list[str] = field(default_factory=list)
    version: int = 0
    _rows: list[AttemptRow] = field(default_factory=list)

    def record(self, row: AttemptRow) -> None:
        self._rows.append(row)
        del self._rows[:-200]  # only recent history matters

    def due(self, evaluations: int) -> bool:
        """True when a summary is due after `evaluations` finished proposals."""
        return self.config.enabled and evaluations > 0 and evaluations % self.config.interval == 0

    def recent(self) -> list[AttemptRow]:
        return self._rows[-max(self.config.interval, 10):]

    def prompt_rows(self) -> list[dict[str, Any]]:
        return [row.__dict__ for row in self.recent()]

    def parse(self, reply: str) -> list[str]:
        """Recommendations from a model reply: bullet or numbered lines, at most the limit."""
        tips = [m.group(1) for line in reply.splitlines() if (m := _BULLET.match(line))]
        if not tips:  # a model that ignored the format: take non-empty lines
            tips = [line.strip() for line in reply.splitlines() if line.strip()]
        return [tip[:300] for tip in tips[:self.config.max_recommendations]]

    def heuristic(self) -> list[str]:
        """A summary without a model: which mutation kinds improved, which failures recur."""
        rows = self.recent()
        tips: list[str] = []
        gains: dict[str, list[float]] = {}
        for row in rows:
            if row.delta is not None:
                gains.setdefault(f"{row.mutation} ({row.operator})", []).append(row.delta)
        ranked = sorted(((sum(d > 0 for d in ds) / len(ds), name, len(ds))
                         for name, ds in gains.items()), reverse=True)
        if ranked and ranked[0][0] > 0:
            share, name, n = ranked[0]
            tips.append(f"{name} changes improved the parent in {share:.0%} of {n} recent tries; "
                        f"keep building on them.")
        failures = Counter(row.error.split(":")[0] for row in rows if not row.valid and row.error)
        for reason, count in failures.most_common(2):
            tips.append(f"{count} of the last {len(rows)} attempts failed with '{reason}'; avoid "
                        f"changes that cause it.")
        best = max((r for r in rows if r.valid and r.score is not None),
                   key=lambda r: r.score or 0.0, default=None)
        if best is not None and best.summary:
            tips.append(f"The best recent attempt: {best.summary[:200]}")
        return tips[:self.config.max_recommendations]

    def update(self, tips: list[str]) -> None:
        self.recommendations = tips
        self.version += 1

"""The best program so far: tracked as programs are committed, written to RUN_DIR/best/."""

from __future__ import annotations

import math
from pathlib import Path

from evolve.engine.archive_thread import ArchiveThread
from evolve.engine.committed import Committed, proposal_key
from evolve.engine.run_files import write_best


class BestKeeper:
    def __init__(self, archive: ArchiveThread, run_id: int, run_dir: Path, suffix: str,
                 seed: int):
        self.archive = archive
        self.run_id = run_id
        self.run_dir = run_dir
        self.suffix = suffix
        self.seed = seed
        self.best: Committed | None = None

    async def offer(self, item: Committed, write: bool = True) -> None:
        """Keep `item` if it is valid and better (ties: the earlier proposal wins)."""
        if not item.valid or item.score is None or not math.isfinite(item.score):
            return
        if self.best is not None and (item.score < self.best.score or  # type: ignore[operator]
                                      (item.score == self.best.score and item.seq >= self.best.seq)):
            return
        self.best = item
        if write:
            self.write(item)
            if item.seq >= 0:
                await self.archive.add_event(self.run_id, "best", f"new best {item.score:.6g} "
                                             f"(program {item.program_id})",
                                             {"program_id": item.program_id, "score": item.score})

    def write(self, item: Committed) -> None:
        write_best(self.run_dir, self.suffix, item.code, {
            "program_id": item.program_id, "proposal_key": proposal_key(self.seed, item.seq),
            "score": item.score,
            "metrics": item.metrics, "feedback": item.feedback, "island": item.island,
            "generation": item.generation, "operator": item.operator,
            "mutation": item.mutation, "run_id": self.run_id})

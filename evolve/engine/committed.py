"""What the controller remembers of each committed program, and rebuilding it from the archive.

Proposal keys are `"{seed}:{seq}"` (the initial program's is `"initial"`): deterministic, so a
resumed run re-proposes a lost proposal under the same key and the archive refuses a second copy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

INITIAL_KEY = "initial"
INITIAL_SEQ = -1


def proposal_key(seed: int, seq: int) -> str:
    return INITIAL_KEY if seq == INITIAL_SEQ else f"{seed}:{seq}"


def seq_of(key: str | None) -> int | None:
    if key == INITIAL_KEY:
        return INITIAL_SEQ
    if key is None or ":" not in key:
        return None
    return int(key.rsplit(":", 1)[1])


@dataclass
class Committed:
    """A program as the controller remembers it (from this session or from the archive)."""

    seq: int
    program_id: int
    island: int
    code: str
    status: str
    score: float | None
    valid: bool
    generation: int
    metrics: dict[str, Any]
    feedback: str = ""
    error_kind: str | None = None
    error_text: str | None = None
    operator: str | None = None
    mutation: str | None = None
    parent_seq: int | None = None
    second_seq: int | None = None
    cost_usd: float = 0.0
    summary: str = ""
    arm_label: str | None = None
    attempts: int = 1            # replies asked for (LLM calls) or offline tries it took
    # Output excerpts of its last stage, for prompts; None = not loaded yet (after a resume).
    stdout: str | None = ""
    stderr: str | None = ""

    @property
    def evaluated(self) -> bool:
        return self.status == "evaluated"


def committed_from_archive(programs: list[Any]) -> dict[int, Committed]:
    """Committed records by seq from `Archive.programs(run_id)` (rows without a key are skipped)."""
    id_to_seq = {p.id: seq for p in programs if (seq := seq_of(p.proposal_key)) is not None}
    out: dict[int, Committed] = {}
    for p in programs:
        seq = id_to_seq.get(p.id)
        if seq is None:
            continue
        timings = p.timings or {}
        second = timings.get("second_parent_id")
        out[seq] = Committed(
            seq=seq, program_id=p.id, island=p.island, code=p.code, status=p.status,
            score=p.score, valid=p.valid, generation=p.generation, metrics=dict(p.metrics),
            feedback=p.feedback, error_kind=p.error_kind, error_text=p.error_text,
            operator=p.operator, mutation=p.mutation_kind,
            parent_seq=id_to_seq.get(p.parent_id) if p.parent_id else None,
            second_seq=id_to_seq.get(second) if second else None,
            cost_usd=float(timings.get("cost_usd", 0.0)), summary=str(timings.get("summary", "")),
            arm_label=timings.get("arm"), attempts=int(timings.get("attempts") or 1),
            stdout=None, stderr=None)
    return out

"""Recent attempts for a prompt: what was tried from the same parent (else from its island) and
what came of it, so the model does not repeat a failure.

Only programs already ingested when the proposal is planned are read (sequence numbers below
`ingested`): the same ones in every repetition of a run, whatever finished first.
"""

from __future__ import annotations

from collections.abc import Mapping

from evolve.engine.committed import Committed
from evolve.prompting import AttemptView

LOOK_BACK = 200  # proposals searched, newest first: older ones say little about this parent


def recent_attempts(committed: Mapping[int, Committed], ingested: int, parent_seq: int,
                    island: int, limit: int) -> list[AttemptView]:
    """Up to `limit` attempts, oldest first: from the parent itself first, then the newest of
    its island to fill the rest."""
    if limit <= 0:
        return []
    same: list[Committed] = []
    near: list[Committed] = []
    for seq in range(ingested - 1, max(-1, ingested - 1 - LOOK_BACK), -1):
        item = committed.get(seq)
        if item is None or item.seq == parent_seq:  # the parent is shown as itself
            continue
        if item.parent_seq == parent_seq:
            same.append(item)
            if len(same) == limit:
                break
        elif item.island == island and len(near) < limit:
            near.append(item)
    chosen = same + near[:limit - len(same)]
    chosen.sort(key=lambda item: item.seq)
    # An offline operator's proposals are named by the operator ("tune"), not by "offline".
    return [AttemptView(mutation=(item.operator if item.mutation == "offline" else
                                  item.mutation) or "", outcome=outcome(item, committed),
                        summary=item.summary, same_parent=item.parent_seq == parent_seq)
            for item in chosen]


def outcome(item: Committed, committed: Mapping[int, Committed]) -> str:
    """Its score (and change against its own parent), or its failure kind and first line."""
    if item.status == "duplicate":
        return "a duplicate of an earlier program (not evaluated)"
    reason = (item.error_text or "").strip().splitlines()[0][:160] if item.error_text else ""
    failure = f"{item.error_kind}: {reason}" if reason else str(item.error_kind)
    if item.status == "rejected":
        return f"reply not usable ({failure})"
    if not item.valid or item.score is None:
        return f"invalid ({failure})"
    parent = committed.get(item.parent_seq) if item.parent_seq is not None else None
    if parent is not None and parent.valid and parent.score is not None:
        return f"score {item.score:.6g} ({item.score - parent.score:+.4g} vs its parent)"
    return f"score {item.score:.6g}"

"""Scores of a total cost: the ADRS Leaderboard's 0-100 scale, and the share of the gap from
direct edges to the lower bound that a program closed."""

from __future__ import annotations

# The leaderboard's scale: 0 at $1199.00 (about the cost of sending every partition on the
# direct edge, $1199.17), 100 at $626.24 or less.
LEADERBOARD_ZERO = 1199.00
LEADERBOARD_FULL = 626.24


def leaderboard_score(total: float) -> float:
    clamped = min(LEADERBOARD_ZERO, max(LEADERBOARD_FULL, total))
    return 100 * (LEADERBOARD_ZERO - clamped) / (LEADERBOARD_ZERO - LEADERBOARD_FULL)


def share_of_gap(total: float, direct: float, bound: float) -> float:
    """0 at the direct edges' cost, 1 at the lower bound (negative when worse than direct)."""
    return (direct - total) / (direct - bound)

"""One way to show money everywhere (progress lines, live view, dashboard, `show`, tables).

A call whose price is unknown is never shown as $0: with only unknown prices the cost is
"unknown", with some known ones "$0.1200 + 67 calls of unknown price". Offline operators make no
calls, so their programs cost a true $0.0000.
"""

from __future__ import annotations


def cost_text(known_usd: float | None, unknown_calls: int = 0, digits: int = 4) -> str:
    """Dollars for a sentence or a summary row."""
    known = known_usd or 0.0
    if unknown_calls <= 0:
        return f"${known:.{digits}f}"
    calls = f"{unknown_calls} call{'' if unknown_calls == 1 else 's'} of unknown price"
    if known == 0:
        return f"unknown ({calls})"
    return f"${known:.{digits}f} + {calls}"


def cost_cell(known_usd: float | None, unknown_calls: int = 0, digits: int = 4) -> str:
    """Dollars for a narrow table cell (no "$"; the column header says it): "0.0120",
    "unknown", or "0.0120+?" when some of the calls had no known price."""
    known = known_usd or 0.0
    if unknown_calls <= 0:
        return f"{known:.{digits}f}"
    return "unknown" if known == 0 else f"{known:.{digits}f}+?"

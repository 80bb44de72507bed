"""Where a program may change: its EVOLVE-BLOCK regions. The one parser that the LLM path
(evolve/patch/mutation.py), the offline operators and the novelty filter all use, so they agree.

Rules: a region is the lines strictly between a START marker line and the next END marker line.
A START inside an open region is part of it; an END with no open region is ignored; a START
whose END is missing runs to the end of the program (the author forgot END: the intent is
still that the code after START evolves, and nothing before it). A program with no START marker
is editable as a whole.
"""

from __future__ import annotations

from evolve.problem.spec import EVOLVE_BLOCK_END, EVOLVE_BLOCK_START


def evolve_block_ranges(code: str) -> list[tuple[int, int]] | None:
    """0-based [start, end) line ranges of the regions; None = no markers (all editable)."""
    lines = code.split("\n")
    ranges: list[tuple[int, int]] = []
    start: int | None = None
    for i, line in enumerate(lines):
        if start is None and EVOLVE_BLOCK_START in line:
            start = i + 1
        elif start is not None and EVOLVE_BLOCK_END in line:
            ranges.append((start, i))
            start = None
    if start is not None:
        ranges.append((start, len(lines)))
    return ranges or None


def marker_count(code: str) -> tuple[int, int]:
    """(START lines, END lines): a child must keep its parent's markers."""
    lines = code.split("\n")
    return (sum(EVOLVE_BLOCK_START in line for line in lines),
            sum(EVOLVE_BLOCK_END in line for line in lines))

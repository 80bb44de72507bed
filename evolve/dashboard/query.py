"""Filtering and sorting the programs table.

The search box takes space-separated terms, all of which must match:
- `island:2`, `gen:3`, `operator:gpt`, `mutation:diff`, `status:failed`, `kind:timeout`
  (a field and a value; text fields match by substring, numbers exactly). `status` matches
  what the table's status column shows (`timeout`, `duplicate`, `evaluated`...) and the
  verdicts `failed`/`invalid`, `valid`/`ok`;
- `score>0.9`, `score<=1`, `cost>0.01`, `gen>=5` (comparisons on numbers);
- `valid` or `failed`;
- any other word matches the id, operator, mutation kind, status, error kind or stage.
"""

from __future__ import annotations

import operator as op
import re
from collections.abc import Callable, Sequence
from typing import Any

from evolve.dashboard.data import ProgramView

# Column key -> how a program is sorted by it (None values last whatever the direction).
SORT_KEYS: dict[str, Callable[[ProgramView], Any]] = {
    "id": lambda p: p.id,
    "score": lambda p: p.score,
    "island": lambda p: p.island,
    "generation": lambda p: p.generation,
    "operator": lambda p: p.operator,
    "mutation": lambda p: p.mutation_kind,
    "status": lambda p: p.status,
    "cost": lambda p: p.cost_usd,
}

# The examples the search box shows; tests run each against a real run.
SEARCH_EXAMPLES = ("score>0.5", "island:1", "operator:gpt", "status:failed")

_TEXT_FIELDS: dict[str, Callable[[ProgramView], str]] = {
    "operator": lambda p: p.operator, "op": lambda p: p.operator,
    "mutation": lambda p: p.mutation_kind, "mut": lambda p: p.mutation_kind,
    # The table's status column shows the error kind when there is one, else the stored status.
    "status": lambda p: f"{p.status} {p.error_kind}", "kind": lambda p: p.error_kind,
    "stage": lambda p: p.stage_reached,
}
_NUMBER_FIELDS: dict[str, Callable[[ProgramView], float | None]] = {
    "id": lambda p: p.id, "score": lambda p: p.score, "cost": lambda p: p.cost_usd,
    "island": lambda p: p.island, "gen": lambda p: p.generation,
    "generation": lambda p: p.generation, "parent": lambda p: p.parent_id,
}
_VERDICTS: dict[str, Callable[[ProgramView], bool]] = {
    "failed": lambda p: p.failed, "invalid": lambda p: p.failed,
    "valid": lambda p: p.valid, "ok": lambda p: p.valid,
}
_COMPARE = {">=": op.ge, "<=": op.le, ">": op.gt, "<": op.lt, "=": op.eq, ":": op.eq}
_TERM = re.compile(r"^([a-z_]+)(>=|<=|>|<|=|:)(.+)$")


class QueryError(ValueError):
    """A search term that cannot be understood; the message shows a correct form."""


def _number(text: str, term: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise QueryError(f"'{term}': '{text}' is not a number (e.g. score>0.5)") from None


def _term_matcher(term: str) -> Callable[[ProgramView], bool]:
    lowered = term.lower()
    if lowered == "valid":
        return lambda p: p.valid
    if lowered in ("failed", "invalid"):
        return lambda p: p.failed
    found = _TERM.match(lowered)
    if found:
        name, sign, value = found.groups()
        if name == "status" and sign in (":", "=") and value in _VERDICTS:
            return _VERDICTS[value]
        if name in _TEXT_FIELDS and sign in (":", "="):
            get_text = _TEXT_FIELDS[name]
            return lambda p: value in get_text(p).lower()
        if name in _NUMBER_FIELDS:
            get_number, compare, target = _NUMBER_FIELDS[name], _COMPARE[sign], \
                _number(value, term)
            return lambda p: (v := get_number(p)) is not None and compare(float(v), target)
        fields = ", ".join(sorted(set(_TEXT_FIELDS) | set(_NUMBER_FIELDS)))
        raise QueryError(f"'{term}': unknown field '{name}' (fields: {fields})")

    def anywhere(p: ProgramView) -> bool:
        return any(lowered in text.lower() for text in (
            str(p.id), p.operator, p.mutation_kind, p.status, p.error_kind, p.stage_reached))
    return anywhere


def filter_programs(programs: Sequence[ProgramView], query: str) -> list[ProgramView]:
    """The programs matching every term of `query` (all of them for an empty query)."""
    matchers = [_term_matcher(term) for term in query.split()]
    return [p for p in programs if all(match(p) for match in matchers)]


def sort_key(column: str, descending: bool) -> Callable[[ProgramView], tuple[Any, ...]]:
    """A key for sorting by `column` in the given direction that keeps programs without a value
    (no score yet) last either way; ties go by id in the same direction."""
    get = SORT_KEYS[column]

    def key(program: ProgramView) -> tuple[Any, ...]:
        value = get(program)
        present = value is not None
        rank = int(present) if descending else int(not present)
        return (rank, value if present else 0, program.id)
    return key


def sort_programs(programs: Sequence[ProgramView], column: str,
                  descending: bool = False) -> list[ProgramView]:
    """Sorted by a column; programs without a value (no score yet) always come last."""
    return sorted(programs, key=sort_key(column, descending), reverse=descending)

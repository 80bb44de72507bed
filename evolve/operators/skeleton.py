"""A program split into its code skeleton and the literal values that parameterise it.

The literals are the numbers and booleans on lines strictly inside an EVOLVE-BLOCK, found with
`ast` (subscript indices and f-string parts excluded, as for `tune`); a signed number such as
`-0.5` is one literal. The skeleton is the program text with every literal replaced by a
placeholder that names its type, so two programs that differ only in those values share a
skeleton, and a value changing type (2 -> 2.0) makes another skeleton. Rendering writes new
values back by exact source positions: every other byte of the program is kept.
"""

from __future__ import annotations

import ast
import math
from dataclasses import dataclass
from functools import cached_property, lru_cache

from evolve.operators.offline import Edit, NoChange, Source, _in_fstring, _is_index, _parents

Value = int | float | bool


@dataclass(frozen=True)
class Literal:
    kind: type  # int, float or bool
    value: Value
    edit: Edit  # where the literal's text is (the edit's text is unused)


@dataclass(frozen=True)
class Shape:
    """`key` identifies the code around the literals; `literals` are in source order.
    What comparing programs needs, without the source and its syntax tree (light enough to
    keep for every program of a long run)."""

    key: str
    literals: tuple[Literal, ...]

    # Cached: a shape never changes, and `optimise` reads these for every program of the
    # archive on every proposal.
    @cached_property
    def values(self) -> tuple[Value, ...]:
        return tuple(lit.value for lit in self.literals)

    @cached_property
    def typed_values(self) -> tuple[tuple[str, Value], ...]:
        """(type name, value) of each literal: `1` and `1.0` and `True` stay apart."""
        return tuple((lit.kind.__name__, lit.value) for lit in self.literals)


@dataclass(frozen=True)
class Skeleton(Shape):
    """A program's shape with its source, to write new values into it."""

    source: Source

    def render(self, values: tuple[Value, ...] | list[Value]) -> str:
        """The program with `values` written in place of its literals (checked to parse);
        a literal whose value is unchanged keeps its text (`0.40` stays `0.40`)."""
        edits = [Edit(lit.edit.line, lit.edit.col, lit.edit.end_line, lit.edit.end_col,
                      format_value(lit.kind, value))
                 for lit, value in zip(self.literals, values, strict=True)
                 if value != lit.value or type(value) is not type(lit.value)]
        return self.source.apply(edits)


def format_value(kind: type, value: Value) -> str:
    """Python text for a literal of type `kind`: floats keep 6 significant digits and always
    read back as floats; a negative number is written with its sign (valid wherever the
    literal stood, since the literal itself was a whole operand)."""
    if kind is bool:
        return "True" if value else "False"
    if kind is int:
        return str(int(value))
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"not a finite float: {number}")
    text = f"{number:.6g}"
    if not any(c in text for c in ".en"):
        text += ".0"
    return text


def _literal_of(node: ast.AST) -> tuple[type, Value] | None:
    if isinstance(node, ast.Constant):
        if type(node.value) is bool:
            return bool, node.value
        if type(node.value) in (int, float) and math.isfinite(node.value):
            return type(node.value), node.value
        return None
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        inner = node.operand
        if isinstance(inner, ast.Constant) and type(inner.value) in (int, float) \
                and math.isfinite(inner.value):
            sign = -1 if isinstance(node.op, ast.USub) else 1
            return type(inner.value), sign * inner.value
    return None


def _find(source: Source) -> list[tuple[ast.AST, type, Value]]:
    parents = _parents(source.tree)
    found: list[tuple[ast.AST, type, Value]] = []
    claimed: set[int] = set()  # constants already taken as part of a signed literal
    for node in ast.walk(source.tree):  # breadth first: a UnaryOp comes before its operand
        if id(node) in claimed:
            continue
        parsed = _literal_of(node)
        if parsed is None or not source.node_inside(node):
            continue
        if _in_fstring(node, parents) or _is_index(node, parents):
            continue
        if isinstance(node, ast.UnaryOp):
            claimed.add(id(node.operand))
        found.append((node, *parsed))
    found.sort(key=lambda item: (item[0].lineno, item[0].col_offset))  # type: ignore[attr-defined]
    return found


@lru_cache(maxsize=4096)
def skeleton_of(code: str) -> Skeleton:
    """The skeleton and literals of `code`; raises NoChange when it does not parse."""
    source = Source(code)
    literals = []
    pieces, cursor = [], 0
    for node, kind, value in _find(source):
        edit = source.node_edit(node, "")
        literals.append(Literal(kind, value, edit))
        start = source.line_starts[edit.line - 1] + edit.col
        end = source.line_starts[edit.end_line - 1] + edit.end_col
        pieces.append(code[cursor:start])
        pieces.append(f"\x00{kind.__name__}\x00")
        cursor = end
    pieces.append(code[cursor:])
    return Skeleton("".join(pieces), tuple(literals), source)


def try_skeleton(code: str) -> Skeleton | None:
    try:
        return skeleton_of(code)
    except NoChange:
        return None


__all__ = ["Literal", "NoChange", "Skeleton", "Value", "format_value", "skeleton_of",
           "try_skeleton"]

"""`reshape`: structural rewrites around comparisons that give `optimise` something to tune.

A hand-written policy often holds a decision rule with no constant in it (`if needed >= left:
return ON_DEMAND`), so tuning constants cannot move it. Every rewrite here targets an ordering
comparison (`<`, `<=`, `>`, `>=`) inside an EVOLVE-BLOCK:

- scale one side: `a >= b` -> `a >= b * 1.0` (or `a * 1.0 >= b`);
- offset one side: `a >= b` -> `a + 0 >= b` (or `a >= b + 0`): an offset on either side covers
  both signs, while `optimise` searches an int literal on its magnitude;
- move a guard clause: `if <test with an ordering comparison>: ... return X` (no else) swaps
  places with other statements of the same block, so another rule is checked first (`if spot:
  return SPOT` before the on-demand fallback), alone or with a neutral scale or offset on its
  comparison (a moved rule usually wants its threshold moved too: one step fewer to a tunable
  skeleton). The statements it crosses must not assign a name its test reads, at least one of
  them must be a compound statement (moving past assignments alone changes nothing), and a
  final `return` stays last.

Scales and offsets are written at their neutral values (1.0, 0), so the child behaves exactly
as its parent and makes a new skeleton whose new literals `optimise` then tunes; a side that
already ends in a scale (or an offset) does not get a second one. A program without an
ordering comparison is never changed. Rewrites are by exact source positions (every other
byte is kept), the choice is a function of the proposal's RNG, and with the run's history
attached a rewrite the run already proposed is skipped (evolve/operators/seen.py).

`structure` (the default offline set's structural arm) pools `swap`'s swaps with these
rewrites, the latter only for programs with fewer than `max_literals` literals.
"""

from __future__ import annotations

import ast
import random
from collections.abc import Callable, Iterator

from evolve.operators.offline import (
    Edit,
    NoChange,
    Source,
    SwapOperator,
    _in_fstring,
    _parents,
    first_unseen,
)
from evolve.operators.seen import SeenPrograms
from evolve.operators.skeleton import try_skeleton

_ORDERING = (ast.Lt, ast.LtE, ast.Gt, ast.GtE)
# Operands that need no parentheses before `* 1.0` or `+ 0`.
_ATOMS = (ast.Name, ast.Attribute, ast.Call, ast.Subscript, ast.Constant)

# Statements a guard moving past changes nothing (they cannot return).
_SIMPLE = (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Expr, ast.Pass, ast.Import,
           ast.ImportFrom, ast.Global, ast.Nonlocal)

Rewrite = Callable[[], str]  # builds the child; SyntaxError when it does not parse


def _is_number(node: ast.AST) -> bool:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        node = node.operand
    return isinstance(node, ast.Constant) and type(node.value) in (int, float)


def _scaled(node: ast.AST) -> bool:
    return isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult) and (
        _is_number(node.left) or _is_number(node.right))


def _offset(node: ast.AST) -> bool:
    return isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Sub) and (
        _is_number(node.left) or _is_number(node.right))


def _ordering_comparisons(source: Source) -> list[ast.Compare]:
    parents = _parents(source.tree)
    found = [node for node in ast.walk(source.tree)
             if isinstance(node, ast.Compare) and len(node.ops) == 1
             and isinstance(node.ops[0], _ORDERING) and source.node_inside(node)
             and not _in_fstring(node, parents)
             and not any(isinstance(side, ast.Constant) and isinstance(side.value, str | bytes)
                         for side in (node.left, node.comparators[0]))]
    found.sort(key=lambda n: (n.lineno, n.col_offset))
    return found


def _side_rewrites(source: Source, compare: ast.Compare) -> Iterator[Edit]:
    for side in (compare.left, compare.comparators[0]):
        if _is_number(side):
            continue  # already a literal `optimise` tunes
        text = source.segment(source.node_edit(side, ""))
        wrapped = text if isinstance(side, _ATOMS) else f"({text})"
        if not _scaled(side):
            yield source.node_edit(side, f"{wrapped} * 1.0")
        if not _offset(side):
            yield source.node_edit(side, f"{wrapped} + 0")


def _names_read(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def _names_stored(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)
            and isinstance(n.ctx, ast.Store | ast.Del)}


def _is_guard(node: ast.stmt) -> bool:
    return (isinstance(node, ast.If) and not node.orelse and isinstance(node.body[-1], ast.Return)
            and any(isinstance(n, ast.Compare) and any(isinstance(op, _ORDERING) for op in n.ops)
                    for n in ast.walk(node.test)))


def _whole_lines(source: Source, node: ast.stmt) -> bool:
    """The statement alone on its lines (no `;` neighbours), so it can move by lines."""
    first = source.lines[node.lineno - 1]
    last = source.lines[node.end_lineno - 1]  # type: ignore[operator]
    after = last.encode()[node.end_col_offset:].decode(errors="replace").strip()  # type: ignore[misc]
    return first[:source.char_col(node.lineno, node.col_offset)].strip() == "" and (
        after == "" or after.startswith("#"))


def _guard_moves(source: Source) -> Iterator[list[Edit]]:
    for parent in ast.walk(source.tree):
        for field in ("body", "orelse", "finalbody"):
            body = getattr(parent, field, None)
            if not isinstance(body, list) or len(body) < 2 or not isinstance(body[0], ast.stmt):
                continue
            if not all(source.node_inside(s) and _whole_lines(source, s) for s in body):
                continue
            last = len(body) - 1 if isinstance(body[-1], ast.Return) else len(body)
            for index, guard in enumerate(body):
                if index >= last or not _is_guard(guard):
                    continue
                reads = _names_read(guard.test)
                for target in range(last + 1):
                    if target in (index, index + 1):
                        continue  # same place
                    crossed = body[target:index] if target < index else body[index + 1:target]
                    if any(_names_stored(s) & reads for s in crossed):
                        continue
                    if all(isinstance(s, _SIMPLE) for s in crossed):
                        continue  # past assignments only: the same behaviour
                    for offset in [None, *_guard_offsets(source, guard)]:
                        edits = _move(source, guard, body, target, offset)
                        if edits is not None:
                            yield edits


def _guard_offsets(source: Source, guard: ast.If) -> list[Edit]:
    """Neutral scales and offsets on either side of the guard's first ordering comparison: a
    guard that moved usually wants its threshold moved too, so the move comes with one to
    tune (a scale reaches a margin proportional to the operand in one step)."""
    for node in ast.walk(guard.test):
        if isinstance(node, ast.Compare) and len(node.ops) == 1 and isinstance(
                node.ops[0], _ORDERING):
            return list(_side_rewrites(source, node))
    return []


def _move(source: Source, guard: ast.stmt, body: list[ast.stmt], target: int,
          offset: Edit | None = None) -> list[Edit] | None:
    """Edits that cut the guard's lines and insert them before body[target] (or after the
    last statement when target == len(body)); same block, so the same indentation. With
    `offset`, an edit inside the guard, the moved text carries it."""
    first, end = guard.lineno, guard.end_lineno  # type: ignore[assignment]
    text = "\n".join(source.lines[first - 1:end]) + "\n"
    if offset is not None:
        base = source.line_starts[first - 1]
        start = source.line_starts[offset.line - 1] + offset.col - base
        stop = source.line_starts[offset.end_line - 1] + offset.end_col - base
        text = text[:start] + offset.text + text[stop:]
    cut = Edit(first, 0, end + 1, 0, "")  # type: ignore[operator]
    if target < len(body):
        line = body[target].lineno
    else:
        line = body[-1].end_lineno + 1  # type: ignore[operator]
        if line > len(source.lines):
            return None  # the last line of an unmarked program: nothing to insert before
    return [cut, Edit(line, 0, line, 0, text)]


class ReshapeOperator:
    """A neutral scale or offset on a comparison, or a guard clause moved (see above)."""

    name = "reshape"

    def __init__(self) -> None:
        self.seen = SeenPrograms(self.name)

    def attach_history(self, history, window) -> None:  # noqa: ANN001 (HistoryOperator)
        self.seen.attach(history, window)

    def rewrites(self, code: str) -> list[list[Edit]]:
        """Every rewrite of `code` as a list of edits, in a fixed order."""
        try:
            source = Source(code)
        except NoChange:
            return []
        found = [[edit] for compare in _ordering_comparisons(source)
                 for edit in _side_rewrites(source, compare)]
        found.extend(_guard_moves(source))
        return found

    def propose(self, code: str, rng: random.Random, *, seq: int | None = None) -> str:
        rewrites = self.rewrites(code)
        if not rewrites:
            raise NoChange(self.nothing)
        source = Source(code)
        order = rng.sample(rewrites, len(rewrites))
        return first_unseen((lambda e=edits: source.apply(e) for edits in order), self.seen,
                            seq, self.name)

    nothing = "no ordering comparison inside the EVOLVE-BLOCK"


class StructureOperator(ReshapeOperator):
    """The structural arm of the default offline set: `swap`'s swaps and `reshape`'s rewrites
    in one pool (one arm, so `optimise` keeps half the turns), each tried once per program.

    Below `max_literals` only: a program with that many already gives `optimise` plenty to
    tune (circle_packing's has 26), and a lineage of reshapes cannot pile up scales without
    end; there it proposes swaps alone, like `swap`."""

    name = "structure"
    nothing = "no comparison, min/max or sort call inside the EVOLVE-BLOCK"

    def __init__(self, max_literals: int = 12) -> None:
        super().__init__()
        self.max_literals = max_literals

    def rewrites(self, code: str) -> list[list[Edit]]:
        try:
            source = Source(code)
        except NoChange:
            return []
        found = [[edit] for edit in SwapOperator().candidates(source)]
        skeleton = try_skeleton(code)
        if skeleton is None or len(skeleton.literals) < self.max_literals:
            found.extend(super().rewrites(code))
        return found

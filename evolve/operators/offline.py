"""Built-in mutation operators that need no LLM: numeric tuning and structural swaps.

Both locate their targets with `ast` (and `tokenize` for comparison operators) over the whole
program, keep only targets lying on lines strictly inside an EVOLVE-BLOCK, and rewrite by exact
source positions, so every byte outside the targets, and all text outside the block, is kept.
A program without markers is evolvable as a whole.
"""

from __future__ import annotations

import ast
import io
import math
import random
import tokenize
from dataclasses import dataclass
from functools import lru_cache

from evolve.operators.seen import SeenPrograms
from evolve.patch.blocks import evolve_block_ranges
from evolve.patch.novelty import code_hash


class NoChange(Exception):
    """The operator found nothing it can change in this program."""


@dataclass(frozen=True)
class Edit:
    """Replace text between two (line, char column) positions; lines are 1-based."""

    line: int
    col: int
    end_line: int
    end_col: int
    text: str


class Source:
    """A program with its EVOLVE-BLOCK line ranges and position helpers."""

    def __init__(self, code: str) -> None:
        self.code = code
        self.lines = code.split("\n")
        self.line_starts: list[int] = []
        offset = 0
        for line in self.lines:
            self.line_starts.append(offset)
            offset += len(line) + 1
        self.blocks = self._find_blocks()
        try:
            self.tree = ast.parse(code)
        except SyntaxError as exc:
            raise NoChange(f"the program does not parse ({exc.msg}, line {exc.lineno})") from exc

    def _find_blocks(self) -> list[tuple[int, int]]:
        """Editable line ranges (1-based, inclusive), from the shared EVOLVE-BLOCK parser."""
        ranges = evolve_block_ranges(self.code)
        if ranges is None:
            return [(1, len(self.lines))]
        return [(start + 1, end) for start, end in ranges if end > start]

    def inside(self, line: int, end_line: int) -> bool:
        return any(first <= line and end_line <= last for first, last in self.blocks)

    def node_inside(self, node: ast.AST) -> bool:
        end = getattr(node, "end_lineno", None)
        return end is not None and self.inside(node.lineno, end)  # type: ignore[attr-defined]

    def char_col(self, line: int, byte_col: int) -> int:
        """ast columns count UTF-8 bytes; edits count characters."""
        return len(self.lines[line - 1].encode()[:byte_col].decode(errors="replace"))

    def node_edit(self, node: ast.AST, text: str) -> Edit:
        return Edit(node.lineno, self.char_col(node.lineno, node.col_offset),  # type: ignore[attr-defined]
                    node.end_lineno, self.char_col(node.end_lineno, node.end_col_offset),  # type: ignore[attr-defined]
                    text)

    def segment(self, edit: Edit) -> str:
        start = self.line_starts[edit.line - 1] + edit.col
        return self.code[start:self.line_starts[edit.end_line - 1] + edit.end_col]

    def apply(self, edits: list[Edit]) -> str:
        """The program with `edits` applied (non-overlapping), checked to parse."""
        code = self.code
        spans = sorted(((self.line_starts[e.line - 1] + e.col,
                         self.line_starts[e.end_line - 1] + e.end_col, e.text) for e in edits),
                       reverse=True)
        for start, end, text in spans:
            code = code[:start] + text + code[end:]
        ast.parse(code)  # raises SyntaxError: callers treat that edit as inapplicable
        return code


@lru_cache(maxsize=64)
def _analysed(code: str, operator: str) -> tuple[Source, tuple]:
    """A program's source map and an operator's targets, cached: an engine proposes many
    children of the same parent, and tests mutate one program a thousand times."""
    source = Source(code)
    return source, tuple(OFFLINE_OPERATORS[operator]().candidates(source))


def _parents(tree: ast.AST) -> dict[ast.AST, ast.AST]:
    return {child: parent for parent in ast.walk(tree) for child in ast.iter_child_nodes(parent)}


def _in_fstring(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    # Positions of expressions nested in f-strings are unreliable before Python 3.12.
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.JoinedStr):
            return True
    return False


def _is_index(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    """Subscript indices (`x[0]`, `a[1:3]`) are structure, not tunable parameters."""
    child, parent = node, parents.get(node)
    while isinstance(parent, ast.Slice | ast.Tuple | ast.UnaryOp):
        child, parent = parent, parents.get(parent)
    return isinstance(parent, ast.Subscript) and parent.slice is child


def _format_float(value: float) -> str:
    text = f"{value:.4g}"
    return text if any(c in text for c in ".e") else text + ".0"


class TuneOperator:
    """Perturbs numeric constants: log-normal factors for floats, small steps for ints."""

    name = "tune"

    def __init__(self, sigma: float = 0.25, int_step: float = 0.15) -> None:
        self.sigma = sigma  # std-dev of the log of the float factor
        self.int_step = int_step  # relative size of an int step (at least 1)

    def candidates(self, source: Source) -> list[ast.Constant]:
        parents = _parents(source.tree)
        found = []
        for node in ast.walk(source.tree):
            if (isinstance(node, ast.Constant) and type(node.value) in (int, float)
                    and source.node_inside(node) and math.isfinite(node.value)
                    and not _in_fstring(node, parents) and not _is_index(node, parents)):
                found.append(node)
        found.sort(key=lambda n: (n.lineno, n.col_offset))
        return found

    def perturb(self, value: int | float, rng: random.Random) -> int | float:
        if isinstance(value, float):
            if value == 0.0:
                return rng.choice((-1, 1)) * 10 ** rng.uniform(-4, -1)
            return value * math.exp(rng.gauss(0.0, self.sigma))
        step = max(1, round(abs(value) * self.int_step * abs(rng.gauss(0.0, 1.0))))
        new = value + rng.choice((-1, 1)) * step
        # Keep the sign: a positive count stays >= 1, zero may only grow to 1.
        if value > 0:
            new = max(1, new)
        elif value == 0:
            new = 1
        return new

    def propose(self, code: str, rng: random.Random) -> str:
        source, nodes = _analysed(code, self.name)
        if not nodes:
            raise NoChange("no numeric constants inside the EVOLVE-BLOCK")
        for _ in range(20):
            count = min(len(nodes), 1 + (rng.random() < 0.4) + (rng.random() < 0.15))
            edits = []
            for node in rng.sample(list(nodes), count):
                new = self.perturb(node.value, rng)
                if not math.isfinite(new):
                    continue
                text = _format_float(new) if isinstance(new, float) else str(new)
                edit = source.node_edit(node, text)
                if text != source.segment(edit) and (
                        isinstance(new, int) or float(text) != node.value):
                    edits.append(edit)
            if edits:
                try:
                    return source.apply(edits)
                except SyntaxError:
                    continue
        raise NoChange("could not find a perturbation that changes the program")


_COMPARISON_SWAPS = {"<": "<=", "<=": "<", ">": ">=", ">=": ">"}
_NAME_SWAPS = {"min": "max", "max": "min"}
_ATTRIBUTE_SWAPS = {"min": "max", "max": "min", "argmin": "argmax", "argmax": "argmin",
                    "minimum": "maximum", "maximum": "minimum", "nanmin": "nanmax",
                    "nanmax": "nanmin"}


class SwapOperator:
    """Structural swaps: `<`↔`<=`, `>`↔`>=`, min↔max, sort direction.

    Given the run's history (`attach_history`), it skips swaps whose result the run has
    already proposed (evolve/operators/seen.py) and declines when every swap was tried."""

    name = "swap"

    def __init__(self) -> None:
        self.seen = SeenPrograms(self.name)

    def attach_history(self, history, window) -> None:  # noqa: ANN001 (HistoryOperator)
        self.seen.attach(history, window)

    def candidates(self, source: Source) -> list[Edit]:
        edits = self._comparison_edits(source)
        for node in ast.walk(source.tree):
            if isinstance(node, ast.Call) and source.node_inside(node):
                edits.extend(self._call_edits(source, node))
        return edits

    def _comparison_edits(self, source: Source) -> list[Edit]:
        # Any `<`, `<=`, `>`, `>=` token is a comparison in Python (f-strings are one token).
        edits = []
        try:
            for tok in tokenize.generate_tokens(io.StringIO(source.code).readline):
                if tok.type == tokenize.OP and tok.string in _COMPARISON_SWAPS and source.inside(
                        tok.start[0], tok.end[0]):
                    edits.append(Edit(*tok.start, *tok.end, _COMPARISON_SWAPS[tok.string]))
        except (tokenize.TokenError, SyntaxError):
            return []  # the ast-based swaps still apply
        return edits

    def _call_edits(self, source: Source, call: ast.Call) -> list[Edit]:
        func = call.func
        if isinstance(func, ast.Name) and func.id in _NAME_SWAPS:
            return [source.node_edit(func, _NAME_SWAPS[func.id])]
        if isinstance(func, ast.Attribute) and func.attr in _ATTRIBUTE_SWAPS:
            end_col = source.char_col(func.end_lineno, func.end_col_offset)  # type: ignore[arg-type]
            return [Edit(func.end_lineno, end_col - len(func.attr), func.end_lineno, end_col,  # type: ignore[arg-type]
                         _ATTRIBUTE_SWAPS[func.attr])]
        is_sort = (isinstance(func, ast.Name) and func.id == "sorted") or (
            isinstance(func, ast.Attribute) and func.attr == "sort")
        if not is_sort or any(k.arg is None for k in call.keywords):
            return []
        for keyword in call.keywords:
            if keyword.arg == "reverse":
                value = keyword.value
                if isinstance(value, ast.Constant) and isinstance(value.value, bool):
                    return [source.node_edit(value, str(not value.value))]
                return [source.node_edit(value, f"not ({ast.unparse(value)})")]
        return [self._add_reverse(source, call)]

    def _add_reverse(self, source: Source, call: ast.Call) -> Edit:
        """Insert `reverse=True` just before the call's closing parenthesis."""
        line = call.end_lineno
        col = source.char_col(line, call.end_col_offset) - 1  # type: ignore[arg-type]
        last = max([*call.args, *call.keywords], key=lambda n: (n.end_lineno, n.end_col_offset),
                   default=None)
        if last is None:
            text = "reverse=True"
        else:
            start = source.line_starts[last.end_lineno - 1] + source.char_col(  # type: ignore[operator]
                last.end_lineno, last.end_col_offset)  # type: ignore[arg-type]
            between = source.code[start:source.line_starts[line - 1] + col]  # type: ignore[operator]
            text = " reverse=True" if "," in between else ", reverse=True"
        return Edit(line, col, line, col, text)  # type: ignore[arg-type]

    def propose(self, code: str, rng: random.Random, *, seq: int | None = None) -> str:
        source, edits = _analysed(code, self.name)
        if not edits:
            raise NoChange("no comparison, min/max or sort call inside the EVOLVE-BLOCK")
        return first_unseen((lambda e=edit: source.apply([e]) for edit in
                             rng.sample(list(edits), len(edits))), self.seen, seq, "swap")


def first_unseen(children, seen, seq: int | None, what: str) -> str:  # noqa: ANN001
    """The first child (from callables that build one, SyntaxError = inapplicable) whose code
    the run has not proposed yet; NoChange when there is none."""
    avoid = seen.hashes(seq)
    valid = 0
    for build in children:
        try:
            child = build()
        except SyntaxError:
            continue
        valid += 1
        if code_hash(child) not in avoid:
            seen.remember(seq, child)
            return child
    if valid:
        raise NoChange(f"every {what} of this program was already proposed in this run")
    raise NoChange(f"no {what} keeps the program valid")


OFFLINE_OPERATORS: dict[str, type[TuneOperator] | type[SwapOperator]] = {
    "tune": TuneOperator, "swap": SwapOperator}


def make_offline_operator(name: str) -> TuneOperator | SwapOperator:
    try:
        return OFFLINE_OPERATORS[name]()
    except KeyError:
        raise ValueError(f"unknown offline operator {name!r}; choose from "
                         f"{', '.join(OFFLINE_OPERATORS)}") from None

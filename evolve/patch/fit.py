"""Fitting code from a reply to the parent: which child program it means, if any.

Models give the new program in several shapes: the whole program with its EVOLVE-BLOCK markers,
the block with its markers but without the module header, the block's body alone, or the whole
program without markers. Each becomes the parent's code outside the block (kept exactly as it
was) around the new block. A shape whose meaning is not clear is refused with the reason:
changed code outside the block, marker lines that do not match, or a fragment that is not a
complete block (a snippet quoted in an explanation or a refusal never replaces the block).
"""

from __future__ import annotations

import ast
import difflib
import functools
import re

from evolve.patch.blocks import evolve_block_ranges, marker_count
from evolve.patch.elision import check_no_placeholders
from evolve.patch.errors import MutationError
from evolve.problem.spec import EVOLVE_BLOCK_END, EVOLVE_BLOCK_START

_DEFINED = re.compile(r"^(?:async\s+def|def|class)\s+(\w+)|^(\w+)\s*(?::[^=]*)?=[^=]",
                      re.MULTILINE)
_IDENTIFIER = re.compile(r"[A-Za-z_]\w*")


# ---------------------------------------------------------------- names a block must keep

def _bound_names(statement: ast.stmt) -> set[str]:
    """Names a top-level statement binds (definitions, assignments, imports)."""
    names: set[str] = set()
    if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        names.add(statement.name)
    elif isinstance(statement, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
        targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
        for target in targets:
            names |= {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}
    elif isinstance(statement, (ast.Import, ast.ImportFrom)):
        names |= {(a.asname or a.name).split(".")[0] for a in statement.names}
    elif isinstance(statement, (ast.If, ast.Try, ast.With)):
        for child in ast.iter_child_nodes(statement):
            if isinstance(child, ast.stmt):
                names |= _bound_names(child)
    return names


def defined_names(code: str, *, imports: bool = True) -> set[str]:
    """Names defined at the top level of `code` (a regex reading when it does not parse);
    `imports=False` leaves out names bound by imports (importing the entry function from
    elsewhere does not replace its definition)."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return {m.group(1) or m.group(2) for m in _DEFINED.finditer(code)}
    names: set[str] = set()
    for statement in tree.body:
        if imports or not isinstance(statement, (ast.Import, ast.ImportFrom)):
            names |= _bound_names(statement)
    return names


def _roots(code: str) -> set[str]:
    """Top-level names no other top-level statement uses: what the block offers the outside."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return defined_names(code)
    bound = [set() if isinstance(s, (ast.Import, ast.ImportFrom)) else _bound_names(s)
             for s in tree.body]
    used = [{n.id for n in ast.walk(s) if isinstance(n, ast.Name)} for s in tree.body]
    roots = set()
    for i, names in enumerate(bound):
        others = set().union(*(u for j, u in enumerate(used) if j != i))
        roots |= names - others
    return roots


def _referenced(code: str) -> set[str]:
    """Identifiers `code` uses (strings and comments excluded where it parses)."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return set(_IDENTIFIER.findall(code))
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} | {
        n.value.id for n in ast.walk(tree)
        if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)}


def _regions(code: str) -> tuple[str, str]:
    """(the code inside the EVOLVE-BLOCKs, the code outside them), marker lines excluded."""
    lines = code.split("\n")
    ranges = evolve_block_ranges(code)
    if ranges is None:
        return code, ""
    inside = [i for start, end in ranges for i in range(start, end)]
    skip = set(inside) | {i for i, line in enumerate(lines)
                          if EVOLVE_BLOCK_START in line or EVOLVE_BLOCK_END in line}
    outside = [i for i in range(len(lines)) if i not in skip]
    return ("\n".join(lines[i] for i in inside), "\n".join(lines[i] for i in outside))


@functools.lru_cache(maxsize=64)  # a run asks about the same few parents again and again
def required_names(parent: str, entry: str | None = None) -> frozenset[str]:
    """What a complete replacement of the parent's block must define: the block's names the
    code outside it uses, and the problem's entry function when the block holds it. With no
    entry function known (or one outside the block and nothing used from outside), every name
    of the block that no other part of it uses stands in for it."""
    inside, outside = _regions(parent)
    defined = defined_names(inside, imports=False)
    required = defined & _referenced(outside) if outside.strip() else set()
    if entry is not None and entry in defined:
        required.add(entry)
    elif entry is None or not required:
        required |= _roots(inside)
    return frozenset(required)


def _dangling(parent: str, child: str) -> list[str]:
    """Names of the parent's block that the child's block uses but no longer binds anywhere
    (the rewritten entry function alone, calling helpers it left out)."""
    old_inside, _ = _regions(parent)
    new_inside, outside = _regions(child)
    try:
        tree = ast.parse(new_inside)
    except SyntaxError:
        return []  # the evaluator reports the syntax error; nothing to read here
    loaded: set[str] = set()
    bound: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (loaded if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound |= {(a.asname or a.name).split(".")[0] for a in node.names}
    kept = defined_names(outside) if outside.strip() else set()
    return sorted((loaded & defined_names(old_inside)) - bound - kept)


def check_complete(parent: str, child: str, required: frozenset[str], where: str) -> None:
    """Raise unless the child's block defines every required name and every name of the
    parent's block it still uses."""
    missing = sorted(required - defined_names(_regions(child)[0], imports=False))
    if missing:
        raise MutationError(
            "incomplete-block",
            f"{where} is a fragment, not the whole EVOLVE-BLOCK: it does not define "
            f"{', '.join(missing)}. Answer with SEARCH/REPLACE edits, or with the complete "
            f"program (every definition of the block, changed or not).")
    dangling = _dangling(parent, child)
    if dangling:
        raise MutationError(
            "incomplete-block",
            f"{where} is a fragment, not the whole EVOLVE-BLOCK: it uses "
            f"{', '.join(dangling)} but does not define them (the current block does). Answer "
            f"with SEARCH/REPLACE edits, or with the complete program (every definition of the "
            f"block, changed or not).")


# ---------------------------------------------------------------- shapes of a reply's code

def _canonical(line: str) -> str:
    """A line as the frame comparison sees it: marker lines by their marker only."""
    if EVOLVE_BLOCK_START in line:
        return EVOLVE_BLOCK_START
    if EVOLVE_BLOCK_END in line:
        return EVOLVE_BLOCK_END
    return line.rstrip()


def _frame_parts(code: str) -> list[list[tuple[int, str]]]:
    """The parts outside the blocks (marker lines included) as (line index, canonical line),
    blank lines left out: they do not change what the program does."""
    lines = code.split("\n")
    ranges = evolve_block_ranges(code) or []
    bounds = [0] + [x for start, end in ranges for x in (start, end)] + [len(lines)]
    return [[(i, _canonical(lines[i])) for i in range(bounds[k], bounds[k + 1])
             if lines[i].strip()] for k in range(0, len(bounds), 2)]


def _where(index: int, count: int) -> str:
    if index == 0:
        return "before the first EVOLVE-BLOCK"
    if index == count - 1:
        return "after the last EVOLVE-BLOCK"
    return f"between EVOLVE-BLOCKs {index} and {index + 1}"


def _changed_outside(parent: str, code: str) -> MutationError | None:
    """The first change outside the blocks, ignoring blank lines; None when there is none.
    Lines the reply leaves out there (the module header, say) are no change: the child keeps
    the parent's code outside the blocks whatever the reply shows of it."""
    old_parts, new_parts = _frame_parts(parent), _frame_parts(code)
    old_lines, new_lines = parent.split("\n"), code.split("\n")
    for index, (old, new) in enumerate(zip(old_parts, new_parts, strict=True)):
        old_text, new_text = [t for _, t in old], [t for _, t in new]
        if _omits_only(old_text, new_text):
            continue
        matcher = difflib.SequenceMatcher(a=old_text, b=new_text, autojunk=False)
        tag, i1, _i2, j1, _j2 = next(op for op in matcher.get_opcodes()
                                     if op[0] in ("insert", "replace"))
        got = new_lines[new[j1][0]].strip()
        where = _where(index, len(old_parts))
        if tag == "insert":
            after = f"after line {old[i1 - 1][0] + 1}" if i1 else f"before line {old[0][0] + 1}"
            what = f"the line {got!r} was added {where} ({after})"
        else:
            what = (f"line {old[i1][0] + 1} ({where}) was changed: expected "
                    f"{old_lines[old[i1][0]].strip()!r}, got {got!r}")
        return MutationError(
            "outside-evolve-block",
            f"{what}. Only code between '# {EVOLVE_BLOCK_START}' and '# {EVOLVE_BLOCK_END}' may "
            f"change; put new imports or helpers inside the block.")
    return None


def _omits_only(old: list[str], new: list[str]) -> bool:
    """`new` is `old` with some lines left out (none added, none changed)."""
    remaining = iter(old)
    return all(any(line == candidate for candidate in remaining) for line in new)


def marker_mismatch(parent: str, code: str) -> MutationError:
    (p_start, p_end), (c_start, c_end) = marker_count(parent), marker_count(code)
    if (p_start, p_end) == (c_start, c_end):
        detail = "they are in a different order"
    else:
        detail = (f"your version has {c_start} START and {c_end} END marker line(s), the current "
                  f"program {p_start} and {p_end}")
    return MutationError(
        "outside-evolve-block",
        f"the '# {EVOLVE_BLOCK_START}' and '# {EVOLVE_BLOCK_END}' marker lines must stay as in "
        f"the current program: {detail}. Keep the markers and change only the code between them.")


def transplant(parent: str, code: str) -> str:
    """`code` has the parent's markers: the child is the parent with its blocks' contents
    replaced by `code`'s, once the code outside them is found unchanged."""
    p_ranges, c_ranges = evolve_block_ranges(parent) or [], evolve_block_ranges(code) or []
    if marker_count(code) != marker_count(parent) or len(c_ranges) != len(p_ranges):
        # A program that stops without the final END marker means the block runs to its end
        # when nothing follows the parent's last block.
        tail = parent.split("\n")[p_ranges[-1][1] + 1:] if p_ranges else []
        if (marker_count(code) == (marker_count(parent)[0], marker_count(parent)[1] - 1)
                and len(c_ranges) == len(p_ranges) and not "".join(tail).strip()):
            return transplant(parent, code.rstrip("\n") + f"\n# {EVOLVE_BLOCK_END}\n")
        raise marker_mismatch(parent, code)
    error = _changed_outside(parent, code)
    if error is not None:
        raise error
    p_lines, c_lines = parent.split("\n"), code.split("\n")
    out: list[str] = []
    cursor = 0
    for (p_start, p_end), (c_start, c_end) in zip(p_ranges, c_ranges, strict=True):
        out += p_lines[cursor:p_start] + _trim_blank(c_lines[c_start:c_end])
        cursor = p_end
    return "\n".join(out + p_lines[cursor:])


def _trim_blank(lines: list[str]) -> list[str]:
    start, end = 0, len(lines)
    while start < end and not lines[start].strip():
        start += 1
    while end > start and not lines[end - 1].strip():
        end -= 1
    return lines[start:end]


def strip_frame(parent: str, code: str) -> str:
    """The block body a program without markers means: its statements that also stand outside
    the parent's block (the module docstring, the imports, fixed code after the block) are
    the frame the child keeps from the parent, so they are dropped, not copied into the block.
    New statements (a new import, say) stay in the body, where they may change."""
    _, outside = _regions(parent)
    lines = code.split("\n")
    frame_lines = {line.strip() for line in outside.split("\n") if line.strip()}
    try:
        frame_dumps = {ast.dump(s) for s in ast.parse(outside).body}
        parent_docstring = ast.get_docstring(ast.parse(outside)) is not None
        tree = ast.parse(code)
    except SyntaxError:  # unparsable: drop the lines that are the frame's, verbatim
        return "\n".join(_trim_blank([line for line in lines if line.strip() not in frame_lines
                                      or line.startswith((" ", "\t"))]))
    drop: set[int] = set()
    for index, statement in enumerate(tree.body):
        docstring = (index == 0 and parent_docstring and isinstance(statement, ast.Expr)
                     and isinstance(statement.value, ast.Constant)
                     and isinstance(statement.value.value, str))
        if docstring or ast.dump(statement) in frame_dumps:
            first = min([statement.lineno] + [d.lineno for d in getattr(
                statement, "decorator_list", [])])
            drop |= set(range(first - 1, statement.end_lineno or statement.lineno))
    # A comment copied from the frame is the frame's too (it is not part of any statement).
    drop |= {i for i, line in enumerate(lines)
             if line.lstrip().startswith("#") and line.strip() in frame_lines
             and not line.startswith((" ", "\t"))}
    kept = [line for i, line in enumerate(lines) if i not in drop]
    return "\n".join(_collapse_blank(_trim_blank(kept)))


def _collapse_blank(lines: list[str]) -> list[str]:
    """At most two blank lines in a row (dropped statements leave gaps)."""
    out: list[str] = []
    for line in lines:
        if not line.strip() and len(out) >= 2 and not out[-1].strip() and not out[-2].strip():
            continue
        out.append(line)
    return out


def splice_block(parent: str, body: str) -> str:
    """Put `body` between the markers of a parent that has exactly one EVOLVE-BLOCK."""
    ranges = evolve_block_ranges(parent)
    if ranges is None or len(ranges) != 1:
        raise ValueError("splice_block needs exactly one EVOLVE-BLOCK")
    lines = parent.split("\n")
    start, end = ranges[0]
    return "\n".join(lines[:start] + body.rstrip("\n").split("\n") + lines[end:])


def fit_program(parent: str, code: str, required: frozenset[str], where: str) -> str:
    """The child that `code` (a program or block in any of the shapes above) means."""
    p_ranges = evolve_block_ranges(parent)
    if p_ranges is None:  # no markers: the whole program is editable
        child = code
    elif marker_count(code) == (0, 0):
        if len(p_ranges) != 1:
            raise MutationError(
                "outside-evolve-block",
                f"{where} has no EVOLVE-BLOCK markers, and the current program has "
                f"{len(p_ranges)} blocks: answer with the whole program, marker lines included.")
        child = splice_block(parent, strip_frame(parent, code))
    else:
        child = transplant(parent, code)
    check_complete(parent, child, required, where)
    check_no_placeholders(code, parent, where)
    return child

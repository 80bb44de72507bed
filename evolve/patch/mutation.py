"""Turning an operator's reply into a new program: SEARCH/REPLACE diffs, full rewrites, crossover.

Every way a reply can fail to give a usable program raises `MutationError` with a `kind` and a
message written for the model (it is fed back and the proposal is resampled, a bounded number of
times). A SEARCH block that matches nothing is an error, never silently skipped (OpenEvolve skips
it); an edit outside the EVOLVE-BLOCK markers is rejected with the line that changed.
"""

from __future__ import annotations

import difflib

from evolve.patch.blocks import evolve_block_ranges, marker_count
from evolve.patch.elision import check_no_placeholders
from evolve.patch.errors import MutationError
from evolve.patch.fit import fit_program, marker_mismatch, required_names, splice_block
from evolve.patch.reply import (
    Reading,
    SearchReplace,
    indent_unit,
    normalise,
    parse_search_replace,
    read_reply,
)
from evolve.problem.spec import EVOLVE_BLOCK_END, EVOLVE_BLOCK_START

__all__ = ["LLM_KINDS", "MutationError", "SearchReplace", "apply_diff", "check_evolve_blocks",
           "child_from_reply", "parse_diff", "splice_block", "unified_diff"]

# Mutation kinds that ask an LLM for a reply; "repair" fixes an invalid parent using its error.
LLM_KINDS = ("diff", "full", "crossover", "repair")


def parse_diff(text: str) -> list[SearchReplace]:
    """All SEARCH/REPLACE blocks in a reply, in order (see evolve/patch/reply.py)."""
    return parse_search_replace(normalise(text))


# ---------------------------------------------------------------- EVOLVE-BLOCK regions

def editable_line_ranges(code: str) -> list[tuple[int, int]] | None:
    """0-based [start, end) line ranges strictly between START and END markers; None = no markers."""
    return evolve_block_ranges(code)


def _frame(code: str) -> list[list[str]]:
    """The parts of a program outside its EVOLVE-BLOCKs (marker lines included), line by line."""
    lines = [line.rstrip() for line in code.split("\n")]
    ranges = editable_line_ranges(code) or []
    parts: list[list[str]] = []
    cursor = 0
    for start, end in ranges:
        parts.append(lines[cursor:start])
        cursor = end
    parts.append(lines[cursor:])
    # Trailing blank lines are not part of the frame.
    while parts and parts[-1] and parts[-1][-1] == "":
        parts[-1].pop()
    return parts


def check_evolve_blocks(parent: str, child: str) -> None:
    """Raise unless `child` differs from `parent` only inside the parent's EVOLVE-BLOCKs."""
    parent_ranges = editable_line_ranges(parent)
    if parent_ranges is None:
        return  # no markers: the whole program is editable
    child_ranges = editable_line_ranges(child)
    if child_ranges is None or len(child_ranges) != len(parent_ranges) or \
            marker_count(child) != marker_count(parent):
        raise marker_mismatch(parent, child)
    before, after = _frame(parent), _frame(child)
    for index, (old, new) in enumerate(zip(before, after, strict=True)):
        if old != new:
            matcher = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
            for tag, i1, _i2, j1, _j2 in matcher.get_opcodes():
                if tag == "equal":
                    continue
                where = "before the first EVOLVE-BLOCK" if index == 0 else (
                    "after the last EVOLVE-BLOCK" if index == len(before) - 1
                    else f"between EVOLVE-BLOCKs {index} and {index + 1}")
                expected = old[i1] if i1 < len(old) else "(end of that part)"
                got = new[j1] if j1 < len(new) else "(nothing)"
                line_no = _absolute_line(parent, index, i1)
                raise MutationError(
                    "outside-evolve-block",
                    f"line {line_no} ({where}) was changed: expected {expected!r}, got {got!r}. "
                    f"Only code between '# {EVOLVE_BLOCK_START}' and '# {EVOLVE_BLOCK_END}' may "
                    f"change; put new imports or helpers inside the block.")


def _absolute_line(code: str, part_index: int, line_in_part: int) -> int:
    """1-based line number in `code` of a line in frame part `part_index`."""
    ranges = editable_line_ranges(code) or []
    start_of_part = 0 if part_index == 0 else ranges[part_index - 1][1]
    return start_of_part + line_in_part + 1


# ---------------------------------------------------------------- SEARCH/REPLACE application

def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _inside(line_index: int, ranges: list[tuple[int, int]] | None) -> bool:
    return ranges is None or any(s <= line_index < e for s, e in ranges)


def _exact_matches(code: str, search: str) -> list[int]:
    found, start = [], code.find(search)
    while start != -1:
        found.append(start)
        start = code.find(search, start + 1)
    return found


def _whole_lines(code: str, at: int, length: int) -> bool:
    end = at + length
    return (at == 0 or code[at - 1] == "\n") and (end == len(code) or code[end] == "\n")


def _tolerant_matches(lines: list[str], search_lines: list[str]) -> list[tuple[int, int]]:
    """(first, last+1) line spans whose non-blank lines equal the search's, ignoring whitespace."""
    wanted = [s.strip() for s in search_lines if s.strip()]
    if not wanted:
        return []
    nonblank = [i for i, line in enumerate(lines) if line.strip()]
    spans = []
    for k in range(len(nonblank) - len(wanted) + 1):
        if all(" ".join(lines[nonblank[k + j]].split()) == " ".join(w.split())
               for j, w in enumerate(wanted)):
            spans.append((nonblank[k], nonblank[k + len(wanted) - 1] + 1))
    return spans


def _reindent(replace: str, delta: int) -> list[str]:
    out = []
    for line in replace.split("\n"):
        if not line.strip():
            out.append("")
        elif delta >= 0:
            out.append(" " * delta + line)
        else:
            out.append(line[min(-delta, _indent(line)):])
    return out


def _closest_line_hint(code: str, search: str) -> str:
    first = next((s.strip() for s in search.split("\n") if s.strip()), "")
    candidates = [line.strip() for line in code.split("\n") if line.strip()]
    close = difflib.get_close_matches(first, candidates, n=1, cutoff=0.5)
    if not close:
        return f"its first line {first!r} resembles no line of the program"
    line_no = next(i + 1 for i, line in enumerate(code.split("\n")) if line.strip() == close[0])
    return f"its first line {first!r} is closest to line {line_no}: {close[0]!r}"


def _apply_one(code: str, block: SearchReplace, number: int) -> str:
    if not block.search.strip():
        raise MutationError("diff-format", f"SEARCH block {number} is empty; copy the exact lines "
                                           f"to replace from the current program.")
    ranges = editable_line_ranges(code)
    exact = _exact_matches(code, block.search)
    if len(exact) > 1:  # prefer the single occurrence inside the editable region
        exact = [p for p in exact if _inside(code.count("\n", 0, p), ranges)] or exact
    if len(exact) > 1:  # SEARCH lines are whole lines: "  x" also occurs inside "      x"
        exact = [p for p in exact if _whole_lines(code, p, len(block.search))] or exact
    if len(exact) == 1:
        at = exact[0]
        return code[:at] + block.replace + code[at + len(block.search):]
    if len(exact) > 1:
        raise MutationError("diff-ambiguous", f"SEARCH block {number} matches {len(exact)} places; "
                                              f"include more surrounding lines so it is unique.")
    lines = code.split("\n")
    spans = _tolerant_matches(lines, block.search.split("\n"))
    if len(spans) > 1:
        spans = [s for s in spans if _inside(s[0], ranges)] or spans
    if len(spans) > 1:
        raise MutationError("diff-ambiguous", f"SEARCH block {number} matches {len(spans)} places "
                                              f"(ignoring whitespace); include more lines so it is unique.")
    if not spans:
        raise MutationError("diff-no-match",
                            f"SEARCH block {number} matches nothing in the current program "
                            f"({_closest_line_hint(code, block.search)}). Copy the SEARCH lines "
                            f"exactly from the current program.")
    first, stop = spans[0]
    search_first = next(s for s in block.search.split("\n") if s.strip())
    new_lines = _reindent(block.replace, _indent(lines[first]) - _indent(search_first)) \
        if block.replace else []
    return "\n".join(lines[:first] + new_lines + lines[stop:])


def apply_diff(code: str, blocks: list[SearchReplace]) -> str:
    """Apply blocks in order; all must apply (every failure is reported, nothing is skipped)."""
    if not blocks:
        raise MutationError("diff-format",
                            "no SEARCH/REPLACE block found; use the exact format\n<<<<<<< SEARCH\n"
                            "(lines copied from the program)\n=======\n(new lines)\n>>>>>>> REPLACE")
    errors: list[MutationError] = []
    for number, block in enumerate(blocks, start=1):
        try:
            code = _apply_one(code, block, number)
        except MutationError as exc:
            errors.append(exc)
    if errors:
        kind = errors[0].kind if len({e.kind for e in errors}) == 1 else "diff-failed"
        applied = len(blocks) - len(errors)
        raise MutationError(kind, " ".join(e.message for e in errors)
                            + f" ({applied} of {len(blocks)} blocks applied; none were kept.)")
    return code


# ---------------------------------------------------------------- whole replies

def child_from_reply(kind: str, parent: str, reply: str, max_chars: int, *,
                     finish_reason: str | None = None, entry: str | None = None) -> str:
    """The child program for a reply to a mutation of `kind`, checked; raises MutationError.

    The reply is read in the format it holds, whatever was asked (evolve/patch/reply.py):
    models answer a rewrite request with SEARCH/REPLACE blocks, or a diff request with the
    whole program. Edits are applied to the parent; otherwise each program in the reply is
    fitted to the parent (evolve/patch/fit.py) and the one that fits is the child. `entry` is
    the problem's function, which a program replacing the block must define."""
    reading = read_reply(reply, finish_reason=finish_reason, indent=indent_unit(parent))
    if reading.edits:
        for number, edit in enumerate(reading.edits, start=1):
            check_no_placeholders(edit.replace, parent,
                                  f"the new lines of {reading.edit_format} edit {number}")
        child = apply_diff(parent, reading.edits)
        check_evolve_blocks(parent, child)
    else:
        child = _child_from_programs(kind, parent, reading, required_names(parent, entry))
    if len(child) > max_chars:
        raise MutationError("too-long", f"the program has {len(child)} characters; the limit is "
                                        f"{max_chars}. Make it shorter.")
    if _same(child, parent):
        raise MutationError("no-change", "the reply leaves the program unchanged; propose a "
                                         "real change.")
    return child


def _same(a: str, b: str) -> bool:
    """Equal but for trailing whitespace and blank lines at either end."""
    return [line.rstrip() for line in a.strip().split("\n")] == \
        [line.rstrip() for line in b.strip().split("\n")]


def _child_from_programs(kind: str, parent: str, reading: Reading,
                         required: frozenset[str]) -> str:
    """The one child the reply's programs mean. A quoted copy of the current program or an
    example fragment beside the answer is not an alternative; two different programs are."""
    if not reading.programs:
        if kind == "diff":
            raise MutationError(
                "diff-format",
                "the reply holds no SEARCH/REPLACE edit and no program; use the exact format\n"
                "<<<<<<< SEARCH\n(lines copied from the program)\n=======\n(new lines)\n"
                ">>>>>>> REPLACE")
        raise MutationError("no-code", "the reply contains no program; answer with the whole "
                                       "program in one ```python fenced block.")
    children: dict[str, tuple[str, str]] = {}
    errors: list[tuple[int, MutationError]] = []
    for candidate in reading.programs:
        try:
            child = fit_program(parent, candidate.code, required, candidate.where)
        except MutationError as exc:
            errors.append((len(candidate.code), exc))
            continue
        if _same(child, parent):
            errors.append((-1, MutationError("no-change", f"the program in {candidate.where} "
                                                          f"is the current program unchanged; "
                                                          f"propose a real change.")))
            continue
        key = "\n".join(line.rstrip() for line in child.strip().split("\n"))
        children.setdefault(key, (candidate.where, child))
    if len(children) == 1:
        return next(iter(children.values()))[1]
    if len(children) > 1:
        places = " and ".join(where for where, _ in children.values())
        raise MutationError("ambiguous-reply",
                            f"the reply holds {len(children)} different programs ({places}); "
                            f"answer with exactly one.")
    # The error of the largest fragment says most about what the model meant.
    raise max(errors, key=lambda pair: pair[0])[1]


def unified_diff(parent: str, child: str) -> str:
    """The change as a unified diff, stored with the program."""
    return "".join(difflib.unified_diff(parent.splitlines(keepends=True),
                                        child.splitlines(keepends=True),
                                        fromfile="parent", tofile="child", n=2))

"""Reading an LLM reply: which part of it is the answer, and which edits or programs it holds.

Models wrap the same answer in many ways: CRLF line endings, reasoning before the answer
(`<think>...</think>`, sometimes only the closing tag), fences with info strings, SEARCH/REPLACE
blocks, unified diffs, JSON objects, or bare code. This module only reads; what the edits or
programs mean for the parent is decided in evolve/patch/fit.py and evolve/patch/mutation.py.

A reply cut off before its end (finish_reason "length", reasoning never closed, a fence or a
SEARCH/REPLACE block never closed) raises `MutationError("truncated")`: nothing of it is used.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass, field

from markdown_it import MarkdownIt

from evolve.patch.errors import MutationError

TRUNCATED = "truncated"
# finish_reason of a reply stopped before its end: the output limit (litellm maps providers'
# reasons to "length"; some pass "max_tokens" through) or a content filter.
_CUT_OFF = {"length", "max_tokens", "content_filter"}
# Fence languages whose content may be the program (the problem language is Python).
_CODE_LANGUAGES = {"", "python", "py", "python3", "py3"}
# Keys a JSON-wrapped answer keeps its program or its edits under.
_JSON_KEYS = ("code", "program", "new_code", "full_code", "python", "solution", "diff", "patch",
              "edits")
# Reasoning wrappers: DeepSeek-R1 / Qwen3 `<think>`, Claude-style prompts' `<thinking>`.
_REASONING_CLOSE = re.compile(r"</(?:think|thinking|reasoning)>", re.IGNORECASE)
_REASONING_OPEN = re.compile(r"^[ \t]*<(?:think|thinking|reasoning)>", re.IGNORECASE | re.MULTILINE)
# gpt-oss "harmony" channels, when a server passes them through unparsed.
_HARMONY_FINAL = re.compile(r"<\|channel\|>\s*final\s*<\|message\|>")
_HARMONY_END = re.compile(r"<\|(?:end|return|call)\|>")

_SEARCH = re.compile(r"^[ \t]*<{5,9}[ \t]*SEARCH[ \t]*$")
_DIVIDER = re.compile(r"^[ \t]*={5,9}[ \t]*$")
_REPLACE = re.compile(r"^[ \t]*>{5,9}[ \t]*REPLACE[ \t]*$")
_FENCE_LINE = re.compile(r"^[ \t]*(```|~~~)")
_JSON = json.JSONDecoder()
_JSON_START = re.compile(r"^\{", re.MULTILINE)
_JSON_FENCE = re.compile(r"^[ \t]*(```|~~~)[ \t]*json", re.MULTILINE | re.IGNORECASE)
# The first line of bare (unfenced) code: a statement no sentence of prose starts with.
_CODE_START = re.compile(r"^(def |async def |class |import |from \S+ import |@\w|\"\"\"|'''|"
                         r"#\s*EVOLVE-BLOCK|[A-Za-z_]\w*(?:\s*,\s*[A-Za-z_]\w*)*\s*(?::[^=]+)?"
                         r"=[^=])")

_markdown = MarkdownIt("commonmark")


@dataclass(frozen=True)
class SearchReplace:
    search: str
    replace: str


@dataclass(frozen=True)
class Candidate:
    """Code in a reply that may be the new program (or its EVOLVE-BLOCK)."""

    code: str
    where: str  # for messages: "fenced block 2 of the reply", "the code of the reply's JSON"


@dataclass
class Reading:
    """What a reply holds: edits (applied in order), else candidate programs, in reply order."""

    edits: list[SearchReplace] = field(default_factory=list)
    edit_format: str | None = None  # "SEARCH/REPLACE" | "unified diff"
    programs: list[Candidate] = field(default_factory=list)


# ---------------------------------------------------------------- the answer part

def normalise(text: str) -> str:
    """LF line endings, no byte-order mark: CRLF replies mean the same as LF ones."""
    return text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")


def answer_part(text: str) -> str | None:
    """The reply without its reasoning; None when it holds reasoning but no answer after it."""
    text = normalise(text)
    closes = list(_REASONING_CLOSE.finditer(text))
    if closes:  # servers whose chat template opens the tag send only the closing one
        text = text[closes[-1].end():]
    if _REASONING_OPEN.search(text):  # reasoning opened and never closed: no answer yet
        return None
    if "<|channel|>" in text:
        finals = list(_HARMONY_FINAL.finditer(text))
        if not finals:
            return None
        return _HARMONY_END.split(text[finals[-1].end():], maxsplit=1)[0]
    return text


def convert_tabs(text: str, unit: int | None) -> str:
    """Leading tabs become `unit` spaces (a tab-indented edit in a space-indented program
    would raise TabError); None leaves the text as it is (the parent itself uses tabs)."""
    if unit is None or "\t" not in text:
        return text
    lines = []
    for line in text.split("\n"):
        stripped = line.lstrip(" \t")
        lead = line[:len(line) - len(stripped)]
        lines.append(lead.replace("\t", " " * unit) + stripped if "\t" in lead else line)
    return "\n".join(lines)


def indent_unit(code: str) -> int | None:
    """The parent's indentation step in spaces; None when it indents with tabs."""
    widths = []
    for line in code.split("\n"):
        if line.startswith("\t"):
            return None
        if line.strip() and line.startswith(" "):
            widths.append(len(line) - len(line.lstrip(" ")))
    return min(widths) if widths else 4


# ---------------------------------------------------------------- fences

@dataclass(frozen=True)
class Fence:
    language: str
    content: str
    closed: bool


def fence_language(info: str) -> str:
    """The language an info string names: `python title="x"`, `python:initial.py`, `py
    {linenos}` name python; so does a file name alone (`initial.py`)."""
    first = info.split()[0].lower() if info.strip() else ""
    if first.endswith(".py"):
        return "python"
    named = re.match(r"[a-z][a-z+-]*\d*", first)
    return named.group(0) if named else ""


def fences(text: str) -> list[Fence]:
    """The fenced code blocks of a Markdown text, as CommonMark reads them (info strings after
    the language, longer fences around shorter ones, fences indented inside list items)."""
    lines = text.split("\n")
    found = []
    for token in _markdown.parse(text):
        if token.type != "fence" or token.map is None:
            continue
        language = fence_language(token.info)
        last = lines[token.map[1] - 1].strip() if token.map[1] - 1 > token.map[0] else ""
        closed = last.startswith(token.markup) and not last.strip(token.markup[0])
        found.append(Fence(language, token.content, closed))
    return found


# ---------------------------------------------------------------- edits

def parse_search_replace(text: str) -> list[SearchReplace]:
    """All SEARCH/REPLACE blocks, in order. A block that is not closed at the end of the reply
    is a truncated reply; a malformed one elsewhere is a format error (never half-applied)."""
    blocks: list[SearchReplace] = []
    state, search, replace = "", [], []  # state: "" outside, "search", "replace"
    for line in text.split("\n"):
        number = len(blocks) + 1
        if state == "":
            if _SEARCH.match(line):
                state, search, replace = "search", [], []
        elif state == "search":
            if _DIVIDER.match(line):
                state = "replace"
            elif _SEARCH.match(line) or _REPLACE.match(line):
                raise MutationError("diff-format", f"SEARCH/REPLACE block {number} has no "
                                                   f"'=======' line between its SEARCH and "
                                                   f"REPLACE parts; nothing was applied.")
            else:
                search.append(line)
        elif _REPLACE.match(line):
            blocks.append(SearchReplace("\n".join(search), "\n".join(replace)))
            state = ""
        elif _SEARCH.match(line):
            raise MutationError("diff-format", f"SEARCH/REPLACE block {number} is not closed by "
                                               f"a '>>>>>>> REPLACE' line before the next "
                                               f"SEARCH; nothing was applied.")
        else:
            replace.append(line)
    if state:
        raise MutationError(TRUNCATED, f"the reply ends inside SEARCH/REPLACE block "
                                       f"{len(blocks) + 1} (it was cut off); nothing was applied. "
                                       f"Answer again with shorter edits.")
    return blocks


def parse_unified_diff(text: str) -> list[SearchReplace]:
    """Hunks of a unified diff (`--- a/ +++ b/ @@`, or the `*** Begin Patch` variant) as
    SEARCH/REPLACE blocks: context and removed lines are what to find, context and added lines
    what to put there. The `@@` line numbers are ignored: models often get them wrong, and each
    hunk must match the program exactly once anyway."""
    lines = text.split("\n")
    hunks: list[list[tuple[str, str]]] = []
    current: list[tuple[str, str]] | None = None
    for i, line in enumerate(lines):
        if line.startswith("@@"):
            current = []
            hunks.append(current)
        elif current is None:
            continue
        elif (_FENCE_LINE.match(line) or line.startswith(("*** ", "+++ ", "diff --git"))
              or (line.startswith("--- ") and i + 1 < len(lines)
                  and lines[i + 1].startswith("+++ "))):
            current = None
        elif line.startswith(("+", "-", " ")):
            current.append((line[0], line[1:]))
        elif line == "":
            current.append((" ", ""))
        elif not line.startswith("\\"):  # "\ No newline at end of file" says nothing
            current.append(("?", line))  # unprefixed: context if edits follow, else prose
    edits = []
    for number, hunk in enumerate(hunks, start=1):
        while hunk and (hunk[-1][0] == "?" or (hunk[-1][0] == " " and not hunk[-1][1].strip())):
            hunk.pop()  # prose after the last hunk, or trailing blank context
        if not any(sign in "+-" for sign, _ in hunk):
            continue
        search = [text for sign, text in hunk if sign != "+"]
        if not any(line.strip() for line in search):
            raise MutationError("diff-format", f"hunk {number} of the diff has no context or "
                                               f"removed lines, so it cannot be placed; include "
                                               f"the lines around the change.")
        edits.append(SearchReplace("\n".join(search),
                                   "\n".join(text for sign, text in hunk if sign != "-")))
    return edits


# ---------------------------------------------------------------- programs

def _json_inner(text: str) -> str | None:
    """The program or edits of a JSON-wrapped answer (`{"code": "..."}`), else None."""
    sources = []
    if _JSON_FENCE.search(text) or _JSON_START.search(text):
        blocks = fences(text)
        if not any(f.language in _CODE_LANGUAGES for f in blocks):  # else JSON is an example
            sources = [f.content for f in blocks if f.language == "json"]
            start = _JSON_START.search(text)
            if start is not None:  # an unfenced object, maybe with prose around it
                sources.append(text[start.start():])
    for source in sources:
        try:
            value, _ = _JSON.raw_decode(source.strip())  # what follows the object is prose
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            for key in _JSON_KEYS:
                inner = value.get(key)
                if isinstance(inner, str) and inner.strip():
                    return inner
    return None


def _bare_code(text: str) -> str | None:
    """Unfenced code: from its first statement to the end, less any closing prose."""
    lines = text.split("\n")
    first = next((i for i, line in enumerate(lines) if _CODE_START.match(line)), None)
    if first is None:
        return None
    body = lines[first:]
    for _ in range(min(40, len(body))):  # drop trailing prose until the rest parses
        code = "\n".join(body).strip("\n")
        try:
            ast.parse(code)
        except SyntaxError:
            body.pop()
            continue
        return code + "\n" if code else None
    return None


def read_reply(text: str, *, finish_reason: str | None = None,
               indent: int | None = 4) -> Reading:
    """What a reply holds; raises MutationError for a cut-off or malformed one."""
    if finish_reason in _CUT_OFF:
        raise MutationError(TRUNCATED, f"the reply was cut off before its end (finish_reason="
                                       f"{finish_reason}), so none of it was used. Answer again "
                                       f"more briefly: short SEARCH/REPLACE edits, no long "
                                       f"explanation.")
    answer = answer_part(text)
    if answer is None:
        raise MutationError(TRUNCATED, "the reply ended inside its reasoning, before any answer. "
                                       "Answer again, with the edits after the reasoning.")
    answer = convert_tabs(answer, indent)
    inner = _json_inner(answer)
    origin = "the reply"
    if inner is not None:
        answer, origin = convert_tabs(normalise(inner), indent), "the reply's JSON"
    reading = Reading(edits=parse_search_replace(answer))
    if reading.edits:
        reading.edit_format = "SEARCH/REPLACE"
        return reading
    blocks = fences(answer)
    if any(not f.closed for f in blocks):
        raise MutationError(TRUNCATED, "the reply ends inside a ``` fenced block that is never "
                                       "closed (it was cut off); none of it was used. Answer "
                                       "again, closing the block.")
    reading.edits = parse_unified_diff(answer)
    if reading.edits:
        reading.edit_format = "unified diff"
        return reading
    for number, fence in enumerate(blocks, start=1):
        if fence.language in _CODE_LANGUAGES and fence.content.strip():
            reading.programs.append(Candidate(fence.content, f"fenced block {number} of "
                                                             f"{origin}"))
    if not blocks:
        bare = _bare_code(answer)
        if bare is not None:
            reading.programs.append(Candidate(bare, f"the code of {origin}"))
    return reading

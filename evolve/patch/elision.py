"""Code a model left out and marked as left out ("# ... rest unchanged", a bare `...`).

Models shorten their answers with such placeholders; taken literally, the child would lose the
code they stand for (a class without its `__init__`, a function without its end). A line is a
placeholder only when the parent does not have it already (a parent may use `...` itself).
"""

from __future__ import annotations

import re

from evolve.patch.errors import MutationError

# A bare `...`; a comment that is only "...", or is framed by "..." ("# ... helpers ..."); a
# comment that says code was left out. Not "# ...and then": a comment may start with dots.
_PLACEHOLDER = re.compile(
    r"^\s*(?:\.\.\.|#\s*\.\.\.\s*|#\s*\.\.\..*\.\.\.\s*|#.*(?:\(unchanged\)|\b(?:rest of "
    r"(?:the|this|your)|existing code|same as before|omitted for brevity|remains? unchanged|"
    r"remains? the same|unchanged from|no changes? (?:to|below|above|here))\b).*)$",
    re.IGNORECASE)


def placeholders(code: str, parent: str) -> list[str]:
    """The placeholder lines of `code` that the parent does not have."""
    known = {line.strip() for line in parent.split("\n")}
    return [line.strip() for line in code.split("\n")
            if _PLACEHOLDER.match(line) and line.strip() not in known]


def check_no_placeholders(code: str, parent: str, where: str) -> None:
    found = placeholders(code, parent)
    if found:
        raise MutationError(
            "elided-code",
            f"code is left out of {where} ({found[0]!r}): the program would lose what that "
            f"line stands for. Write out every line, or answer with SEARCH/REPLACE edits of the "
            f"lines that change.")

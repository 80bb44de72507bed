"""Reading an LLM call's error text for what went wrong, without being fooled by its address.

Errors name the URL they failed on, so "401" or "404" can appear inside a port
(127.0.0.1:43401); a status code counts only standing as a word of its own, after every
address is taken out of the text.
"""

from __future__ import annotations

import re

_ADDRESS = re.compile(r"[a-z][a-z0-9+.-]*://\S+|\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?|:\d{2,5}\b",
                      re.IGNORECASE)


def plain_error_text(error: str) -> str:
    """`error` in lower case with URLs, IP addresses and ports taken out."""
    return _ADDRESS.sub(" ", error).lower()


def has_status(text: str, *codes: str) -> bool:
    """Whether one of the HTTP status `codes` stands as a word of its own in `text`."""
    return any(re.search(rf"(?<![\w.:/-]){code}(?![\w.])", text) for code in codes)

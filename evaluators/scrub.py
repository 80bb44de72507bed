"""Remove secrets of the evolve process's environment from candidate output.

Candidate text (stdout, stderr, failure reasons, evaluator feedback, metric strings) is stored
in the archive and sent back to an LLM in repair prompts. The sandbox already withholds the
environment, but at weaker isolation levels a candidate may still find a secret (a file, /proc
of a same-uid process); whatever it prints is replaced by a marker before it leaves the executor.
"""

from __future__ import annotations

import fnmatch
import functools
import os
from collections.abc import Mapping
from typing import Any

SECRET_PATTERNS = ("*_KEY", "*TOKEN*", "*SECRET*", "*PASSWORD*")
# Shorter values ("1", "true") would scrub ordinary text and protect nothing.
MIN_SECRET_CHARS = 6


def marker(name: str) -> str:
    return f"[secret ${name} removed]"


def secrets_in(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """{value: variable name} of the secret-looking variables, longest values first."""
    environ = os.environ if environ is None else environ
    # Names first, values only of secret-looking ones: os.environ decodes each on access.
    found = {value: name for name in environ if _looks_secret(name)
             if len(value := environ.get(name) or "") >= MIN_SECRET_CHARS}
    return dict(sorted(found.items(), key=lambda item: -len(item[0])))


@functools.lru_cache(maxsize=4096)
def _looks_secret(name: str) -> bool:
    # Called for every variable after every evaluation: the environment is read live each
    # time (a secret set later is still found), only the pattern match of a name is cached.
    return any(fnmatch.fnmatchcase(name.upper(), p) for p in SECRET_PATTERNS)


def scrub_text(text: str, secrets: Mapping[str, str]) -> str:
    for value, name in secrets.items():
        if value in text:
            text = text.replace(value, marker(name))
    return text


def scrub(value: Any, secrets: Mapping[str, str] | None = None) -> Any:
    """A copy of `value` (text, or JSON-like data) with every secret value replaced."""
    secrets = secrets_in() if secrets is None else secrets
    if not secrets:
        return value
    if isinstance(value, str):
        return scrub_text(value, secrets)
    if isinstance(value, dict):
        return {scrub(k, secrets): scrub(v, secrets) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(scrub(v, secrets) for v in value)
    return value

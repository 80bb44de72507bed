"""Novelty filter: exact duplicates are never evaluated twice; near-duplicates are rejected early.

- Exact: the hash of the program with comments, blank lines and layout removed (Python tokens).
- Near (local, no network): Jaccard similarity of token shingles of the editable region, with
  the program's own identifiers replaced by one placeholder (a renamed variable is not a new
  idea).
  Only a candidate with the same logical lines (same tokens per line and nesting depth, names
  aside; lines may be reordered, renamed or reformatted) can be a near-duplicate: on small
  programs a one-token real change (`<` to `<=`, `min` to `max`, a tuned constant) also scores a
  high Jaccard similarity, and must not be thrown away. (A swap of two own variables within one
  line is the one real change this cannot see.)
- Near (embeddings, optional): cosine similarity of litellm embeddings of the editable region.
- A flagged near-duplicate can be confirmed or overruled by an LLM judge when one is configured.
"""

from __future__ import annotations

import builtins
import functools
import hashlib
import io
import keyword
import math
import tokenize
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from evolve.config import NoveltyConfig
from evolve.patch.mutation import editable_line_ranges

_BUILTINS = frozenset(dir(builtins))
_SKIP = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
         tokenize.ENCODING, tokenize.ENDMARKER}


def _tokens(code: str) -> list[tokenize.TokenInfo] | None:
    try:
        return list(tokenize.generate_tokens(io.StringIO(code).readline))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return None


def normalize_code(code: str) -> str:
    """Comments, blank lines and spacing removed; indentation kept as block structure."""
    toks = _tokens(code)
    if toks is None:  # not valid Python: fall back to whitespace normalization
        return "\n".join(" ".join(line.split()) for line in code.splitlines() if line.strip())
    out: list[str] = []
    for tok in toks:
        if tok.type in (tokenize.INDENT, tokenize.DEDENT, tokenize.NEWLINE):
            out.append({tokenize.INDENT: "{", tokenize.DEDENT: "}", tokenize.NEWLINE: ";"}[tok.type])
        elif tok.type not in _SKIP:
            out.append(tok.string)
    return " ".join(out)


# Cached: a candidate is hashed and fingerprinted when the gate checks it and again when it is
# remembered and committed; tokenizing it once is enough (both results are immutable).
@functools.lru_cache(maxsize=256)
def code_hash(code: str) -> str:
    return hashlib.sha256(normalize_code(code).encode()).hexdigest()


def editable_text(code: str) -> str:
    """The text inside the EVOLVE-BLOCKs (the whole program when it has no markers)."""
    ranges = editable_line_ranges(code)
    if ranges is None:
        return code
    lines = code.split("\n")
    return "\n".join("\n".join(lines[s:e]) for s, e in ranges)


@dataclass(frozen=True)
class Fingerprint:
    """What near-duplicate detection compares: canonical shingles, and the bucket (numeric
    literals + bag of tokens) a near-duplicate must share."""

    shingles: frozenset[int]
    numbers: tuple[str, ...]
    bag: int = 0


@functools.lru_cache(maxsize=256)
def fingerprint(code: str, shingle_size: int) -> Fingerprint:
    text = editable_text(code)
    toks = _tokens(text + "\n")
    words: list[str] = []
    numbers: list[str] = []
    lines: list[str] = []
    if toks is None:
        words = text.split()
        lines = [" ".join(line.split()) for line in text.splitlines() if line.strip()]
    else:
        previous = ""
        depth = 0
        line: list[str] = []
        for tok in toks:
            if tok.type == tokenize.INDENT:
                depth += 1
            elif tok.type == tokenize.DEDENT:
                depth -= 1
            elif tok.type == tokenize.NEWLINE and line:
                lines.append(f"{depth}|" + " ".join(line))
                line = []
            if tok.type in _SKIP:
                continue
            own_name = (tok.type == tokenize.NAME and not keyword.iskeyword(tok.string)
                        and tok.string not in _BUILTINS and previous != ".")
            # One placeholder for every own name: renaming or reordering changes nothing.
            word = "\x00" if own_name else tok.string
            if tok.type == tokenize.NUMBER:
                numbers.append(tok.string)
            words.append(word)
            line.append(word)
            previous = tok.string
        if line:
            lines.append(f"{depth}|" + " ".join(line))
    k = max(1, min(shingle_size, len(words)))
    shingles = frozenset(hash(tuple(words[i:i + k])) for i in range(len(words) - k + 1))
    # The same logical lines (at the same depth), in any order: a change that only moves an
    # edit from one line to another (min(x) vs min(y)) is not a near-duplicate.
    bag = hash(tuple(sorted(Counter(lines).items())))
    return Fingerprint(shingles, tuple(sorted(numbers)), bag)


def jaccard(a: frozenset[int], b: frozenset[int]) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=False))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0


@dataclass
class Verdict:
    """The filter's decision for one candidate."""

    novel: bool
    kind: str = ""               # "duplicate" | "near-duplicate" when not novel
    similar_to: str | None = None  # key of the existing program it resembles
    similarity: float = 1.0
    reason: str = ""
    calls: list[Any] = field(default_factory=list)  # LLMCallRecord-like records to archive
    judge_pending: bool = False  # a near-duplicate the judge must still confirm (`confirm`)


# An async LLM judge: (candidate code, existing code) -> (is novel, call records).
Judge = Callable[[str, str], Awaitable[tuple[bool, list[Any]]]]
# An async embedder: text -> (vector or None, call records).
Embedder = Callable[[str], Awaitable[tuple[list[float] | None, list[Any]]]]


class NoveltyFilter:
    """Remembers every decided program (by key) and judges new candidates against them."""

    def __init__(self, config: NoveltyConfig, judge: Judge | None = None,
                 embedder: Embedder | None = None):
        self.config = config
        self.judge = judge
        self.embedder = embedder
        self._by_hash: dict[str, str] = {}
        self._codes: dict[str, str] = {}
        # Near-duplicates must share their numbers and bag of tokens: candidates are bucketed.
        self._buckets: dict[tuple[tuple[str, ...], int], list[tuple[str, frozenset[int]]]] = {}
        self._embeddings: list[tuple[str, list[float]]] = []

    def __len__(self) -> int:
        return len(self._codes)

    def known(self, code_hash_value: str) -> str | None:
        return self._by_hash.get(code_hash_value)

    def remember(self, key: str, code: str, hash_value: str | None = None,
                 embedding: list[float] | None = None) -> None:
        """Register a decided program (evaluated, or about to be)."""
        hash_value = hash_value or code_hash(code)
        self._by_hash.setdefault(hash_value, key)
        self._codes[key] = code
        if self.config.enabled:
            fp = fingerprint(code, self.config.shingle_size)
            self._buckets.setdefault((fp.numbers, fp.bag), []).append((key, fp.shingles))
        if embedding is not None:
            self._embeddings.append((key, embedding))

    def _nearest_local(self, code: str) -> tuple[str | None, float]:
        fp = fingerprint(code, self.config.shingle_size)
        best_key, best = None, 0.0
        for key, shingles in self._buckets.get((fp.numbers, fp.bag), ()):
            sim = jaccard(fp.shingles, shingles)
            if sim > best:
                best_key, best = key, sim
        return best_key, best

    # The controller's path, in three steps so no network call happens under its ordered gate:
    # `embed` before the gate (depends on the code only), `decide` under it (no I/O; the
    # candidate is remembered there, also when the judge must still confirm it, so later
    # candidates see the same state whatever the judge answers and however long it takes), and
    # `confirm` after it.
    async def embed(self, code: str) -> tuple[list[float] | None, list[Any]]:
        if self.embedder is None or not self.config.enabled:
            return None, []
        return await self.embedder(editable_text(code))

    def decide(self, code: str, hash_value: str, embedding: list[float] | None) -> Verdict:
        existing = self._by_hash.get(hash_value)
        if existing is not None:
            return Verdict(False, "duplicate", existing, 1.0,
                           f"identical (after removing comments and layout) to program {existing}")
        if not self.config.enabled:
            return Verdict(True)
        threshold = self.config.similarity_threshold
        similar_key, similarity = self._nearest_local(code)
        method = "token-shingle"
        if embedding is not None:
            for key, other in self._embeddings:
                sim = cosine(embedding, other)
                if sim >= threshold and sim > similarity:
                    similar_key, similarity, method = key, sim, "embedding"
        if similar_key is None or similarity < threshold:
            return Verdict(True)
        return Verdict(False, "near-duplicate", similar_key, similarity,
                       f"{method} similarity {similarity:.3f} >= {threshold} to program "
                       f"{similar_key}", judge_pending=self.judge is not None)

    async def confirm(self, verdict: Verdict, code: str) -> Verdict:
        """The judge's word on a pending near-duplicate (the verdict itself otherwise)."""
        if not verdict.judge_pending or self.judge is None or verdict.similar_to is None:
            return verdict
        novel, calls = await self.judge(code, self._codes[verdict.similar_to])
        if novel:
            method = verdict.reason.split(" similarity")[0]
            return Verdict(True, similarity=verdict.similarity, similar_to=verdict.similar_to,
                           calls=calls, reason=f"{method} similarity {verdict.similarity:.3f} to "
                           f"program {verdict.similar_to}, but the judge found it novel")
        return Verdict(False, verdict.kind, verdict.similar_to, verdict.similarity,
                       verdict.reason, calls)

    async def check(self, code: str, hash_value: str | None = None) -> tuple[Verdict, list[float] | None]:
        """Decide on a candidate in one call (`embed`, `decide`, `confirm`, for callers without
        an ordered gate); returns the verdict and its embedding (to remember it with). An exact
        duplicate is decided without an embedding call."""
        hash_value = hash_value or code_hash(code)
        if self.known(hash_value) is not None:
            return self.decide(code, hash_value, None), None
        embedding, embed_calls = await self.embed(code)
        verdict = await self.confirm(self.decide(code, hash_value, embedding), code)
        verdict.calls = embed_calls + verdict.calls
        return verdict, embedding

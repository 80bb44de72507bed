"""Prefix hit rate of a sequence of strings, by the sorted-prefix method (numpy).

Row i's hit is the longest common prefix (LCP) of its string with any earlier row's string; the
hit rate is the sum of hits over the sum of lengths. Among the earlier strings, the one sharing
the longest prefix with s_i is one of its two nearest neighbours in lexicographic order (the LCP
of s_i with strings further away in sorted order can only shrink). So: sort once, find for each
rank the nearest rank on each side whose row came earlier (a previous/next-smaller-index scan
with a stack), and compute two LCPs per row, vectorised over code-point arrays. O(n log n) string
comparisons plus O(n x width) array work, instead of a trie's per-character Python loop.
"""

from __future__ import annotations

import numpy as np

# Every numpy callable used here, bound when the judge imports this module (before any candidate
# runs): a candidate that rebinds `numpy.minimum` or `numpy.argsort` (ufuncs and dispatchers,
# which the tamper guard does not snapshot) changes nothing in these names, and candidates may
# not import `problems.*`.
_array, _argsort, _fromiter, _int64, _uint32 = np.array, np.argsort, np.fromiter, np.int64, np.uint32
_maximum, _minimum, _where, _zeros = np.maximum, np.minimum, np.where, np.zeros

# Bounds the memory of one vectorised LCP batch (rows x width code points, 4 bytes each).
_BATCH_CELLS = 4_000_000


def _nearest_earlier(order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each rank r of the sorted order, the nearest rank to its left (and right) whose row
    index is smaller than order[r], or -1."""
    n = len(order)
    rows = order.tolist()
    left = [-1] * n
    right = [-1] * n
    stack: list[int] = []
    for r in range(n):  # previous smaller element
        while stack and rows[stack[-1]] > rows[r]:
            stack.pop()
        left[r] = stack[-1] if stack else -1
        stack.append(r)
    stack.clear()
    for r in range(n - 1, -1, -1):  # next smaller element
        while stack and rows[stack[-1]] > rows[r]:
            stack.pop()
        right[r] = stack[-1] if stack else -1
        stack.append(r)
    return _array(left, dtype=_int64), _array(right, dtype=_int64)


def _pair_lcp(codes: np.ndarray, lengths: np.ndarray, a: np.ndarray, b: np.ndarray,
              batch_cells: int) -> np.ndarray:
    """LCP of strings a[k] and b[k] (indices into codes, -1 meaning no partner: LCP 0)."""
    out = _zeros(len(a), dtype=_int64)
    width = codes.shape[1]
    if width == 0:
        return out
    batch = max(1, batch_cells // width)
    for start in range(0, len(a), batch):
        ia, ib = a[start:start + batch], b[start:start + batch]
        valid = ib >= 0
        ia, ib = ia[valid], ib[valid]
        differ = codes[ia] != codes[ib]
        first = _where(differ.any(axis=1), differ.argmax(axis=1), width)
        # Both strings are zero-padded to the width: past the shorter end the padding can match.
        chunk = _minimum(first, _minimum(lengths[ia], lengths[ib]))
        out[start:start + batch][valid] = chunk
    return out


def prefix_hits(strings: list[str], batch_cells: int = _BATCH_CELLS) -> np.ndarray:
    """Per-row hit: the LCP of strings[i] with any strings[j], j < i (0 for the first row).
    `batch_cells` bounds the code points compared in one vectorised step (memory)."""
    n = len(strings)
    if n == 0:
        return _zeros(0, dtype=_int64)
    if any("\x00" in s for s in strings):
        raise ValueError("strings must not contain NUL characters")
    array = _array(strings, dtype=str)  # fixed-width UCS-4, zero-padded
    width = array.dtype.itemsize // 4
    codes = array.view(_uint32).reshape(n, width) if width else _zeros((n, 0), _uint32)
    lengths = _fromiter((len(s) for s in strings), dtype=_int64, count=n)
    order = _argsort(array, kind="stable")
    left, right = _nearest_earlier(order)
    at_rank = order  # row index at each rank
    partner_left = _where(left >= 0, at_rank[_maximum(left, 0)], -1)
    partner_right = _where(right >= 0, at_rank[_maximum(right, 0)], -1)
    best = _maximum(_pair_lcp(codes, lengths, at_rank, partner_left, batch_cells),
                      _pair_lcp(codes, lengths, at_rank, partner_right, batch_cells))
    hits = _zeros(n, dtype=_int64)
    hits[at_rank] = best
    return hits


def hit_rate(strings: list[str]) -> float:
    """Sum of prefix hits over the sum of lengths (0 for an empty or all-empty table)."""
    total = sum(len(s) for s in strings)
    if total == 0:
        return 0.0
    return int(prefix_hits(strings).sum()) / total


def serialise(rows: list[list[str]]) -> list[str]:
    """Each row as the concatenation of its fields in order, no separators."""
    return ["".join(row) for row in rows]

"""Requests from the Azure LLM inference trace 2023 (Splitwise, ISCA '24; CC-BY 4.0).

A trace file is CSV (gzip): TIMESTAMP, ContextTokens (prompt), GeneratedTokens (output). A
window of it becomes a `Workload`: arrival times in seconds from the window's first request,
prompt and output lengths clipped so that prompt + output fits the model's context (output
first kept whole, then the prompt cut; every clipped request is counted). `compress` rescales
the arrival times to reach a target request rate.
"""

from __future__ import annotations

import csv
import gzip
import io
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Workload:
    name: str
    arrival_s: np.ndarray    # float64, non-decreasing, first = 0
    prompt: np.ndarray       # int64, >= 1
    output: np.ndarray       # int64, >= 1
    clipped: int             # requests whose prompt + output exceeded the context

    def __len__(self) -> int:
        return len(self.arrival_s)

    @property
    def span_s(self) -> float:
        return float(self.arrival_s[-1] - self.arrival_s[0]) if len(self) > 1 else 0.0

    def compress(self, factor: float, name: str | None = None) -> Workload:
        """Arrivals `factor` times closer together (factor > 1 raises the rate)."""
        if not factor > 0:
            raise ValueError(f"compression factor must be positive, got {factor}")
        return Workload(name or self.name, self.arrival_s / factor, self.prompt, self.output,
                        self.clipped)

    def head(self, count: int) -> Workload:
        return Workload(self.name, self.arrival_s[:count], self.prompt[:count],
                        self.output[:count], self.clipped)


def _seconds(stamp: str) -> float:
    # "2023-11-16 18:17:03.9799600": seven fractional digits, more than fromisoformat takes.
    head, _, frac = stamp.partition(".")
    return datetime.fromisoformat(head).timestamp() + float("0." + (frac or "0"))


def load_trace(path: Path | bytes, name: str, context_tokens: int,
               minutes: float | None = None) -> Workload:
    """The first `minutes` of the trace (all of it when None), clipped to the context. `path`
    may be the gzipped file's bytes (in the sandbox the trace comes as a hidden descriptor)."""
    source = io.BytesIO(path) if isinstance(path, bytes) else path
    with gzip.open(source, "rt", newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        raise ValueError(f"{name}: no requests")
    stamps = np.array([_seconds(r["TIMESTAMP"]) for r in rows])
    arrival = stamps - stamps[0]
    if np.any(np.diff(arrival) < 0):
        raise ValueError(f"{name}: timestamps are not sorted")
    prompt = np.array([int(r["ContextTokens"]) for r in rows], dtype=np.int64)
    output = np.array([int(r["GeneratedTokens"]) for r in rows], dtype=np.int64)
    if minutes is not None:
        keep = arrival < minutes * 60.0
        arrival, prompt, output = arrival[keep], prompt[keep], output[keep]
    prompt = np.maximum(prompt, 1)
    output = np.maximum(output, 1)
    over = prompt + output > context_tokens
    output = np.minimum(output, context_tokens - 1)
    prompt = np.minimum(prompt, context_tokens - output)
    return Workload(name, arrival, prompt, output, int(over.sum()))

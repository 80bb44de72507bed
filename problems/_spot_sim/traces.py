"""Load the spot traces into compact per-trace rows.

In the data files 1 means spot is UNAVAILABLE during that tick. Everything here flips that:
an availability row is a `bytes` object with 1 = spot available, so a policy never has to
remember the inverted convention and the row cannot be modified in place.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO


def _opened(path: str | Path | BinaryIO) -> BinaryIO:
    """An open binary file: the one given (a hidden file's descriptor) or the path opened."""
    return path if hasattr(path, "read") else open(path, "rb")  # type: ignore[return-value]


def _availability(raw: list[int]) -> bytes:
    return bytes(0 if v else 1 for v in raw)


@dataclass(frozen=True)
class SingleRegionData:
    gap_s: int
    envs: dict[str, tuple[bytes, ...]]  # env name -> availability rows


@dataclass(frozen=True)
class RegionTrace:
    available: bytes
    prices: tuple[float, ...]  # $/h per tick


@dataclass(frozen=True)
class MultiRegionData:
    gap_s: int
    on_demand_price: float
    regions: dict[str, tuple[RegionTrace, ...]]  # region name -> aligned traces


def load_single(path: str | Path | BinaryIO) -> SingleRegionData:
    with _opened(path) as source, gzip.open(source, "rt") as fh:
        raw = json.load(fh)
    envs = {env: tuple(_availability(t) for t in traces) for env, traces in raw["traces"].items()}
    return SingleRegionData(gap_s=int(raw["gap_seconds"]), envs=envs)


def load_multi(path: str | Path | BinaryIO) -> MultiRegionData:
    with _opened(path) as source, gzip.open(source, "rt") as fh:
        raw = json.load(fh)
    regions = {
        region: tuple(RegionTrace(_availability(t["data"]), tuple(float(p) for p in t["prices"]))
                      for t in traces)
        for region, traces in raw["traces"].items()
    }
    return MultiRegionData(gap_s=int(raw["gap_seconds"]),
                           on_demand_price=float(raw["on_demand_price_per_hour"]),
                           regions=regions)

"""The search range of each literal of a skeleton, as Optuna distributions.

A range is a pure function of the skeleton's trials (so a resume rebuilds it exactly):
- it starts from the first trial's value (the anchor): a positive float spans a factor
  `SPAN` either side on a log scale, a negative float the same on its magnitude (the sign is
  kept), a zero float [-1, 1]; an int v spans v +- max(1, v // 4) on its magnitude, not below
  zero (log scale once that range is wide); a boolean is a choice of both values;
- it always covers every value tried so far (an LLM may have written any);
- it widens on a side where the best trial's value sits on (or within `EDGE` of) the bound:
  a factor `SPAN` further on a log scale, one more width on a linear one. As the optimiser
  then moves there, the next best sits on the new bound and the range widens again.
Negative values are searched as magnitudes, so every float range can be on a log scale.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

SPAN = 1.5         # a float's range: anchor / SPAN .. anchor * SPAN (local: a skeleton is
                   # a program that already works; widening takes the search further)
EDGE = 0.02        # "on the bound": within this fraction of the (log) width
INT_LOG_RATIO = 16  # an int range this wide (hi / lo) is searched on a log scale


@dataclass(frozen=True)
class Dimension:
    """One literal's search range; `sign` maps the searched magnitude back (-1 or 1)."""

    kind: type
    low: float
    high: float
    log: bool
    sign: int = 1

    def distribution(self) -> BaseDistribution:
        if self.kind is bool:
            return CategoricalDistribution((False, True))
        if self.kind is int:
            return IntDistribution(int(self.low), int(self.high), log=self.log)
        return FloatDistribution(self.low, self.high, log=self.log)

    def to_param(self, value: float | int | bool) -> float | int | bool:
        if self.kind is bool:
            return bool(value)
        return self.kind(self.sign * value)

    def to_value(self, param: float | int | bool) -> float | int | bool:
        if self.kind is bool:
            return bool(param)
        return self.kind(self.sign * param)

    def on_bound(self, param: float) -> tuple[bool, bool]:
        """(on the low bound, on the high bound) for a searched value."""
        if self.kind is bool:
            return False, False
        if self.kind is int and not self.log:
            return param <= self.low, param >= self.high
        scale = math.log if self.log else (lambda x: x)
        width = scale(self.high) - scale(self.low)
        if width <= 0:
            return True, True
        where = (scale(param) - scale(self.low)) / width
        return where <= EDGE, where >= 1 - EDGE


def _anchor_range(kind: type, value: float) -> tuple[float, float, int]:
    """(low, high, sign) around the first value seen."""
    if kind is float:
        if value == 0:
            return -1.0, 1.0, 1
        magnitude = abs(value)
        return magnitude / SPAN, magnitude * SPAN, 1 if value > 0 else -1
    magnitude = abs(int(value))
    sign = -1 if value < 0 else 1
    step = max(1, magnitude // 4)
    return max(0, magnitude - step), magnitude + step, sign


def dimension(kind: type, values: Sequence[float | int | bool],
              best: float | int | bool | None) -> Dimension:
    """The range for one literal given every value tried (first = anchor) and the best one."""
    if kind is bool:
        return Dimension(bool, 0, 1, False)
    low, high, sign = _anchor_range(kind, float(values[0]))
    if kind is float and low < 0:  # the zero-anchored linear range
        sign = 1
    searched = [sign * float(v) for v in values]
    if kind is float and low > 0 and min(searched) <= 0:
        # A value crossed zero: search the signed value on a linear scale instead.
        sign, low, high = 1, -high, high
        searched = [float(v) for v in values]
    low, high = min(low, *searched), max(high, *searched)
    log = (kind is float and low > 0) or (kind is int and low >= 1 and high >= INT_LOG_RATIO * low)
    probe = Dimension(kind, low, high, log, sign)
    if best is not None:
        at_low, at_high = probe.on_bound(sign * float(best))
        low, high = _widen(kind, low, high, log, at_low, at_high)
    if kind is int:
        low, high = math.floor(low), math.ceil(high)
        if low == high:
            high = low + 1
        log = log and low >= 1
    return Dimension(kind, low, high, log, sign)


def _widen(kind: type, low: float, high: float, log: bool, at_low: bool,
           at_high: bool) -> tuple[float, float]:
    if log:
        if at_low:
            low = low / SPAN if kind is float else max(1, low // 4)
        if at_high:
            high = high * SPAN if kind is float else high * 4
        return low, high
    width = high - low
    if kind is int:
        width = max(width, 2)
    if at_low:
        low -= width
    if at_high:
        high += width
    return low, high

"""Judge of circle_packing: 26 circles in the unit square, maximise the sum of radii.

The program runs in its own sandboxed process; the judge calls its `pack_circles(26)` there and
receives the circles as plain data. Validation is exact: every coordinate is converted to a Python float, then to a Fraction (an
exact rational), and containment and non-overlap are checked with rational arithmetic. Zero
tolerance: other frameworks' evaluators accepted packings that overlapped by rounding errors.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

from evaluators.harness_api import Candidate, CandidateError, evaluate_locally

N_CIRCLES = 26
BEST_KNOWN = 2.6359


def _invalid(feedback: str, **metrics: Any) -> dict[str, Any]:
    return {"score": 0.0, "valid": False, "metrics": metrics, "feedback": feedback}


def _as_float(value: Any) -> float:
    """A genuine float copy of a number (bool and str are rejected, NaN/inf reported later)."""
    if isinstance(value, bool | str | bytes):
        raise TypeError(f"{type(value).__name__} is not a number")
    result = float(value)
    if type(result) is not float:  # a __float__ that returns a float subclass
        raise TypeError("__float__ did not return a plain float")
    return result


def read_circles(raw: Any, n: int) -> list[tuple[float, float, float]]:
    """Copy the candidate's output into plain floats; raise ValueError describing the problem."""
    try:
        items = list(raw)
    except TypeError as exc:
        raise ValueError(f"pack_circles must return a list of (x, y, r), got {type(raw).__name__}") from exc
    if len(items) != n:
        raise ValueError(f"expected exactly {n} circles, got {len(items)}")
    circles = []
    for i, item in enumerate(items):
        try:
            parts = list(item)
        except TypeError as exc:
            raise ValueError(f"circle {i} is {type(item).__name__}, not an (x, y, r) triple") from exc
        if len(parts) != 3:
            raise ValueError(f"circle {i} has {len(parts)} values, expected 3 (x, y, r)")
        try:
            x, y, r = (_as_float(v) for v in parts)
        except (TypeError, ValueError, OverflowError) as exc:
            raise ValueError(f"circle {i}: {exc}") from exc
        circles.append((x, y, r))
    return circles


def check_packing(circles: list[tuple[float, float, float]]) -> list[str]:
    """Every violation, exactly (rational arithmetic); an empty list means valid."""
    problems: list[str] = []
    exact = []
    for i, (x, y, r) in enumerate(circles):
        if not all(math.isfinite(v) for v in (x, y, r)):
            problems.append(f"circle {i} has a non-finite value ({x}, {y}, {r})")
            continue
        if r <= 0:
            problems.append(f"circle {i} has radius {r!r} <= 0")
        fx, fy, fr = Fraction(x), Fraction(y), Fraction(r)
        if fx - fr < 0 or fx + fr > 1 or fy - fr < 0 or fy + fr > 1:
            problems.append(f"circle {i} at ({x!r}, {y!r}) with radius {r!r} leaves the unit square")
        exact.append((i, fx, fy, fr))
    for a in range(len(exact)):
        i, xi, yi, ri = exact[a]
        for b in range(a + 1, len(exact)):
            j, xj, yj, rj = exact[b]
            dx, dy, rs = xi - xj, yi - yj, ri + rj
            if dx * dx + dy * dy < rs * rs:
                gap = math.hypot(float(dx), float(dy)) - float(rs)
                problems.append(f"circles {i} and {j} overlap (centre distance - radii sum = {gap:.3g})")
    return problems


def judge(candidate: Candidate, stage: str) -> dict[str, Any]:
    try:
        raw = candidate.call("pack_circles", N_CIRCLES)
    except CandidateError as exc:  # the candidate's own failure is a result, not a crash
        return _invalid(str(exc))
    seconds = candidate.cpu_s  # its own CPU time, import included
    try:
        circles = read_circles(raw, N_CIRCLES)
    except ValueError as exc:
        return _invalid(str(exc), runtime_s=seconds)
    problems = check_packing(circles)
    radii = [r for _, _, r in circles]
    if problems:
        shown = "; ".join(problems[:5])
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        return _invalid(f"invalid packing: {shown}{more}", runtime_s=seconds,
                        violations=len(problems))
    total = math.fsum(radii)
    metrics = {
        "sum_radii": total,
        "min_radius": min(radii),
        "radius_spread": max(radii) - min(radii),
        "n_circles": len(circles),
        "runtime_s": seconds,
        "fraction_of_best_known": total / BEST_KNOWN,
    }
    feedback = (f"valid packing of {len(circles)} circles, sum of radii {total:.6f} "
                f"({100 * total / BEST_KNOWN:.2f}% of the best known {BEST_KNOWN}); smallest radius "
                f"{min(radii):.4f}, largest {max(radii):.4f}")
    return {"score": total, "valid": True, "metrics": metrics, "feedback": feedback}


def evaluate(program_path: str, stage: str) -> dict[str, Any]:
    """The judge against a local, unsandboxed candidate process (scripts and tests)."""
    return evaluate_locally(judge, program_path, stage)

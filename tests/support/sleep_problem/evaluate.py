"""Fixture evaluator: score = what solve() returns, after checking it slept that long."""

from __future__ import annotations

import math
import time
from typing import Any

from evaluators.harness_api import CandidateLoadError, get_function, load_candidate


def evaluate(program_path: str, stage: str) -> dict[str, Any]:
    try:
        fn = get_function(load_candidate(program_path), "solve")
    except CandidateLoadError as exc:
        return {"score": 0.0, "valid": False, "metrics": {}, "feedback": f"load failed: {exc}"}
    start = time.perf_counter()
    value = fn()
    slept = time.perf_counter() - start
    if not isinstance(value, int | float) or not math.isfinite(value) or slept < value:
        return {"score": 0.0, "valid": False, "metrics": {},
                "feedback": f"solve returned {value!r} after {slept:.3f} s"}
    return {"score": float(value), "valid": True, "metrics": {"seconds": float(value)},
            "feedback": f"slept {value:g} s"}

"""Toy evaluator: the candidate only proposes (a, b); the objective is computed here."""

import math

from evaluators.harness_api import call_timed, get_function, load_candidate


def evaluate(program_path, stage):
    solve = get_function(load_candidate(program_path), "solve")
    out, seconds = call_timed(solve)
    try:
        a, b = (float(v) for v in out)
    except (TypeError, ValueError):
        return {"score": 0.0, "valid": False, "metrics": {},
                "feedback": f"solve() must return two numbers, got {out!r}"}
    if not (math.isfinite(a) and math.isfinite(b)):
        return {"score": 0.0, "valid": False, "metrics": {}, "feedback": "a and b must be finite"}
    objective = 10.0 - (a - 2.5) ** 2 - (b - 4.0) ** 2
    return {"score": objective, "valid": True,
            "metrics": {"objective": objective, "a": a, "b": b, "seconds": seconds},
            "feedback": f"objective {objective:.4f} (maximum 10.0)"}

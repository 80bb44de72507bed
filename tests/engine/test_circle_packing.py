"""The circle-packing evaluator: strict, exact validation."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location(
    "circle_packing_evaluate", ROOT / "problems" / "circle_packing" / "evaluate.py")
assert _spec is not None and _spec.loader is not None
cp = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cp)


def write(tmp_path: Path, body: str) -> str:
    path = tmp_path / "candidate.py"
    path.write_text(body)
    return str(path)


def test_initial_and_baselines_are_valid_with_the_documented_scores():
    initial = cp.evaluate(str(ROOT / "problems/circle_packing/initial.py"), "main")
    grid = cp.evaluate(str(ROOT / "problems/circle_packing/baselines/grid.py"), "main")
    assert initial["valid"] and initial["score"] == pytest.approx(1.4529, abs=1e-4)
    assert grid["valid"] and grid["score"] == pytest.approx(2.5414, abs=1e-4)


def test_overlap_by_one_rounding_error_is_invalid(tmp_path):
    # Two circles of radius 0.25 whose centres are 0.5 apart touch exactly: valid. Nudge one
    # centre by a single ulp and they overlap: invalid, with zero tolerance.
    def program(x2: float) -> str:
        circles = [(0.25, 0.25, 0.25), (x2, 0.25, 0.25)]
        circles += [(0.1 + 0.03 * i, 0.9, 0.001) for i in range(24)]
        return f"def pack_circles(n=26):\n    return {circles!r}\n"

    assert cp.evaluate(write(tmp_path, program(0.75)), "main")["valid"]
    bad = cp.evaluate(write(tmp_path, program(math.nextafter(0.75, 0))), "main")
    assert not bad["valid"] and "circles 0 and 1 overlap" in bad["feedback"]


@pytest.mark.parametrize("body, message", [
    ("def pack_circles(n=26):\n    return [(0.5, 0.5, 0.1)] * 25\n", "exactly 26"),
    ("def pack_circles(n=26):\n    return [(0.5, 0.5, float('nan'))] * 26\n", "non-finite"),
    ("def pack_circles(n=26):\n    return [(0.05 * (i % 20) + 0.02, 0.5, 0.02 + 1e-17) for i in range(26)]\n",
     "overlap"),
    ("def pack_circles(n=26):\n    return [(0.99, 0.5, 0.02)] + [(0.5, 0.03 * i + 0.1, 0.001) for i in range(25)]\n",
     "leaves the unit square"),
    ("def pack_circles(n=26):\n    return [('0.5', 0.5, 0.1)] * 26\n", "not a number"),
    ("def pack_circles(n=26):\n    raise RuntimeError('boom')\n", "RuntimeError: boom"),
    ("def pack_circles(n=26):\n    return [(0.5, 0.5, -0.1)] * 26\n", "<= 0"),
])
def test_invalid_outputs_are_rejected_with_a_reason(tmp_path, body, message):
    result = cp.evaluate(write(tmp_path, body), "main")
    assert not result["valid"] and result["score"] == 0.0
    assert message in result["feedback"]

"""evaluators.plain without an eager numpy import: numpy values are still recognised, by their
static C types, and forged look-alikes are not."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from evaluators.plain import plain_float, plain_int, plain_list

REPO = Path(__file__).resolve().parents[2]


def test_the_harness_imports_no_numpy_for_a_problem_that_does_not_use_it():
    code = ("import sys\nimport evaluators.harness, evaluators.harness_api\n"
            "print('numpy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=REPO, timeout=60, check=True).stdout
    assert out.strip() == "False"


def test_genuine_numpy_values_are_accepted():
    np = pytest.importorskip("numpy")
    assert plain_int(np.int64(5)) == 5 and type(plain_int(np.uint8(3))) is int
    assert plain_float(np.float32(1.5)) == 1.5 and plain_float(np.int16(4)) == 4.0
    assert plain_list(np.arange(3)) == [0, 1, 2]
    with pytest.raises(TypeError, match="bool"):
        plain_int(np.bool_(True))


def test_a_python_class_dressed_up_as_numpy_is_refused():
    class Lying:
        calls = 0

        def __int__(self) -> int:
            Lying.calls += 1
            return Lying.calls

    class Array(list):
        pass

    for cls, name in ((Lying, "int64"), (Array, "ndarray")):
        cls.__module__, cls.__name__, cls.__qualname__ = "numpy", name, name
    with pytest.raises(TypeError):
        plain_int(Lying())
    with pytest.raises(TypeError):
        plain_float(Lying())
    with pytest.raises(TypeError):
        plain_list(Array([1, 2]))
    assert Lying.calls == 0

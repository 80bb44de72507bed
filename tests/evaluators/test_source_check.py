"""The static source check and the plain_* output coercion (no sandbox: fast, exact reasons)."""

from __future__ import annotations

import enum

import pytest

from evaluators.plain import plain_array, plain_float, plain_int, plain_list
from evaluators.source_check import check_source


@pytest.mark.parametrize("source, words", [
    ("import sys\n\n\ndef f():\n    return sys._getframe(1).f_back\n",
     "line 5: sys._getframe is not allowed in a candidate: it reads the evaluator's state"),
    ("import gc\n", "line 1: import gc is not allowed"),
    ("from inspect import stack\n", "import inspect is not allowed"),
    ("import ctypes\n", "import ctypes is not allowed"),
    ("import evaluate\n", "import evaluate is not allowed in a candidate: it is the evaluator's"),
    ("from problems._spot_sim import simulate\n", "import problems._spot_sim is not allowed"),
    ("import importlib\n", "import importlib is not allowed"),
    ("import sys as s\nm = s.modules\n", "sys.modules is not allowed"),
    ("from sys import modules\n", "sys.modules is not allowed"),
    ("def f(g):\n    return g.__globals__\n", "__globals__ is not allowed"),
    ("def f(g):\n    g.__kwdefaults__['x'] = 1\n", "__kwdefaults__ is not allowed"),
    ("x = getattr(object, name)\n", "getattr() with a computed attribute name"),
    ("x = getattr(f, '__code__')\n", "the string '__code__' is not allowed"),
    ("x = getattr(sys, 'modules')\n", "getattr(..., 'modules') is not allowed"),
    ("g = getattr\n", "getattr used as a value"),
    ("from operator import attrgetter\nf = attrgetter(n)\n", "attrgetter() with a computed"),
    ("x = eval('1')\n", "eval is not allowed"),
    ("x = __import__('gc')\n", "__import__ is not allowed"),
    ("x = vars(object)\n", "vars is not allowed"),
    ("x = '{0.modules[evaluate].RUNS}'.format(sys)\n", "the format string"),
    ("try:\n    pass\nexcept Exception as e:\n    t = e.__traceback__\n", "__traceback__"),
    ("import _thread\n", "import _thread is not allowed"),
    ("import math\nobject.__setattr__(math, 'fsum', max)\n", "__setattr__ is not allowed"),
    ("import timeit\n", "import timeit is not allowed"),
    ("from logging import config\n", "import logging.config is not allowed"),
])
def test_escape_hatches_are_refused_with_the_line_and_the_reason(source, words):
    reason = check_source(source, {"evaluate"})
    assert reason is not None and words in reason, reason


def test_ordinary_code_passes():
    source = '''
import dataclasses, heapq, itertools, math, random, subprocess, sys, threading
from collections import namedtuple
import numpy as np


@dataclasses.dataclass
class Item:
    weight: float


def solve(model, xs):
    """Uses the modules of the standard library."""
    size = getattr(model, "size", 0) + sys.maxsize % 7
    layers = [m for m in model.modules()]
    best = heapq.nsmallest(3, xs)
    return sorted(xs), np.asarray(best).sum(), math.inf, layers, size
'''
    assert check_source(source, {"evaluate"}) is None


def test_a_syntax_error_is_left_to_the_import():
    assert check_source("def f(:\n", set()) is None


class Liar(int):
    def __eq__(self, other):
        return True

    def __int__(self):
        return 99

    __hash__ = int.__hash__


class Color(enum.IntEnum):
    RED = 2


def test_plain_int_reads_the_genuine_value_of_int_subclasses():
    assert plain_int(Liar(1)) == 1 and type(plain_int(Liar(1))) is int
    assert plain_int(Color.RED) == 2
    np = pytest.importorskip("numpy")
    assert plain_int(np.int64(7)) == 7
    for bad in (True, 1.0, "1", None, np.bool_(True)):
        with pytest.raises(TypeError):
            plain_int(bad)


def test_plain_int_refuses_an_object_that_claims_to_be_an_int():
    class Fake:
        __class__ = property(lambda self: int)

    assert isinstance(Fake(), int)  # what makes isinstance-based validators unsafe
    with pytest.raises(TypeError):
        plain_int(Fake())


def test_plain_float_and_list_copy_plain_values():
    assert plain_float(3) == 3.0 and type(plain_float(Liar(2))) is float
    with pytest.raises(ValueError):
        plain_float(float("nan"), finite=True)

    class AlwaysEqual(list):
        def __eq__(self, other):
            return True

    with pytest.raises(TypeError):
        plain_list(AlwaysEqual([1]))
    with pytest.raises(TypeError):
        plain_list(iter([1, 2]))
    source = [1, 2, 3]
    copied = plain_list(source)
    source.append(4)  # a thread changing the output after the call changes nothing
    assert copied == [1, 2, 3]
    with pytest.raises(ValueError):
        plain_list([1, 2, 3], max_len=2)


def test_plain_array_is_a_fresh_exact_ndarray():
    np = pytest.importorskip("numpy")

    class Sub(np.ndarray):
        pass

    value = np.arange(4.0).view(Sub)
    out = plain_array(value, float, shape=(4,))
    assert type(out) is np.ndarray and not np.shares_memory(out, value)
    with pytest.raises(ValueError):
        plain_array([1.0, 2.0], float, shape=(3,))
    with pytest.raises(TypeError):
        plain_array(["a", object()], float)


@pytest.mark.parametrize("source", [
    "def solve(model):\n    vars = model.add_vars(3)\n    return [v for v in vars]\n",
    "def solve(eval):\n    return eval(1)\n",
    '"""We compile the schedule and eval each order."""\n',
    "def outer():\n    compile = len\n    def inner(xs):\n        return compile(xs)\n    return inner\n",
])
def test_a_function_variable_named_like_a_builtin_is_ordinary(source):
    assert check_source(source) is None


@pytest.mark.parametrize("source", [
    "vars = vars\nx = vars(object)\n",               # module level falls back to the builtin
    "def f():\n    global vars\n    vars = 1\n    return vars(object)\n",
    "class A:\n    eval = 1\n    x = eval('1')\n",
    "def f(xs):\n    return [eval(x) for x in xs]\n",
])
def test_the_builtin_itself_is_still_refused(source):
    assert check_source(source) is not None

"""Coerce a candidate's outputs into plain Python/numpy values before validating them.

A candidate's return value may be an object that lies: an int subclass whose `__eq__`/`__le__`
answer differently on each call, a list subclass whose `__eq__` always says True, an object that
claims `__class__ = int`, or a list a background thread keeps changing after the call returned.
Validators that first copy the output with these helpers check and score the same, genuine
values: subclasses of int/float are read through the base type's own slot (ignoring overrides),
containers are copied, and anything else is refused with a TypeError that says what to return.

numpy is not imported here (it costs tens of ms per evaluation for problems that never use it).
Numpy values are recognised by their type alone: numpy's scalar and array types are static C
types, which Python code cannot define, subclass into another static type, rename or re-parent,
so a static type named `numpy.*` whose bases include numpy's `integer` (or `floating`) is the
genuine article even when a candidate put a fake `numpy` module into `sys.modules`.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any

_HEAPTYPE = 1 << 9  # Py_TPFLAGS_HEAPTYPE: set on every class defined in Python
_NUMPY_KINDS: dict[type, str | None] = {}
# numpy itself, taken from sys.modules only while no candidate code has run (see bind_numpy).
_np: ModuleType | None = None
_final = False


def _static_numpy(kind: type) -> bool:
    return not kind.__flags__ & _HEAPTYPE and kind.__module__ == "numpy"


def _numpy_kind(kind: type) -> str | None:
    """'integer', 'floating', 'bool' or 'ndarray' for genuine numpy types, else None."""
    if kind not in _NUMPY_KINDS:
        found = None
        if _static_numpy(kind):
            if kind.__name__ in ("bool", "bool_", "ndarray"):
                found = "ndarray" if kind.__name__ == "ndarray" else "bool"
            else:
                found = next((b.__name__ for b in kind.__mro__ if _static_numpy(b)
                              and b.__name__ in ("integer", "floating")), None)
        _NUMPY_KINDS[kind] = found
    return _NUMPY_KINDS[kind]


def bind_numpy(*, final: bool = False) -> None:
    """Bind numpy for `plain_array` if it is imported. The harness calls this with
    `final=True` before any candidate code runs (the module in sys.modules is then the genuine
    one) and nothing binds it later; outside the harness `plain_array` binds it on first use."""
    global _np, _final
    module = sys.modules.get("numpy")
    if (_np is None and not _final and module is not None
            and _static_numpy(getattr(module, "ndarray", int))):
        _np = module
    _final = _final or final


bind_numpy()
_int_value = int.__int__      # the genuine value of any int subclass, whatever it overrides
_float_value = float.__float__


def plain_int(value: Any) -> int:
    """`value` as an exact int: ints (and int subclasses such as IntEnum, by their genuine
    value) and numpy integers; bools and everything else raise TypeError."""
    kind = type(value)
    if kind is int:
        return value
    numpy_kind = _numpy_kind(kind)
    if kind is bool or numpy_kind == "bool":
        raise TypeError(f"expected an integer, got a bool ({value!r})")
    if isinstance(value, int):
        return _int_value(value)
    if numpy_kind == "integer":
        return int(value)
    raise TypeError(f"expected an integer, got {kind.__name__}")


def plain_float(value: Any, *, finite: bool = False) -> float:
    """`value` as an exact float (from ints, floats, their subclasses' genuine values and numpy
    scalars); with `finite=True`, NaN and infinities raise ValueError."""
    kind = type(value)
    if kind is float:
        out = value
    elif kind is bool or _numpy_kind(kind) == "bool":
        raise TypeError(f"expected a number, got a bool ({value!r})")
    elif isinstance(value, float):
        out = _float_value(value)
    elif isinstance(value, int):
        out = float(_int_value(value))
    elif _numpy_kind(kind) in ("integer", "floating"):
        out = float(value)
    else:
        raise TypeError(f"expected a number, got {kind.__name__}")
    if finite and not math.isfinite(out):
        raise ValueError(f"expected a finite number, got {out!r}")
    return out


def plain_list(value: Any, item: Callable[[Any], Any] = plain_int, *,
               max_len: int | None = None) -> list[Any]:
    """A fresh list of `item(x)` for each element of a list, tuple, range or 1-D numpy array
    (exact types only: no subclasses, generators or custom iterables)."""
    kind = type(value)
    if _numpy_kind(kind) == "ndarray":
        if value.ndim != 1:
            raise TypeError(f"expected a 1-D sequence, got an array of shape {value.shape}")
        value = value.tolist()
    elif kind not in (list, tuple, range):
        raise TypeError(f"expected a list or tuple, got {kind.__name__}")
    if max_len is not None and len(value) > max_len:
        raise ValueError(f"expected at most {max_len} items, got {len(value)}")
    return [item(x) for x in list(value)]


def plain_array(value: Any, dtype: Any = float, *, shape: tuple[int, ...] | None = None) -> Any:
    """A fresh numpy array (exact `numpy.ndarray`, numeric `dtype`) copied from `value`;
    with `shape`, any other shape raises ValueError."""
    bind_numpy()
    if _np is None:
        raise RuntimeError("plain_array needs numpy, imported by the evaluator (at its top)")
    try:
        out = _np.array(value, dtype=dtype, copy=True, subok=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"expected numbers convertible to {_np.dtype(dtype).name}: {exc}") from None
    if out.dtype == object:
        raise TypeError("expected numbers, got Python objects")
    if shape is not None and out.shape != tuple(shape):
        raise ValueError(f"expected shape {tuple(shape)}, got {out.shape}")
    return out

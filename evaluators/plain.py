"""Coerce a candidate's outputs into plain Python/numpy values before validating them.

A candidate's return value may be an object that lies: an int subclass whose `__eq__`/`__le__`
answer differently on each call, a list subclass whose `__eq__` always says True, an object that
claims `__class__ = int`, or a list a background thread keeps changing after the call returned.
Validators that first copy the output with these helpers check and score the same, genuine
values: subclasses of int/float are read through the base type's own slot (ignoring overrides),
containers are copied, and anything else is refused with a TypeError that says what to return.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

try:
    import numpy as _np
except ImportError:  # numpy is optional for problems that do not use it
    _np = None

_NUMPY_INTS: frozenset[type] = frozenset(
    getattr(_np, n) for n in ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32",
                              "uint64", "intc", "intp", "longlong", "ulonglong")
    if _np is not None and hasattr(_np, n))
_NUMPY_FLOATS: frozenset[type] = frozenset(
    getattr(_np, n) for n in ("float16", "float32", "float64", "longdouble")
    if _np is not None and hasattr(_np, n))
_int_value = int.__int__      # the genuine value of any int subclass, whatever it overrides
_float_value = float.__float__


def plain_int(value: Any) -> int:
    """`value` as an exact int: ints (and int subclasses such as IntEnum, by their genuine
    value) and numpy integers; bools and everything else raise TypeError."""
    kind = type(value)
    if kind is int:
        return value
    if kind is bool or (_np is not None and kind is _np.bool_):
        raise TypeError(f"expected an integer, got a bool ({value!r})")
    if isinstance(value, int):
        return _int_value(value)
    if kind in _NUMPY_INTS:
        return int(value)
    raise TypeError(f"expected an integer, got {kind.__name__}")


def plain_float(value: Any, *, finite: bool = False) -> float:
    """`value` as an exact float (from ints, floats, their subclasses' genuine values and numpy
    scalars); with `finite=True`, NaN and infinities raise ValueError."""
    kind = type(value)
    if kind is float:
        out = value
    elif kind is bool or (_np is not None and kind is _np.bool_):
        raise TypeError(f"expected a number, got a bool ({value!r})")
    elif isinstance(value, float):
        out = _float_value(value)
    elif isinstance(value, int):
        out = float(_int_value(value))
    elif kind in _NUMPY_FLOATS or kind in _NUMPY_INTS:
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
    if _np is not None and kind is _np.ndarray:
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
    if _np is None:
        raise RuntimeError("plain_array needs numpy")
    try:
        out = _np.array(value, dtype=dtype, copy=True, subok=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"expected numbers convertible to {_np.dtype(dtype).name}: {exc}") from None
    if out.dtype == object:
        raise TypeError("expected numbers, got Python objects")
    if shape is not None and out.shape != tuple(shape):
        raise ValueError(f"expected shape {tuple(shape)}, got {out.shape}")
    return out

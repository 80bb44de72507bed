"""Reading an archive record's fields, whether the archive hands out objects or mappings, JSON
as text or decoded, times as datetimes, numbers or text."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any


def attr(record: Any, name: str, default: Any = None) -> Any:
    """A field of an archive record, whether the archive hands out objects or mappings."""
    if record is None:
        return default
    if isinstance(record, Mapping):
        value = record.get(name, default)
    else:
        value = getattr(record, name, default)
    return default if value is None else value


def as_json(value: Any, default: Any) -> Any:
    """A JSON column that may arrive decoded or as text."""
    if value is None:
        return default
    if isinstance(value, (str, bytes)):
        try:
            return json.loads(value)
        except ValueError:
            return default
    return value


def as_time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return None


def finite(value: Any) -> float | None:
    """A score as a float, or None for missing, NaN and infinities."""
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None

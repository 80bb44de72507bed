"""Conversions between callers' values and archive rows."""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any, TypeVar

from db.engine import finite_or_none

R = TypeVar("R")


def record(cls: type[R], row: Any) -> R:
    """A frozen record from an ORM row (copied now: nothing is loaded later)."""
    return cls(**{f.name: getattr(row, f.name) for f in dataclasses.fields(cls)})  # type: ignore[arg-type]


def code_hash_of(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


def stage_fields(stage: Any) -> dict[str, Any]:
    """A StageResult (or a mapping with its fields) as evaluation-row columns."""
    data = stage.model_dump() if hasattr(stage, "model_dump") else dict(stage)
    failure = data.get("failure")
    return {
        "stage": str(data["stage"]),
        "score": finite_or_none(data.get("score")),
        "valid": bool(data.get("valid", False)),
        "metrics": dict(data.get("metrics") or {}),
        "feedback": data.get("feedback") or "",
        "failure": None if failure is None else str(getattr(failure, "value", failure)),
        "reason": data.get("reason") or "",
        "wall_s": float(data.get("wall_s") or 0.0),
        "cpu_s": float(data.get("cpu_s") or 0.0),
        "stdout": data.get("stdout") or "",
        "stderr": data.get("stderr") or "",
        "isolation": data.get("isolation") or "",
    }


def text_or_none(value: Any) -> str | None:
    return None if value is None else str(getattr(value, "value", value))

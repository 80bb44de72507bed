"""Expert-load traces in vLLM's EPLB `load_history` format, for the expert-placement problem.

Document shape: `{"load_history": [{"logical_expert_load": [[count per expert] per layer]}, ...]}`,
one entry per optimizer step (global batch), counts = token-to-expert assignments observed by the
trainer. A `meta` key beside `load_history` says where the trace came from.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def load_history_document(history: list[list[list[int]]], **meta: Any) -> dict[str, Any]:
    """Wrap step -> layer -> expert counts as a load_history document."""
    if not history:
        raise ValueError("the load history is empty: train at least one step")
    layers, experts = len(history[0]), len(history[0][0])
    for step, loads in enumerate(history):
        if len(loads) != layers or any(len(row) != experts for row in loads):
            raise ValueError(f"step {step} has a different layer/expert shape than step 0")
    return {
        "load_history": [{"logical_expert_load": [[int(c) for c in row] for row in loads]}
                         for loads in history],
        "meta": {"num_layers": layers, "num_experts": experts, **meta},
    }


def write_load_history(path: str | Path, history: list[list[list[int]]], **meta: Any) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(load_history_document(history, **meta)))
    return path


def read_load_history(path: str | Path) -> list[list[list[int]]]:
    """Read a load_history file back as step -> layer -> expert counts."""
    doc = json.loads(Path(path).read_text())
    return [entry["logical_expert_load"] for entry in doc["load_history"]]

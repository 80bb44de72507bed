"""Shared helpers: baseline programs loaded as the harness loads them, and hand-built contexts."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from evaluators.harness_api import get_function, load_candidate  # noqa: E402
from problems.moe_lbl.interface import RoutingContext  # noqa: E402

PROBLEM = Path(__file__).resolve().parents[2] / "problems" / "moe_lbl"


def baseline(name: str):
    path = PROBLEM / "initial.py" if name == "initial" else PROBLEM / "baselines" / f"{name}.py"
    return get_function(load_candidate(path), "balancing_loss")


def make_ctx(probs: list[list[float]], topk: list[list[int]], global_counts: list[float],
             *, micro_index: int = 0, num_micro: int = 2) -> RoutingContext:
    p = torch.tensor(probs, dtype=torch.float32)
    logits = p.log().requires_grad_(True)
    idx = torch.tensor(topk)
    e = p.shape[1]
    micro = torch.bincount(idx.flatten(), minlength=e).float()
    return RoutingContext(
        layer=0, num_layers=1, num_experts=e, top_k=idx.shape[1], router_logits=logits,
        router_probs=logits.softmax(-1), topk_indices=idx, micro_counts=micro,
        global_counts=torch.tensor(global_counts), global_tokens=p.shape[0] * (micro_index + 1),
        prev_global_counts=torch.zeros(e), routing_bias=torch.zeros(e),
        micro_index=micro_index, num_micro=num_micro, step=0, total_steps=1)

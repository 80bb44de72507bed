"""The MoE layer under a placement: routing follows the load, outputs are right, the stage runs."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from problems.eplb import moe_kernel  # noqa: E402
from problems.eplb.placement import EplbConfig  # noqa: E402

TINY = dataclasses.replace(moe_kernel.CPU_DIMS, hidden=32, intermediate=16, tokens=64, top_k=4,
                           weight_pool=12, repeats=2, layers=1)
CFG = EplbConfig(num_replicas=16, num_groups=4, num_nodes=2, num_gpus=8)
LOAD = np.array([90, 132, 40, 61, 104, 165, 39, 4, 73, 56, 183, 86], dtype=float)


@pytest.fixture()
def phy2log(deepseek):
    return deepseek(torch.from_numpy(LOAD[None]), 16, 4, 2, 8)[0][0]


def test_token_counts_follow_the_load_and_respect_top_k():
    counts = moe_kernel.expert_token_counts(LOAD, tokens=64, top_k=4)
    assert counts.sum() == 256 and counts.max() <= 64
    np.testing.assert_allclose(counts, LOAD / LOAD.sum() * 256, atol=1.0)
    # An expert wanted by more than every token is capped and the rest spread over the others.
    capped = moe_kernel.expert_token_counts(np.array([100.0, 1, 1, 1, 0]), tokens=10, top_k=2)
    assert capped.tolist()[0] == 10 and capped.sum() == 20 and capped.max() <= 10


def test_routing_gives_each_token_distinct_experts():
    topk = moe_kernel.route_tokens(LOAD, tokens=64, top_k=4, seed=0)
    assert topk.shape == (64, 4)
    assert all(len(set(row)) == 4 for row in topk.tolist())
    np.testing.assert_array_equal(torch.bincount(topk.reshape(-1), minlength=12).numpy(),
                                  moe_kernel.expert_token_counts(LOAD, 64, 4))


def test_choices_go_to_replicas_of_their_expert_in_turn(phy2log):
    topk = moe_kernel.route_tokens(LOAD, tokens=64, top_k=4, seed=1)
    slot_of = moe_kernel.slots_for_choices(topk, phy2log)
    assert torch.equal(phy2log[slot_of], topk)
    per_slot = torch.bincount(slot_of.reshape(-1), minlength=16)
    for expert in range(12):
        slots = (phy2log == expert).nonzero().flatten()
        rows = per_slot[slots]
        assert int(rows.max() - rows.min()) <= 1          # split evenly over replicas


@pytest.mark.parametrize("column_major", [False, True])   # True is the layout used on CUDA
def test_placed_layer_computes_the_same_output_as_the_logical_experts(phy2log, column_major):
    layer = moe_kernel.MoELayer(TINY, seed=3, column_major=column_major)
    assert layer.grouped and "grouped_mm" in layer.backend
    topk = moe_kernel.route_tokens(LOAD, TINY.tokens, TINY.top_k, seed=2)
    gates = torch.softmax(torch.randn(TINY.tokens, TINY.top_k), dim=-1)
    x = torch.randn(TINY.tokens, TINY.hidden)
    slot_of = moe_kernel.slots_for_choices(topk, phy2log)
    out = moe_kernel.moe_forward(layer, x, slot_of, gates, phy2log, CFG.slots_per_gpu,
                                 CFG.num_gpus)
    # Reference: every token through its logical experts, no placement involved.
    ref = torch.zeros_like(x)
    inter = TINY.intermediate
    for expert in range(12):
        h = x @ layer.w_gate_up[expert % TINY.weight_pool]
        y = (torch.nn.functional.silu(h[:, :inter]) * h[:, inter:]) @ layer.w_down[expert % TINY.weight_pool]
        ref += ((topk == expert) * gates).sum(dim=1, keepdim=True) * y
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4)


def test_grouped_and_per_expert_paths_agree():
    layer = moe_kernel.MoELayer(TINY, seed=0)
    x = torch.randn(40, TINY.hidden)
    rows = [10, 0, 25, 5]
    w1, w2 = layer.w_gate_up[:4].contiguous(), layer.w_down[:4].contiguous()
    grouped = layer.expert_compute(x, rows, w1, w2)
    layer.grouped = False
    looped = layer.expert_compute(x, rows, w1, w2)
    torch.testing.assert_close(grouped, looped, rtol=1e-4, atol=1e-4)


def test_kernel_step_times_an_imbalanced_placement_slower():
    dims = dataclasses.replace(moe_kernel.CPU_DIMS, hidden=64, intermediate=32, tokens=1024,
                               top_k=2, repeats=3)
    layer = moe_kernel.MoELayer(dims)
    torch.set_num_threads(1)
    load = np.ones(12)
    load[[10, 5]] = 100.0
    # Both hot experts share GPU 0; the other slots hold the light experts.
    lopsided = torch.tensor([10, 5, 0, 1, 2, 3, 4, 6, 7, 8, 9, 11, 0, 1, 2, 3])
    step = moe_kernel.kernel_step(layer, load, lopsided, CFG.slots_per_gpu, CFG.num_gpus, seed=0)
    assert step["max_rank_rows"] > 5 * step["mean_rank_rows"]
    assert step["step_s"] > 2 * step["even_s"] > 0

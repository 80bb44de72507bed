"""The trainer: accumulated statistics, routing-bias updates, determinism (tiny config)."""

from __future__ import annotations

from dataclasses import replace

import pytest

torch = pytest.importorskip("torch")

from problems.moe_lbl.metrics import imbalance_l1  # noqa: E402
from problems.moe_lbl.model import (  # noqa: E402
    ModelConfig,
    MoEFeedForward,
    capacity_mask,
    queue_positions,
)
from problems.moe_lbl.trainer import CONFIGS, train  # noqa: E402
from tests.problems_moe.helpers import baseline  # noqa: E402

TINY = CONFIGS["tiny"]
TOKENS = TINY.micro_batch * TINY.model.seq_len   # tokens per micro-batch


def test_micro_and_global_counts_differ_as_accumulation_says():
    seen = []

    def recorder(ctx):
        seen.append(ctx)
        return torch.zeros(())

    train(recorder, replace(TINY, steps=2), seed=3)
    k, e = TINY.model.top_k, TINY.model.num_experts
    assert len(seen) == 2 * TINY.num_micro * TINY.model.n_layers
    for layer in range(TINY.model.n_layers):
        for step in range(2):
            ctxs = [c for c in seen if c.layer == layer and c.step == step]
            running = torch.zeros(e)
            for c in ctxs:
                assert float(c.micro_counts.sum()) == TOKENS * k
                running += c.micro_counts
                assert torch.equal(c.global_counts, running)
                assert c.global_tokens == TOKENS * (c.micro_index + 1)
            full = ctxs[-1].global_counts
            assert float(full.sum()) == TOKENS * k * TINY.num_micro
            # The global load is a mixture of the micro-batch loads, never less even than
            # their average; single-domain micro-batches route differently from the mixture.
            micro_imb = imbalance_l1(torch.stack([c.micro_counts for c in ctxs])).mean()
            assert float(imbalance_l1(full)) <= float(micro_imb) + 1e-12
            assert any(not torch.allclose(c.micro_counts / c.micro_counts.sum(),
                                          full / full.sum()) for c in ctxs)
        step0 = [c for c in seen if c.layer == layer and c.step == 0]
        step1 = [c for c in seen if c.layer == layer and c.step == 1]
        assert float(step0[0].prev_global_counts.sum()) == 0
        assert torch.equal(step1[0].prev_global_counts, step0[-1].global_counts)


def test_routing_bias_changes_selection_but_not_gates():
    torch.manual_seed(0)
    moe = MoEFeedForward(ModelConfig(d_model=16, num_experts=4, top_k=2, expert_hidden=8))
    x = torch.randn(2, 10, 16)
    _, plain = moe(x)
    assert not bool((plain.topk_indices == 3).any(dim=-1).all())
    moe.routing_bias[3] = 2.0
    _, biased = moe(x)
    assert bool((biased.topk_indices == 3).any(dim=-1).all())   # every token now picks expert 3
    assert torch.equal(plain.probs, biased.probs)


def test_a_bias_strategy_changes_routing_during_training():
    def push_expert_zero(ctx):
        zero = torch.zeros(())
        if ctx.micro_index < ctx.num_micro - 1:
            return zero
        return zero, torch.tensor([1.0] + [0.0] * (ctx.num_experts - 1))

    cfg = replace(TINY, steps=3)
    pushed = train(push_expert_zero, cfg, seed=1)
    plain = train(baseline("no_balancing"), cfg, seed=1)
    per_step = TOKENS * TINY.num_micro
    # The update lands after step 0's optimizer step: step 0 routes alike, later steps do not.
    assert pushed.load_history[0] == plain.load_history[0]
    for layer in range(TINY.model.n_layers):
        assert pushed.load_history[1][layer][0] == per_step  # every token picks expert 0
        assert plain.load_history[1][layer][0] < per_step
    assert pushed.routing_bias[0][0] == pytest.approx(3.0)


def test_aux_free_baseline_moves_bias_and_routing():
    cfg = replace(TINY, steps=8)
    free = train(baseline("aux_free_bias"), cfg, seed=2)
    plain = train(baseline("no_balancing"), cfg, seed=2)
    assert any(abs(b) > 0 for layer in free.routing_bias for b in layer)
    assert free.load_history[1:] != plain.load_history[1:]


def test_same_seed_same_result_other_seed_differs():
    a = train(baseline("global_batch"), TINY, seed=5)
    b = train(baseline("global_batch"), TINY, seed=5)
    c = train(baseline("global_batch"), TINY, seed=6)
    timing = {"candidate_seconds", "train_seconds"}
    strip = lambda m: {k: v for k, v in m.items() if k not in timing}  # noqa: E731
    assert strip(a.metrics) == strip(b.metrics)
    assert a.load_history == b.load_history
    assert strip(a.metrics) != strip(c.metrics)


def test_grouped_expert_dispatch_computes_what_the_per_expert_loop_does():
    """The GPU path (sorted, padded, batched matmuls) must be the same function with the same
    gradients as the CPU path's per-expert loop, including experts that get no token."""
    torch.manual_seed(0)
    cfg = ModelConfig(d_model=16, n_heads=2, n_layers=1, num_experts=6, top_k=2,
                      expert_hidden=24, seq_len=8)
    layer = MoEFeedForward(cfg).double()
    x = torch.randn(40, 16, dtype=torch.float64, requires_grad=True)
    # Route every token to experts 0-2 only, so experts 3-5 are empty and 0-2 unevenly loaded.
    topk = torch.stack([torch.arange(40) % 3, (torch.arange(40) // 3) % 2 + 1], dim=1)
    topk[topk[:, 0] == topk[:, 1], 1] = 0
    # Some assignments dropped for capacity: their gate is zero, as the forward pass makes it.
    kept = torch.rand(40, 2) > 0.2
    gates = torch.rand(40, 2, dtype=torch.float64) * kept
    looped = layer._experts_looped(x, topk, gates, kept)
    grouped = layer._experts_grouped(x, topk, gates, kept, queue_positions(topk, gates, 6))
    assert torch.allclose(looped, grouped, atol=1e-12)
    params = [x, layer.w_in, layer.w_out]
    g_loop = torch.autograd.grad((looped ** 2).sum(), params)
    g_group = torch.autograd.grad((grouped ** 2).sum(), params)
    for a, b in zip(g_loop, g_group, strict=True):
        assert torch.allclose(a, b, atol=1e-12)


def test_training_with_the_grouped_dispatch_matches_the_loop(monkeypatch):
    results = []
    for grouped in (False, True):
        monkeypatch.setattr(MoEFeedForward, "grouped", grouped)
        results.append(train(baseline("global_batch"), replace(TINY, steps=3), seed=1))
    looped, grouped = results
    assert looped.load_history == grouped.load_history
    assert abs(looped.metrics["val_ce"] - grouped.metrics["val_ce"]) < 1e-4


def test_each_expert_keeps_its_highest_priority_assignments_up_to_capacity():
    topk = torch.tensor([[0, 1], [0, 2], [0, 1], [1, 0], [2, 0]])
    priority = torch.tensor([[0.5, 0.1], [0.9, 0.05], [0.5, 0.3], [0.6, 0.2], [0.7, 0.2]])
    kept = capacity_mask(topk, priority, num_experts=3, capacity=2)
    # Expert 0 has five assignments: it keeps 0.9 and the first (by position) of the 0.5 tie.
    assert kept[:, 0].tolist() == [True, True, False, True, True]
    # Expert 1 has three (0.1, 0.3, 0.6): it drops the 0.1; expert 2's two both fit.
    assert kept[:, 1].tolist() == [False, True, True, False, False]
    assert capacity_mask(topk, priority, 3, capacity=5).all()


def test_an_overloaded_expert_drops_what_exceeds_its_capacity():
    torch.manual_seed(0)
    cfg = ModelConfig(d_model=16, num_experts=4, top_k=2, expert_hidden=8, capacity_factor=1.25)
    moe = MoEFeedForward(cfg)
    moe.routing_bias[:2] = 10.0      # every token now selects experts 0 and 1
    x = torch.randn(2, 16, 16)
    out, routing = moe(x)
    # 32 tokens x 2 = 64 assignments over 4 experts: capacity ceil(1.25 * 16) = 20 each, so
    # experts 0 and 1 (32 each) keep 20 and drop 12.
    assert sorted(routing.topk_indices.unique().tolist()) == [0, 1]
    assert int((~routing.kept).sum()) == 24
    for expert in (0, 1):
        assert int((routing.kept & (routing.topk_indices == expert)).sum()) == 20
    both_dropped = (~routing.kept).all(dim=1)
    assert torch.equal(out.reshape(-1, 16)[both_dropped], torch.zeros(int(both_dropped.sum()), 16))


def test_capacity_is_shared_by_the_whole_global_batch_and_drops_are_reported():
    """A strategy that sends every token to two experts loses exactly what exceeds their
    capacity over a global batch; the same run without a capacity limit drops nothing."""
    def two_experts(ctx):
        if ctx.step > 0 or ctx.micro_index + 1 < ctx.num_micro:
            return torch.zeros(())
        return torch.zeros(()), torch.tensor([10.0, 10.0] + [0.0] * (ctx.num_experts - 2))

    capped = replace(TINY, model=replace(TINY.model, capacity_factor=1.25))
    metrics = train(two_experts, replace(capped, steps=3), seed=0).metrics
    # 4 experts, top-2: each of the two takes every token, keeps 1.25/2 of them.
    assert metrics["drop_fraction"] == pytest.approx(1 - 1.25 / 2)
    assert metrics["imbalance_l1"] == pytest.approx(1.0)
    dropless = replace(TINY, model=replace(TINY.model, capacity_factor=None))
    assert train(two_experts, replace(dropless, steps=3), seed=0).metrics["drop_fraction"] == 0

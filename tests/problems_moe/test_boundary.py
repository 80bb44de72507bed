"""The step messages between the judge and the candidate's `balancing_loss` (boundary.py): the
gradient the judge injects is, bit for bit, the one the loss has inside the judge's graph."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from evaluators import channel  # noqa: E402
from problems.moe_lbl.boundary import (  # noqa: E402
    StepShape,
    check_reply,
    inject,
    step_message,
    step_reply,
)
from problems.moe_lbl.interface import RoutingContext  # noqa: E402

LAYERS, MICRO, TOKENS, EXPERTS, TOP_K = 2, 4, 16, 4, 2
SHAPE = StepShape(layers=LAYERS, micro=MICRO, tokens=TOKENS, experts=EXPERTS, top_k=TOP_K)


def loss_using_both(ctx):
    """A z-loss on the logits plus a global-batch term on the probabilities, and a bias."""
    f = ctx.global_counts / ctx.global_counts.sum()
    z = torch.logsumexp(ctx.router_logits, dim=-1).pow(2).mean()
    aux = 0.01 * ctx.num_experts * torch.sum(f * ctx.router_probs.mean(0)) + 1e-3 * z
    return aux, 0.01 * torch.sign(ctx.micro_counts.mean() - ctx.micro_counts)


def _router(seed):
    generator = torch.Generator().manual_seed(seed)
    weight = torch.randn(8, EXPERTS, generator=generator, requires_grad=True)
    x = torch.randn(LAYERS, MICRO * TOKENS, 8, generator=generator)
    logits = x @ weight
    probs = logits.softmax(-1)
    topk = torch.topk(probs.detach(), TOP_K, dim=-1).indices
    return weight, logits, probs, topk


def _counts(topk):
    flat = topk.view(LAYERS, MICRO, TOKENS * TOP_K)
    counts = torch.zeros(LAYERS, MICRO, EXPERTS).scatter_add_(
        2, flat, torch.ones_like(flat, dtype=torch.float32))
    return counts, counts.cumsum(1)


def test_the_injected_gradient_is_the_one_the_loss_has_in_the_judges_graph():
    # Directly: the loss on slices of the judge's tensors, one backward through everything.
    weight, logits, probs, topk = _router(0)
    counts, running = _counts(topk)
    total, bias_direct = torch.zeros(()), torch.zeros(LAYERS, EXPERTS)
    for m in range(MICRO):
        rows = slice(m * TOKENS, (m + 1) * TOKENS)
        aux = torch.zeros(())
        for layer in range(LAYERS):
            ctx = RoutingContext(
                layer=layer, num_layers=LAYERS, num_experts=EXPERTS, top_k=TOP_K,
                router_logits=logits[layer, rows], router_probs=probs[layer, rows],
                topk_indices=topk[layer, rows].clone(), micro_counts=counts[layer, m].clone(),
                global_counts=running[layer, m].clone(), global_tokens=(m + 1) * TOKENS,
                prev_global_counts=torch.zeros(EXPERTS), routing_bias=torch.zeros(EXPERTS),
                micro_index=m, num_micro=MICRO, step=0, total_steps=1)
            loss, delta = loss_using_both(ctx)
            aux = aux + loss
            bias_direct[layer] += delta
        total = total + aux / MICRO
    total.backward()
    direct = weight.grad.clone()

    # Through the messages: statistics out as data, gradients back as data, injected.
    weight, logits, probs, topk = _router(0)
    message = step_message(
        step=0, total_steps=1, shape=SHAPE, logits=logits.view(LAYERS, MICRO, TOKENS, EXPERTS),
        probs=probs.view(LAYERS, MICRO, TOKENS, EXPERTS),
        topk=topk.view(LAYERS, MICRO, TOKENS, TOP_K), micro_counts=counts,
        global_counts=running, prev_global_counts=torch.zeros(LAYERS, EXPERTS),
        routing_bias=torch.zeros(LAYERS, EXPERTS))
    wire = channel.decode(channel.encode(message), records="attributes")
    reply = check_reply(channel.decode(channel.encode(step_reply(loss_using_both, wire))), SHAPE)
    assert reply.grad_logits is not None and reply.grad_probs is not None
    total = torch.zeros(())
    for layer in range(LAYERS):
        total = total + inject(0.0, logits[layer], probs[layer],
                               reply.grad_logits[layer].reshape(-1, EXPERTS),
                               reply.grad_probs[layer].reshape(-1, EXPERTS))
    total.backward()
    assert torch.equal(weight.grad, direct)
    assert torch.equal(reply.bias.sum(dim=1), bias_direct)
    assert len(reply.losses) == LAYERS * MICRO


def test_a_loss_without_gradient_sends_none_and_the_candidate_sees_int64_indices():
    seen = []

    def bias_only(ctx):
        seen.append(ctx.topk_indices.dtype)
        return torch.zeros(())

    _, logits, probs, topk = _router(1)
    counts, running = _counts(topk)
    message = step_message(
        step=3, total_steps=9, shape=SHAPE, logits=logits.view(LAYERS, MICRO, TOKENS, EXPERTS),
        probs=probs.view(LAYERS, MICRO, TOKENS, EXPERTS),
        topk=topk.view(LAYERS, MICRO, TOKENS, TOP_K), micro_counts=counts,
        global_counts=running, prev_global_counts=torch.zeros(LAYERS, EXPERTS),
        routing_bias=torch.zeros(LAYERS, EXPERTS))
    reply = check_reply(step_reply(bias_only, message), SHAPE)
    assert reply.grad_logits is None and reply.grad_probs is None and reply.bias is None
    assert seen == [torch.int64] * LAYERS * MICRO
    # What crosses is small: the indices as bytes, everything else float32.
    assert message["topk"].dtype.itemsize == 1 and message["logits"].dtype.itemsize == 4


def test_a_tensor_of_the_candidates_own_gets_its_gradient_as_inside_the_trainer():
    # A loss with a learnable weight of its own: the backward pass in its process fills .grad
    # with d(objective)/d(weight), the objective being the sum of the losses / num_micro.
    weight = torch.ones((), requires_grad=True)
    terms = []

    def learnable(ctx):
        term = torch.sum(ctx.global_counts / ctx.global_counts.sum() * ctx.router_probs.mean(0))
        terms.append(float(term.detach()))
        return weight * term

    _, logits, probs, topk = _router(2)
    counts, running = _counts(topk)
    message = step_message(
        step=0, total_steps=1, shape=SHAPE, logits=logits.view(LAYERS, MICRO, TOKENS, EXPERTS),
        probs=probs.view(LAYERS, MICRO, TOKENS, EXPERTS),
        topk=topk.view(LAYERS, MICRO, TOKENS, TOP_K), micro_counts=counts,
        global_counts=running, prev_global_counts=torch.zeros(LAYERS, EXPERTS),
        routing_bias=torch.zeros(LAYERS, EXPERTS))
    check_reply(step_reply(learnable, message), SHAPE)
    assert weight.grad is not None
    assert float(weight.grad) == pytest.approx(sum(terms) / MICRO, rel=1e-6)

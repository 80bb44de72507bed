"""Each baseline's loss against a hand computation on small tensors."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from tests.problems_moe.helpers import baseline, make_ctx  # noqa: E402

# 3 tokens, 4 experts, top-2. Rows sum to 1 so softmax(log p) == p.
PROBS = [[0.4, 0.3, 0.2, 0.1],
         [0.1, 0.5, 0.3, 0.1],
         [0.25, 0.25, 0.25, 0.25]]
TOPK = [[0, 1], [1, 2], [0, 3]]        # micro counts: [2, 2, 1, 1] of 6 assignments
MEAN_P = [0.25, 1.05 / 3, 0.25, 0.15]  # column means of PROBS
GLOBAL = [8.0, 2.0, 1.0, 1.0]          # 12 assignments so far in the global batch


def test_no_balancing_is_a_zero_scalar():
    loss = baseline("no_balancing")(make_ctx(PROBS, TOPK, GLOBAL))
    assert loss.dim() == 0 and float(loss) == 0.0


def test_micro_batch_loss_matches_hand_computation():
    ctx = make_ctx(PROBS, TOPK, GLOBAL)
    loss = baseline("micro_batch")(ctx)
    f = [2 / 6, 2 / 6, 1 / 6, 1 / 6]
    expected = 0.01 * 4 * sum(fi * pi for fi, pi in zip(f, MEAN_P, strict=True))
    assert float(loss.detach()) == pytest.approx(expected, rel=1e-6)
    # Only P carries gradient: d loss / d probs[t, i] = alpha * N * f_i / T.
    (grad,) = torch.autograd.grad(loss, ctx.router_probs)
    expected_grad = torch.tensor([0.01 * 4 * fi / 3 for fi in f]).expand(3, 4)
    assert torch.allclose(grad, expected_grad, atol=1e-8)


@pytest.mark.parametrize("name", ["global_batch", "initial"])
def test_global_batch_loss_uses_global_counts(name):
    ctx = make_ctx(PROBS, TOPK, GLOBAL)
    loss = baseline(name)(ctx)
    f = [8 / 12, 2 / 12, 1 / 12, 1 / 12]
    expected = 0.01 * 4 * sum(fi * pi for fi, pi in zip(f, MEAN_P, strict=True))
    assert float(loss.detach()) == pytest.approx(expected, rel=1e-6)
    assert float(loss.detach()) != pytest.approx(float(baseline("micro_batch")(ctx).detach()), rel=1e-3)


def test_aux_free_bias_waits_for_the_last_micro_batch():
    out = baseline("aux_free_bias")(make_ctx(PROBS, TOPK, GLOBAL, micro_index=0, num_micro=2))
    assert isinstance(out, torch.Tensor) and float(out) == 0.0


def test_aux_free_bias_moves_toward_the_mean_load():
    ctx = make_ctx(PROBS, TOPK, [5.0, 1.0, 3.0, 3.0], micro_index=1, num_micro=2)
    loss, update = baseline("aux_free_bias")(ctx)
    assert float(loss) == 0.0 and not loss.requires_grad
    # mean load 3: over-loaded expert 0 goes down, under-loaded expert 1 up, the rest stay.
    assert update.tolist() == pytest.approx([-0.01, 0.01, 0.0, 0.0])

"""A program that rewrites the problem's own helper in its process, so that what goes back to
the judge each step is not what autograd computed: NaN, huge or mis-shaped gradients, integer
or list "gradients", missing loss values, or a reply far larger than the step's schema allows.
Its balancing loss itself is the global-batch loss."""

import numpy as np
import torch

import problems.moe_lbl.boundary as boundary

VARIANT = "__VARIANT__"
_honest = boundary.LossRunner.step


def _forged(self, message):
    reply = _honest(self, message)
    grad = reply["grad_probs"]
    if VARIANT == "nan":
        reply["grad_probs"] = np.full_like(grad, np.nan)
    elif VARIANT == "huge_values":
        reply["grad_probs"] = np.full_like(grad, 1e38)
    elif VARIANT == "shape":
        reply["grad_probs"] = np.zeros(grad.shape[:-1] + (grad.shape[-1] + 1,), np.float32)
    elif VARIANT == "ints":
        reply["grad_probs"] = grad.astype(np.int64)
    elif VARIANT == "list":
        reply["grad_probs"] = grad.tolist()
    elif VARIANT == "missing_losses":
        reply["losses"] = reply["losses"][:1]
    elif VARIANT == "huge_reply":
        reply["grad_probs"] = np.zeros(64 << 20, np.uint8)
    return reply


boundary.LossRunner.step = _forged


def balancing_loss(ctx):
    f = ctx.global_counts / ctx.global_counts.sum()
    p = ctx.router_probs.mean(dim=0)
    return 0.01 * ctx.num_experts * torch.sum(f * p)

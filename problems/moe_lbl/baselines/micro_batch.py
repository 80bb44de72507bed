"""Baseline: the Switch/GShard load-balancing loss computed per micro-batch.

loss = alpha * N * sum_i f_i * P_i, with f_i the fraction of this micro-batch's token-to-expert
assignments that went to expert i and P_i the mean router probability of expert i over the
micro-batch's tokens. With single-domain micro-batches it pushes every domain to use every expert.
"""

import torch

# EVOLVE-BLOCK-START
ALPHA = 0.01


def balancing_loss(ctx):
    f = ctx.micro_counts / ctx.micro_counts.sum()
    p = ctx.router_probs.mean(dim=0)
    return ALPHA * ctx.num_experts * torch.sum(f * p)
# EVOLVE-BLOCK-END

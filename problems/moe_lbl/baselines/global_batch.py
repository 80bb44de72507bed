"""Initial program: the global-batch load-balancing loss ("Demons in the Detail", Qiu et al. 2025).

loss = alpha * N * sum_i f_i * P_i where f_i is expert i's share of the token-to-expert
assignments accumulated over the global batch so far (all micro-batches of this optimizer step up
to and including this one) and P_i is the mean router probability over this micro-batch. Only
P_i carries gradient. Balancing the mixture, not each single-domain micro-batch, leaves experts
free to specialise by domain.
"""

import torch

# EVOLVE-BLOCK-START
ALPHA = 0.01


def balancing_loss(ctx):
    f = ctx.global_counts / ctx.global_counts.sum()
    p = ctx.router_probs.mean(dim=0)
    return ALPHA * ctx.num_experts * torch.sum(f * p)
# EVOLVE-BLOCK-END

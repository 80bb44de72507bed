"""Baseline: DeepSeek's auxiliary-loss-free balancing (Wang et al., 2024; DeepSeek-V3).

No loss term. After each global batch, every expert's routing bias moves by a fixed step GAMMA
toward balance: up if the expert was under-loaded, down if over-loaded. The bias shifts which
experts are selected; gate weights still come from the unbiased router probabilities.
"""

import torch

# EVOLVE-BLOCK-START
GAMMA = 0.01


def balancing_loss(ctx):
    zero = torch.zeros((), device=ctx.router_probs.device)
    if ctx.micro_index != ctx.num_micro - 1:
        return zero
    # On the last micro-batch global_counts covers the whole global batch.
    load = ctx.global_counts
    update = GAMMA * torch.sign(load.mean() - load)
    return zero, update
# EVOLVE-BLOCK-END

"""Baseline: no load-balancing objective at all (the router is trained by the LM loss alone)."""

import torch


# EVOLVE-BLOCK-START
def balancing_loss(ctx):
    return torch.zeros((), device=ctx.router_probs.device)
# EVOLVE-BLOCK-END

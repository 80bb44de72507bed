"""The candidate interface: what `balancing_loss(ctx)` receives and what it may return.

The trainer calls the candidate once per MoE layer per micro-batch, in micro-batch order, after
the global batch's forward pass (one pass for all its micro-batches). It adds the returned loss (summed over layers) to the micro-batch's language-model
loss before the backward pass, and adds any returned routing-bias updates to the layer's routing
bias after the optimizer step that ends the global batch.

Return either a loss tensor, or a pair `(loss, bias_update)` where `bias_update` is None or a
tensor of shape `(num_experts,)`. The loss must be a 0-dim floating tensor with a finite value;
if it requires grad its gradient must stay finite. The evaluator checks all of this itself
(`check_output`), and an output that breaks a rule makes the program invalid with a reason.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


class CandidateOutputError(ValueError):
    """The candidate returned something the contract does not allow; the message says what."""


@dataclass(frozen=True)
class RoutingContext:
    """Routing of one micro-batch in one MoE layer. Counts are token-to-expert assignments.

    Tensors that carry gradient: `router_logits` and `router_probs` (softmax of the logits).
    Everything else is a detached copy, so changing it changes nothing in the trainer.
    """

    layer: int                      # 0-based index of this MoE layer
    num_layers: int                 # number of MoE layers
    num_experts: int                # E
    top_k: int                      # experts chosen per token
    router_logits: torch.Tensor     # (T, E) float, requires grad; T = tokens in the micro-batch
    router_probs: torch.Tensor      # (T, E) float, softmax(router_logits), requires grad
    topk_indices: torch.Tensor      # (T, top_k) long, experts chosen (after the routing bias)
    micro_counts: torch.Tensor      # (E,) float, assignments in this micro-batch; sums to T*top_k
    global_counts: torch.Tensor     # (E,) float, assignments over the global batch so far,
                                    #   this micro-batch included
    global_tokens: int              # tokens covered by global_counts
    prev_global_counts: torch.Tensor  # (E,) float, assignments of the whole previous global
                                      #   batch (zeros at step 0)
    routing_bias: torch.Tensor      # (E,) float, the layer's current routing bias (detached)
    micro_index: int                # 0 .. num_micro-1 within the global batch
    num_micro: int                  # micro-batches per global batch (gradient accumulation)
    step: int                       # optimizer step, 0-based
    total_steps: int                # optimizer steps in this training run


def check_output(out: object, num_experts: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Validate a candidate's return value; return (loss, bias_update or None)."""
    bias: object = None
    if isinstance(out, tuple | list):
        if len(out) != 2:
            raise CandidateOutputError(
                f"return a loss tensor or a pair (loss, bias_update); got a sequence of {len(out)}")
        out, bias = out
    if not isinstance(out, torch.Tensor):
        raise CandidateOutputError(f"the loss must be a torch.Tensor, got {type(out).__name__}")
    if out.dim() != 0:
        raise CandidateOutputError(
            f"the loss must be a 0-dim (scalar) tensor, got shape {tuple(out.shape)}; "
            "reduce it with .sum() or .mean()")
    if not out.is_floating_point():
        raise CandidateOutputError(f"the loss must be a floating tensor, got {out.dtype}")
    value = float(out.detach())
    if not math.isfinite(value):
        raise CandidateOutputError(f"the loss is not finite ({value})")
    if bias is None:
        return out, None
    if not isinstance(bias, torch.Tensor):
        raise CandidateOutputError(
            f"bias_update must be None or a torch.Tensor, got {type(bias).__name__}")
    if tuple(bias.shape) != (num_experts,):
        raise CandidateOutputError(
            f"bias_update must have shape ({num_experts},), got {tuple(bias.shape)}")
    bias = bias.detach().to("cpu", torch.float32)  # checked on the host; the trainer moves it back
    if not bool(torch.isfinite(bias).all()):
        raise CandidateOutputError("bias_update has non-finite entries")
    return out, bias.clone()

"""A small decoder-only transformer whose feed-forward layers are top-k routed Mixtures of Experts.

Byte-level (vocabulary 256). Each MoE layer keeps a non-learned per-expert routing bias that
shifts which experts are *selected* (DeepSeek's auxiliary-loss-free balancing) while the gate
weights still come from the unbiased router probabilities.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class ModelConfig:
    d_model: int = 64
    n_heads: int = 4
    n_layers: int = 2
    num_experts: int = 8
    top_k: int = 2
    expert_hidden: int = 128
    seq_len: int = 128
    vocab: int = 256
    # Expert capacity as a multiple of the mean load (tokens * top_k / experts) of one forward
    # pass; assignments beyond it are dropped (the token keeps its residual and its other
    # expert), as in GShard and Switch Transformer. None = dropless. With a capacity, an
    # unbalanced router costs model quality, not only time (README "Signal and noise").
    capacity_factor: float | None = 1.25


def expert_counts(indices: torch.Tensor, num_experts: int) -> torch.Tensor:
    """Assignments per expert (int64, on the indices' device). A 1-D scatter_add rather than
    bincount, which deterministic mode flags on CUDA."""
    flat = indices.reshape(-1)
    return torch.zeros(num_experts, dtype=torch.long, device=flat.device).scatter_add_(
        0, flat, torch.ones_like(flat))


@dataclass
class LayerRouting:
    """What one MoE layer's router did on one forward pass."""

    logits: torch.Tensor        # (T, E), attached to the graph
    probs: torch.Tensor         # (T, E), attached to the graph
    topk_indices: torch.Tensor  # (T, k) long
    kept: torch.Tensor          # (T, k) bool: False where the expert was over capacity


def queue_positions(topk_idx: torch.Tensor, priority: torch.Tensor, num_experts: int
                    ) -> torch.Tensor:
    """Each (token, slot) assignment's place in its expert's queue, highest priority first
    (ties by position), as a (T, k) long tensor. The capacity rule keeps places below the
    capacity; the grouped dispatch uses them as rows of its per-expert buffer. Ordering by priority, not position, means which tokens an
    overloaded expert loses does not depend on where they sit in the batch."""
    flat_expert = topk_idx.reshape(-1)
    by_priority = torch.argsort(priority.reshape(-1), descending=True, stable=True)
    order = by_priority[torch.argsort(flat_expert[by_priority], stable=True)]
    counts = expert_counts(flat_expert, num_experts)
    first = torch.cumsum(counts, 0) - counts
    position = torch.empty_like(flat_expert)
    position[order] = torch.arange(order.numel(), device=topk_idx.device) - \
        first[flat_expert[order]]
    return position.view_as(topk_idx)


def capacity_mask(topk_idx: torch.Tensor, priority: torch.Tensor, num_experts: int,
                  capacity: int) -> torch.Tensor:
    """(T, k) bool: each expert keeps its `capacity` assignments of highest priority."""
    return queue_positions(topk_idx, priority, num_experts) < capacity


class MoEFeedForward(nn.Module):
    # Which expert dispatch to use: None picks by device (grouped on CUDA, looped elsewhere);
    # tests set it to run the grouped path on the CPU.
    grouped: bool | None = None

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.num_experts, self.top_k = cfg.num_experts, cfg.top_k
        self.capacity_factor = cfg.capacity_factor
        self.router = nn.Linear(cfg.d_model, cfg.num_experts, bias=False)
        scale_in, scale_out = cfg.d_model ** -0.5, cfg.expert_hidden ** -0.5
        self.w_in = nn.Parameter(torch.randn(cfg.num_experts, cfg.d_model, cfg.expert_hidden)
                                 * scale_in)
        self.w_out = nn.Parameter(torch.randn(cfg.num_experts, cfg.expert_hidden, cfg.d_model)
                                  * scale_out / (2 * cfg.n_layers) ** 0.5)
        self.register_buffer("routing_bias", torch.zeros(cfg.num_experts))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, LayerRouting]:
        shape = x.shape
        flat = x.reshape(-1, shape[-1])
        logits = self.router(flat).float()
        probs = logits.softmax(dim=-1)
        # The bias changes selection only; it carries no gradient.
        topk_idx = torch.topk(probs.detach() + self.routing_bias, self.top_k, dim=-1).indices
        chosen = probs.gather(1, topk_idx)
        gates = chosen / chosen.sum(dim=-1, keepdim=True)
        position = queue_positions(topk_idx, chosen.detach(), self.num_experts)
        if self.capacity_factor is None:
            kept = torch.ones_like(topk_idx, dtype=torch.bool)
        else:
            capacity = math.ceil(self.capacity_factor * topk_idx.numel() / self.num_experts)
            kept = position < capacity
            # A dropped assignment contributes nothing; the kept gate keeps its weight (as in
            # GShard/Switch, the gates are not renormalised over what survived).
            gates = gates * kept
        grouped = flat.is_cuda if self.grouped is None else self.grouped
        if grouped:
            out = self._experts_grouped(flat, topk_idx, gates.to(x.dtype), kept, position)
        else:
            out = self._experts_looped(flat, topk_idx, gates.to(x.dtype), kept)
        return out.reshape(shape), LayerRouting(logits, probs, topk_idx, kept)

    def _experts_looped(self, flat: torch.Tensor, topk_idx: torch.Tensor, gates: torch.Tensor,
                        kept: torch.Tensor) -> torch.Tensor:
        """One matmul pair per expert on its own tokens: the least arithmetic, so the CPU path."""
        out = torch.zeros_like(flat)
        for expert in range(self.num_experts):
            token_idx, slot = torch.nonzero((topk_idx == expert) & kept, as_tuple=True)
            if token_idx.numel() == 0:
                continue
            hidden = F.gelu(flat[token_idx] @ self.w_in[expert])
            y = (hidden @ self.w_out[expert]) * gates[token_idx, slot].unsqueeze(-1)
            out = out.index_add(0, token_idx, y)
        return out

    def _experts_grouped(self, flat: torch.Tensor, topk_idx: torch.Tensor, gates: torch.Tensor,
                         kept: torch.Tensor, position: torch.Tensor) -> torch.Tensor:
        """The same function as `_experts_looped` in a fixed number of kernels: each kept
        (token, slot) pair goes to row `position` of its expert in an (E, rows + 1, d) buffer,
        two batched matmuls run, and each pair's result is read back, weighted by its gate and
        summed over the k slots. Dropped pairs all share the spare last row, whose output their
        zero gate discards. The loop's per-expert host syncs and small launches made a GPU step
        CPU-bound (about 0.6 s on an H100); this costs one sync per layer (the rows: the
        busiest expert's kept load) and pads the other experts to it."""
        tokens, k = topk_idx.shape
        rows = int(position.masked_fill(~kept, -1).max()) + 1
        row = position.masked_fill(~kept, rows).reshape(-1)
        expert = topk_idx.reshape(-1)
        pairs = flat.unsqueeze(1).expand(tokens, k, flat.shape[-1]).reshape(tokens * k, -1)
        buffer = flat.new_zeros(self.num_experts, rows + 1, flat.shape[-1])
        buffer = buffer.index_put((expert, row), pairs)
        y = torch.bmm(F.gelu(torch.bmm(buffer, self.w_in)), self.w_out)
        return (y[expert, row].view(tokens, k, -1) * gates.unsqueeze(-1)).sum(dim=1)


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.n_heads = cfg.n_heads
        self.ln_attn = nn.LayerNorm(cfg.d_model)
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model, bias=False)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model, bias=False)
        self.ln_ffn = nn.LayerNorm(cfg.d_model)
        self.moe = MoEFeedForward(cfg)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, LayerRouting]:
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln_attn(x)).split(d, dim=-1)
        heads = [z.view(b, t, self.n_heads, d // self.n_heads).transpose(1, 2) for z in (q, k, v)]
        attn = F.scaled_dot_product_attention(*heads, is_causal=True)
        x = x + self.proj(attn.transpose(1, 2).reshape(b, t, d))
        ffn, routing = self.moe(self.ln_ffn(x))
        return x + ffn, routing


class MoETransformer(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab, cfg.d_model)
        self.pos = nn.Parameter(torch.randn(cfg.seq_len, cfg.d_model) * 0.02)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.ln_out = nn.LayerNorm(cfg.d_model)
        nn.init.normal_(self.embed.weight, std=0.02)

    @property
    def moe_layers(self) -> list[MoEFeedForward]:
        return [block.moe for block in self.blocks]

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, list[LayerRouting]]:
        x = self.embed(tokens) + self.pos[: tokens.shape[1]]
        routings = []
        for block in self.blocks:
            x, routing = block(x)
            routings.append(routing)
        logits = self.ln_out(x) @ self.embed.weight.T  # tied output head
        return logits, routings

"""A small decoder-only transformer whose feed-forward layers are top-k routed Mixtures of Experts.

Byte-level (vocabulary 256). Each MoE layer keeps a non-learned per-expert routing bias that
shifts which experts are *selected* (DeepSeek's auxiliary-loss-free balancing) while the gate
weights still come from the unbiased router probabilities.
"""

from __future__ import annotations

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


@dataclass
class LayerRouting:
    """What one MoE layer's router did on one forward pass."""

    logits: torch.Tensor        # (T, E), attached to the graph
    probs: torch.Tensor         # (T, E), attached to the graph
    topk_indices: torch.Tensor  # (T, k) long


class MoEFeedForward(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.num_experts, self.top_k = cfg.num_experts, cfg.top_k
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
        gates = probs.gather(1, topk_idx)
        gates = gates / gates.sum(dim=-1, keepdim=True)
        out = torch.zeros_like(flat)
        for expert in range(self.num_experts):
            token_idx, slot = torch.nonzero(topk_idx == expert, as_tuple=True)
            if token_idx.numel() == 0:
                continue
            hidden = F.gelu(flat[token_idx] @ self.w_in[expert])
            y = (hidden @ self.w_out[expert]) * gates[token_idx, slot].unsqueeze(-1).to(x.dtype)
            out = out.index_add(0, token_idx, y)
        return out.reshape(shape), LayerRouting(logits, probs, topk_idx)


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

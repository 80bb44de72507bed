"""Balance and specialisation measures computed by the evaluator from its own routing records."""

from __future__ import annotations

import torch


def load_fractions(counts: torch.Tensor) -> torch.Tensor:
    """Counts (..., E) -> fractions of assignments per expert (sum 1 over the last axis)."""
    counts = counts.double()
    return counts / counts.sum(dim=-1, keepdim=True).clamp_min(1e-12)


def imbalance_l1(counts: torch.Tensor) -> torch.Tensor:
    """sum_i |f_i - 1/E|: 0 when perfectly even, 2(E-1)/E when one expert takes everything."""
    frac = load_fractions(counts)
    return (frac - 1.0 / counts.shape[-1]).abs().sum(dim=-1)


def max_over_mean(counts: torch.Tensor) -> torch.Tensor:
    """Load of the busiest expert over the mean load: 1 when even, E at worst."""
    counts = counts.double()
    return counts.max(dim=-1).values / counts.mean(dim=-1).clamp_min(1e-12)


def max_vio(counts: torch.Tensor) -> torch.Tensor:
    """MaxVio of Wang et al. (2024): max_i load_i / mean load - 1; 0 when even, E - 1 at worst."""
    return max_over_mean(counts) - 1.0


def mutual_information_bits(joint_counts: torch.Tensor) -> float:
    """I(domain; expert) in bits from a (domains, experts) table of assignment counts."""
    joint = joint_counts.double()
    total = joint.sum()
    if total <= 0:
        return 0.0
    p = joint / total
    p_domain = p.sum(dim=1, keepdim=True)
    p_expert = p.sum(dim=0, keepdim=True)
    ratio = p / (p_domain * p_expert).clamp_min(1e-300)
    terms = torch.where(p > 0, p * torch.log2(ratio.clamp_min(1e-300)), torch.zeros_like(p))
    return float(terms.sum())

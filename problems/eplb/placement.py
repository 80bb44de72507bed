"""Checking a candidate's placement and measuring how well it balances a load.

A placement is vLLM's triple, for every MoE layer:
- phy2log[layer, slot]: the logical expert held by physical slot `slot`; GPU g holds slots
  g*S .. g*S+S-1 with S = num_replicas / num_gpus, so every GPU holds the same number of slots;
- logcnt[layer, expert]: how many slots hold that expert;
- log2phy[layer, expert, k]: the k-th slot of that expert, padded with -1.

Nothing the candidate returns is trusted: `validate_placement` recomputes every relation, and the
metrics are computed from phy2log alone, with tokens of an expert split evenly over its replicas
(as vLLM's router does).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


class InvalidPlacement(ValueError):
    """The candidate's output breaks the contract; the message is fed back to the LLM."""


@dataclass(frozen=True)
class EplbConfig:
    num_replicas: int = 288
    num_groups: int = 8
    num_nodes: int = 4
    num_gpus: int = 32

    @property
    def slots_per_gpu(self) -> int:
        return self.num_replicas // self.num_gpus

    def check(self, num_experts: int) -> None:
        if self.num_replicas % self.num_gpus:
            raise ValueError(f"num_replicas={self.num_replicas} must divide by "
                             f"num_gpus={self.num_gpus}")
        if self.num_replicas < num_experts:
            raise ValueError(f"num_replicas={self.num_replicas} < {num_experts} experts")
        if num_experts % self.num_groups:
            raise ValueError(f"{num_experts} experts do not divide into "
                             f"{self.num_groups} groups")


STANDARD = EplbConfig()


def config_for(num_experts: int) -> EplbConfig:
    """The standard configuration for 256 experts; for a trace with another expert count (e.g.
    one recorded by problems/moe_lbl) the same shape scaled down: up to 32 GPUs with at least 4
    experts each, about one redundant slot per 8 experts (at least one per GPU), and groups and
    nodes kept only where they divide."""
    if num_experts == 256:
        return STANDARD
    gpus = next(g for g in (32, 16, 8, 4, 2, 1)
                if num_experts % g == 0 and num_experts // g >= min(4, num_experts))
    redundant = max(gpus, -(-num_experts // 8 // gpus) * gpus)
    groups = next(g for g in (8, 4, 2, 1) if num_experts % g == 0)
    nodes = next(n for n in (4, 2, 1) if groups % n == 0 and gpus % n == 0)
    return EplbConfig(num_experts + redundant, groups, nodes, gpus)


_INT_DTYPES = (torch.int64, torch.int32, torch.int16)


def _as_index_tensor(name: str, value: object, shape: tuple[int, ...] | None) -> torch.Tensor:
    # Exactly torch.Tensor: a subclass could defer its work into validation, outside the timing.
    if type(value) is not torch.Tensor:
        raise InvalidPlacement(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if value.is_floating_point() or value.is_complex():
        if torch.isnan(value).any():
            raise InvalidPlacement(f"{name} contains NaN")
        raise InvalidPlacement(f"{name} has dtype {value.dtype}; return integer tensors "
                               f"(torch.int64 as vLLM does)")
    if value.dtype not in _INT_DTYPES:
        raise InvalidPlacement(f"{name} has dtype {value.dtype}; return torch.int64")
    if shape is not None and tuple(value.shape) != shape:
        raise InvalidPlacement(f"{name} has shape {tuple(value.shape)}, expected {shape}")
    return value.detach().to("cpu", torch.int64).contiguous()


def validate_placement(result: object, num_layers: int, num_experts: int,
                       cfg: EplbConfig, load: np.ndarray | None = None) -> torch.Tensor:
    """Check the (phy2log, log2phy, logcnt) triple and return phy2log as int64 on the CPU.

    Raises InvalidPlacement naming the first broken rule, the layer and the expert or slot.
    `load` (the input window) only makes the reason for a missing replica more informative.
    """
    if not isinstance(result, tuple | list) or len(result) != 3:
        raise InvalidPlacement("rebalance_experts must return a tuple "
                               "(phy2log, log2phy, logcnt)")
    L, E, R = num_layers, num_experts, cfg.num_replicas
    phy2log = _as_index_tensor("phy2log", result[0], (L, R))
    logcnt = _as_index_tensor("logcnt", result[2], (L, E))
    log2phy = _as_index_tensor("log2phy", result[1], None)
    if log2phy.dim() != 3 or tuple(log2phy.shape[:2]) != (L, E) or log2phy.shape[2] < 1:
        raise InvalidPlacement(f"log2phy has shape {tuple(log2phy.shape)}, expected "
                               f"({L}, {E}, max_replicas)")

    bad = (phy2log < 0) | (phy2log >= E)
    if bad.any():
        layer, slot = (int(i) for i in bad.nonzero()[0])
        raise InvalidPlacement(f"layer {layer}: physical slot {slot} maps to expert "
                               f"{int(phy2log[layer, slot])}, not a real expert (0..{E - 1})")

    counted = torch.zeros(L, E, dtype=torch.int64).scatter_add_(1, phy2log, torch.ones_like(phy2log))
    if not torch.equal(counted, logcnt):
        layer, expert = (int(i) for i in (counted != logcnt).nonzero()[0])
        raise InvalidPlacement(f"layer {layer}: logcnt[{expert}] = {int(logcnt[layer, expert])} "
                               f"but phy2log puts expert {expert} in "
                               f"{int(counted[layer, expert])} slot(s)")

    missing = counted == 0
    if missing.any():
        layer, expert = (int(i) for i in missing.nonzero()[0])
        had = "" if load is None else f" (it had load {load[layer, expert]:g} in the input)"
        raise InvalidPlacement(f"layer {layer}: expert {expert} has no replica{had}; every "
                               f"logical expert needs at least one slot, since the router may "
                               f"pick any expert in the next window")

    width = log2phy.shape[2]
    if width > R:
        raise InvalidPlacement(f"log2phy has room for {width} replicas per expert, more than the "
                               f"{R} slots there are; use max(logcnt) or {R - E + 1}")
    if int(logcnt.max()) > width:
        raise InvalidPlacement(f"log2phy has room for {width} replicas per expert but an expert "
                               f"has {int(logcnt.max())}")
    k = torch.arange(width).view(1, 1, width)
    used = k < logcnt.unsqueeze(-1)
    if (log2phy[~used] != -1).any():
        layer, expert, rank = (int(i) for i in ((log2phy != -1) & ~used).nonzero()[0])
        raise InvalidPlacement(f"layer {layer}: log2phy[{expert}][{rank}] = "
                               f"{int(log2phy[layer, expert, rank])} but expert {expert} has only "
                               f"{int(logcnt[layer, expert])} replica(s); pad with -1")
    in_range = (log2phy >= 0) & (log2phy < R)
    if (used & ~in_range).any():
        layer, expert, rank = (int(i) for i in (used & ~in_range).nonzero()[0])
        raise InvalidPlacement(f"layer {layer}: log2phy[{expert}][{rank}] = "
                               f"{int(log2phy[layer, expert, rank])} is not a slot (0..{R - 1})")
    target = phy2log.gather(1, log2phy.clamp(0, R - 1).view(L, -1)).view(L, E, width)
    wrong = used & (target != torch.arange(E).view(1, E, 1))
    if wrong.any():
        layer, expert, rank = (int(i) for i in wrong.nonzero()[0])
        slot = int(log2phy[layer, expert, rank])
        raise InvalidPlacement(f"layer {layer}: log2phy[{expert}][{rank}] = slot {slot}, but "
                               f"phy2log[{slot}] = {int(phy2log[layer, slot])}")
    # Every listed slot holds the right expert and the counts match; duplicates would leave one
    # of the expert's slots unlisted, so check that each slot is listed exactly once.
    listed = torch.zeros(L, R, dtype=torch.int64)
    listed.scatter_add_(1, log2phy.clamp(0, R - 1).view(L, -1), used.view(L, -1).long())
    for wrong_count in (listed > 1, listed == 0):     # name a duplicate before the gap it leaves
        if not wrong_count.any():
            continue
        layer, slot = (int(i) for i in wrong_count.nonzero()[0])
        raise InvalidPlacement(f"layer {layer}: slot {slot} is listed {int(listed[layer, slot])} "
                               f"times in log2phy (each slot exactly once)")
    return phy2log


def slot_loads(phy2log: torch.Tensor, load: np.ndarray) -> np.ndarray:
    """[L, R] tokens per slot: each expert's load split evenly over its replicas."""
    p2l = phy2log.numpy()
    L, E = load.shape
    counts = np.zeros((L, E))
    np.add.at(counts, (np.arange(L)[:, None], p2l), 1.0)
    return np.take_along_axis(load / np.maximum(counts, 1.0), p2l, axis=1)


def gpu_loads(phy2log: torch.Tensor, load: np.ndarray, cfg: EplbConfig) -> np.ndarray:
    per_slot = slot_loads(phy2log, load)
    return per_slot.reshape(per_slot.shape[0], cfg.num_gpus, cfg.slots_per_gpu).sum(axis=2)


def balancedness(per_unit: np.ndarray) -> float:
    """Sum over layers of the mean unit load / sum over layers of the max unit load (1 = even)."""
    peak = per_unit.max(axis=1).sum()
    return float(per_unit.mean(axis=1).sum() / peak) if peak > 0 else 1.0


def balancedness_bound(load: np.ndarray, cfg: EplbConfig) -> float:
    """The best GPU balancedness any placement could reach on `load` (an upper bound).

    A GPU's load is at least the even split total/G, and at least the heaviest expert's share
    when it gets every redundant slot (R - E + 1 replicas; more than G replicas cannot lower
    the peak below load/G either).
    """
    L, E = load.shape
    mean = load.sum(axis=1) / cfg.num_gpus
    most_replicas = min(cfg.num_replicas - E + 1, cfg.num_gpus)
    floor = np.maximum(mean, load.max(axis=1) / most_replicas)
    return float(mean.sum() / floor.sum()) if floor.sum() > 0 else 1.0

"""Load-oblivious static placement: no load-aware replication.

Physical slot s holds logical expert s mod E, so experts sit contiguously on GPUs in index order
(the layout vLLM uses without EPLB) and the redundant slots, which the configuration requires so
that every GPU holds the same number of slots, repeat experts 0, 1, 2, ... regardless of load.
"""

import torch


def rebalance_experts(weight: torch.Tensor, num_replicas: int, num_groups: int,
                      num_nodes: int, num_gpus: int
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    layers, experts = weight.shape
    slots = torch.arange(num_replicas, dtype=torch.int64)
    phy2log = (slots % experts).repeat(layers, 1)
    logcnt = torch.bincount(slots % experts, minlength=experts).repeat(layers, 1)
    max_replicas = -(-num_replicas // experts)
    log2phy = torch.full((layers, experts, max_replicas), -1, dtype=torch.int64)
    log2phy[:, slots % experts, slots // experts] = slots
    return phy2log, log2phy, logcnt

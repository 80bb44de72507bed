"""Expert-parallel load balancer: DeepSeek's EPLB algorithm (the starting point).

vLLM calls `rebalance_experts` with the recent per-expert token counts of every MoE layer and
places the returned physical slots on GPUs: GPU g holds slots g*S .. g*S+S-1, with
S = num_replicas / num_gpus. The placement then serves the *next* interval of traffic.
"""

import torch

# EVOLVE-BLOCK-START


def balanced_packing(weight: torch.Tensor, num_packs: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Split the n items of each row into `num_packs` packs of n / num_packs items each,
    keeping pack weights even: items go heaviest first, each to the lightest pack with room.

    Returns (pack_index, rank_in_pack), both [rows, n].
    """
    rows, items = weight.shape
    per_pack = items // num_packs
    if per_pack == 1:
        index = torch.arange(items, dtype=torch.int64).expand(rows, items).clone()
        return index, torch.zeros_like(index)
    order = weight.float().sort(dim=-1, descending=True, stable=True).indices.tolist()
    pack_index = torch.full((rows, items), -1, dtype=torch.int64)
    rank_in_pack = torch.full((rows, items), -1, dtype=torch.int64)
    values = weight.float().tolist()
    for row in range(rows):
        pack_weight = [0.0] * num_packs
        pack_fill = [0] * num_packs
        for item in order[row]:
            open_packs = [p for p in range(num_packs) if pack_fill[p] < per_pack]
            pack = min(open_packs, key=pack_weight.__getitem__)
            pack_index[row, item] = pack
            rank_in_pack[row, item] = pack_fill[pack]
            pack_weight[pack] += values[row][item]
            pack_fill[pack] += 1
    return pack_index, rank_in_pack


def replicate_experts(weight: torch.Tensor, num_slots: int
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Give every expert one slot, then hand each remaining slot to the expert with the highest
    load per replica.

    Returns (slot_to_expert [rows, num_slots], replica_rank [rows, num_slots],
    replica_count [rows, experts]).
    """
    rows, experts = weight.shape
    slot_to_expert = torch.arange(num_slots, dtype=torch.int64).repeat(rows, 1)
    replica_rank = torch.zeros(rows, num_slots, dtype=torch.int64)
    replica_count = torch.ones(rows, experts, dtype=torch.int64)
    all_rows = torch.arange(rows)
    for slot in range(experts, num_slots):
        busiest = (weight / replica_count).max(dim=-1).indices
        slot_to_expert[:, slot] = busiest
        replica_rank[:, slot] = replica_count[all_rows, busiest]
        replica_count[all_rows, busiest] += 1
    return slot_to_expert, replica_rank, replica_count


def _inverse(permutation: torch.Tensor) -> torch.Tensor:
    inverse = torch.empty_like(permutation)
    positions = torch.arange(permutation.size(1), dtype=torch.int64).expand_as(permutation)
    return inverse.scatter_(1, permutation, positions)


def rebalance_hierarchical(weight: torch.Tensor, num_slots: int, num_groups: int,
                           num_nodes: int, num_gpus: int
                           ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Groups to nodes, then replication inside each node, then replicas to the node's GPUs.

    Returns (slot_to_expert, replica_rank, replica_count) in global numbering.
    """
    layers, experts = weight.shape
    group_size = experts // num_groups
    groups_per_node = num_groups // num_nodes
    slots_per_gpu = num_slots // num_gpus
    experts_per_node = experts // num_nodes

    # 1. Pack expert groups onto nodes; renumber experts so each node's experts are contiguous
    #    ("node-local" numbering: node n owns n*experts_per_node ...).
    group_load = weight.unflatten(-1, (num_groups, group_size)).sum(-1)
    group_node, group_rank = balanced_packing(group_load, num_nodes)
    group_start = (group_node * groups_per_node + group_rank) * group_size
    expert_to_local = (group_start.unsqueeze(-1) + torch.arange(group_size)).flatten(-2)
    local_to_expert = _inverse(expert_to_local)

    # 2. Replicate inside each node: every node has num_slots / num_nodes slots.
    node_load = weight.gather(-1, local_to_expert).view(-1, experts_per_node)
    slot_to_local, slot_rank, local_count = replicate_experts(node_load, num_slots // num_nodes)

    # 3. Pack each node's replicas onto its GPUs by load per replica.
    replica_load = (node_load / local_count).gather(-1, slot_to_local)
    gpu_of, rank_on_gpu = balanced_packing(replica_load, num_gpus // num_nodes)
    slot_to_position = gpu_of * slots_per_gpu + rank_on_gpu
    position_to_slot = _inverse(slot_to_position)

    # 4. Back to global slot and expert numbers.
    position_to_local = slot_to_local.gather(-1, position_to_slot)
    node_offset = torch.arange(0, experts, experts_per_node).view(1, -1, 1)
    position_to_local = (position_to_local.view(layers, num_nodes, -1) + node_offset).flatten(-2)
    slot_to_expert = local_to_expert.gather(-1, position_to_local)
    replica_rank = slot_rank.gather(-1, position_to_slot).view(layers, -1)
    replica_count = local_count.view(layers, -1).gather(-1, expert_to_local)
    return slot_to_expert, replica_rank, replica_count


def rebalance_experts(weight: torch.Tensor, num_replicas: int, num_groups: int,
                      num_nodes: int, num_gpus: int
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Place `num_replicas` expert replicas on `num_gpus` GPUs for every layer.

    weight: [layers, logical_experts] load of each expert.
    Returns phy2log [layers, num_replicas], log2phy [layers, logical_experts, max_replicas]
    (-1 padded), logcnt [layers, logical_experts].
    """
    layers, experts = weight.shape
    weight = weight.float().cpu()
    if num_groups % num_nodes == 0:
        phy2log, rank, logcnt = rebalance_hierarchical(weight, num_replicas, num_groups,
                                                       num_nodes, num_gpus)
    else:
        # Groups cannot be kept whole per node: treat everything as one group on one node.
        phy2log, rank, logcnt = rebalance_hierarchical(weight, num_replicas, 1, 1, num_gpus)
    max_replicas = num_replicas - experts + 1
    log2phy = torch.full((layers, experts, max_replicas), -1, dtype=torch.int64)
    log2phy.view(layers, -1).scatter_(
        -1, phy2log * max_replicas + rank,
        torch.arange(num_replicas, dtype=torch.int64).expand(layers, -1))
    return phy2log, log2phy, logcnt


# EVOLVE-BLOCK-END

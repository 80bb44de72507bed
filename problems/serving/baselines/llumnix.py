"""Baseline: Llumnix's policy (Sun et al., OSDI '24), as we read the paper.

Virtual usage of an instance = blocks in use + blocks its waiting queue will need (queued
demand counts as if it were allocated). Freeness = free virtual blocks per request of the
batch (running + queued): how far the batch can still grow. Dispatch to the freest instance.
Every call of `migrate`, pair the least free instances (below LOW) with the freest ones
(above HIGH) and move one running request from each such source, the one with the fewest
cached tokens (the cheapest to copy), if the target has room. LOW and HIGH are ours (the paper
does not publish its thresholds); they were picked from a small sweep on the full stage.
"""

LOW = 10.0     # free blocks per request
HIGH = 50.0


def freeness(inst):
    virtual = inst.total_blocks - inst.free_blocks + inst.waiting_blocks
    return (inst.total_blocks - virtual) / max(1, inst.num_running + inst.num_waiting)


def dispatch(request, instances):
    return max(range(len(instances)), key=lambda i: (freeness(instances[i]), -i))


def migrate(instances):
    ranked = sorted(range(len(instances)), key=lambda i: (freeness(instances[i]), i))
    sources = [i for i in ranked if freeness(instances[i]) < LOW and not instances[i].migrating_out]
    targets = [i for i in reversed(ranked) if freeness(instances[i]) > HIGH
               and not instances[i].migrating_in]
    moves = []
    for src, tgt in zip(sources, targets, strict=False):
        if src == tgt:
            break
        candidates = [r for r in instances[src].running_requests() if not r.migrating]
        if not candidates:
            continue
        pick = min(candidates, key=lambda r: (r.kv_tokens, r.id))
        if instances[tgt].free_blocks >= pick.kv_blocks + 1:
            moves.append((pick.id, src, tgt))
    return moves

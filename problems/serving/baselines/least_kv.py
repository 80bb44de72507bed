"""Baseline: least KV-cache usage (blocks in use, including reserved ones), then fewest
waiting requests, then lowest index; no migration."""


def dispatch(request, instances):
    return min(range(len(instances)),
               key=lambda i: (instances[i].total_blocks - instances[i].free_blocks,
                              instances[i].num_waiting, i))

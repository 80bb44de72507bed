"""Dispatch LLM requests across 16 serving instances (and, optionally, migrate them).

`dispatch(request, instances) -> int` is called at every arrival and returns the index of
the instance that will queue the request. `request`: id, arrival_s, prompt_tokens (the output
length is unknown, as in a real server). `instances`: one read-only snapshot per instance with
index, now_s, num_running, num_waiting, total_blocks, free_blocks, reserved_blocks,
waiting_prefill_tokens, waiting_blocks, running_kv_tokens, recent_iteration_s, busy_until_s,
migrating_out, migrating_in, block_tokens (16), max_num_seqs, and the methods
running_requests() / waiting_requests() (tuples of id, arrival_s, prompt_tokens,
generated_tokens, kv_tokens, kv_blocks, migrating).

Optional `migrate(instances) -> list of (request id, source, target)`, called every 100 ms:
live-migrates running requests (Llumnix-style: the copy overlaps decoding; the request pauses
only for the last stage). Each must be running on `source`, not already migrating, and the
target needs kv_blocks + 1 free blocks and a free sequence slot. Any invalid answer makes
the program invalid.
"""


# EVOLVE-BLOCK-START
QUEUE_WEIGHT = 1.0      # per waiting request
RUNNING_WEIGHT = 1.0    # per running request
PREFILL_WEIGHT = 0.1    # per 1,000 prompt tokens waiting to be prefilled
MEMORY_WEIGHT = 1.0     # per fraction of the KV cache in use


def dispatch(request, instances):
    """Least weighted load; ties go round robin (rotating with the request id)."""
    n = len(instances)

    def load(v):
        return (QUEUE_WEIGHT * v.num_waiting + RUNNING_WEIGHT * v.num_running
                + PREFILL_WEIGHT * v.waiting_prefill_tokens / 1000
                + MEMORY_WEIGHT * (1 - v.free_blocks / v.total_blocks))

    return min(range(n), key=lambda i: (load(instances[i]), (i - request.id) % n))
# EVOLVE-BLOCK-END

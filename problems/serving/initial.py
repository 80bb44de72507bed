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
target needs kv_blocks + 1 free blocks. Any invalid answer makes the program invalid.
"""


# EVOLVE-BLOCK-START
def dispatch(request, instances):
    """Round robin: request i goes to instance i mod N."""
    return request.id % len(instances)
# EVOLVE-BLOCK-END

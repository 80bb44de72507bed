"""Read-only snapshots the policy sees: immutable tuples, built fresh for every call.

The per-request lists are built only when the policy asks for them (`running_requests()`,
`waiting_requests()`), because most policies read only the aggregates; they show the instance
as it is when asked (within one call, the same as the aggregates).
"""

from __future__ import annotations

import struct
from functools import cache
from typing import NamedTuple

from problems.serving.instance import PAUSED, Instance

# Numbers per instance in a state (`Cluster.state`), packed little-endian: ten integers
# (running, waiting, free blocks, reserved blocks, waiting prefill tokens, waiting blocks,
# running KV tokens, migrating out, migrating in, decode steps D) and two floats (last
# iteration's seconds, busy until); the time comes first among the floats.
STATE_INTS, STATE_FLOATS = 10, 2


@cache
def state_ints(instances: int) -> struct.Struct:
    return struct.Struct(f"<{STATE_INTS * instances}q")


@cache
def state_floats(instances: int) -> struct.Struct:
    return struct.Struct(f"<{1 + STATE_FLOATS * instances}d")


class RequestView(NamedTuple):
    id: int
    arrival_s: float
    prompt_tokens: int
    generated_tokens: int     # tokens produced so far (not the output length: that is unknown)
    kv_tokens: int            # tokens in this instance's KV cache (0 while waiting)
    kv_blocks: int
    migrating: bool           # being copied to another instance


class NewRequest(NamedTuple):
    id: int
    arrival_s: float
    prompt_tokens: int


class _InstanceFields(NamedTuple):
    index: int
    now_s: float                  # the time of this call
    num_running: int
    num_waiting: int
    total_blocks: int
    free_blocks: int              # total - used (used includes reserved and held blocks)
    reserved_blocks: int          # held for requests being migrated in
    waiting_prefill_tokens: int   # tokens the waiting queue still has to prefill
    waiting_blocks: int           # KV blocks the waiting queue will need when admitted
    running_kv_tokens: int        # tokens cached by the running batch
    recent_iteration_s: float     # duration of the last iteration
    busy_until_s: float           # end of the iteration in flight
    migrating_out: int
    migrating_in: int
    block_tokens: int
    max_num_seqs: int
    detail: object                # called by running_requests() / waiting_requests()


class InstanceView(_InstanceFields):
    __slots__ = ()

    def running_requests(self) -> tuple[RequestView, ...]:
        return self.detail(True)

    def waiting_requests(self) -> tuple[RequestView, ...]:
        return self.detail(False)


def _detail_of(inst: Instance):
    req = inst.req
    migrating = frozenset(inst.migrating_out)

    def detail(running: bool) -> tuple[RequestView, ...]:
        if running:
            D = inst.D
            return tuple(RequestView(r, req.arrival[r], req.prompt[r],
                                     req.base[r] + D - req.prompt[r] + 1, req.base[r] + D,
                                     (req.base[r] + D + 15) >> 4, r in migrating)
                         for r in sorted(inst.running))
        return tuple(RequestView(r, req.arrival[r], req.prompt[r], req.done_tokens[r], 0, 0, False)
                     for r in inst.waiting if req.state[r] != PAUSED)
    return detail


def snapshot(inst: Instance, now: float) -> InstanceView:
    spec = inst.spec
    return InstanceView(inst.index, now, len(inst.running), len(inst.waiting), inst.total,
                        inst.total - inst.used, inst.reserved, inst.waiting_tokens,
                        inst.waiting_blocks, inst.S + len(inst.running) * inst.D,
                        inst.last_iteration_s, inst.clock, len(inst.migrating_out),
                        inst.migrating_in, spec.block_tokens, spec.max_num_seqs,
                        _detail_of(inst))

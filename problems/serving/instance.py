"""One serving instance: vLLM-style continuous batching over a paged KV cache.

Rules (vLLM v0's default scheduler, no chunked prefill):
- An iteration starts when the previous one ends. If the head of the waiting queue fits (a
  free sequence slot, the per-iteration token budget, and its KV blocks with the 1% watermark
  kept free), the iteration is a prefill of every waiting request that fits, in FCFS order,
  stopping at the first that does not. Otherwise it is a decode step: every running request
  writes one token into its KV cache and produces the next one.
- KV memory is paged in blocks of 16 tokens. A decode step that needs more blocks than are
  free preempts the newest running request (latest arrival) until the rest fit; the victim
  loses its cache and goes back to the front of the waiting queue, to be recomputed (prompt +
  the tokens it already produced, as one prefill).
- A request's first token comes out of its first prefill (time to first token); it is done when
  it has produced its output length.

Everything is kept as aggregates so that a decode step is O(1): all running requests advance
one token per step, so request r's cached tokens are `base[r] + D` where D counts this
instance's decode steps; the requests needing a new block at a step are those whose
`base % 16` matches the step (`phase` counts them); completions come off a heap keyed by the
step at which they finish.
"""

from __future__ import annotations

import heapq
from collections import deque

from problems.serving.costmodel import CostModel, InstanceSpec

WAITING, RUNNING, PAUSED, FINISHED = 1, 2, 3, 4
# Entries of an instance's log (see Instance.log and problems.serving.remote), each followed
# by the instance, the request and a value:
ENQUEUED = 1      # appended to the waiting queue; value: tokens it already produced
PREFILLED = 2     # taken off the head of the queue into the batch; value: its base
ANSWERED = 7      # taken off the head of the queue, done by its prefill (one output token)
PREEMPTED = 3     # out of the batch, back to the head of the queue; value: tokens produced
LEFT = 4          # out of the batch (finished, or paused for the last copy stage)
JOINED = 5        # joined the batch, migrated in; value: its base
MIGRATING = 6     # value: 1 when its copy to another instance starts, 0 when it ends


class SimulationError(RuntimeError):
    """An internal invariant broke (a bug in the simulator, never the candidate's fault)."""


class Requests:
    """Per-request state shared by the instances of one simulation (plain lists: fast)."""

    def __init__(self, arrival, prompt, output):
        n = len(arrival)
        self.n = n
        self.arrival = [float(x) for x in arrival]
        self.prompt = [int(x) for x in prompt]
        self.output = [int(x) for x in output]
        self.state = [0] * n             # 0 not arrived yet
        self.where = [-1] * n            # instance index
        self.base = [0] * n              # cached tokens = base + instance.D while running
        self.done_tokens = [0] * n       # tokens produced, while not running
        self.epoch = [0] * n             # bumps on every admission / preemption / move
        self.first_token = [-1.0] * n
        self.finish = [-1.0] * n
        self.preemptions = [0] * n
        self.migrations = [0] * n


class Instance:
    __slots__ = ("index", "spec", "cost", "req", "clock", "D", "running", "S", "phase", "used",
                 "reserved", "held", "heap", "waiting", "waiting_tokens", "waiting_blocks", "last_iteration_s",
                 "iterations", "busy_s", "preempted", "total", "limit", "migrating_out",
                 "migrating_in", "log")

    def __init__(self, index: int, spec: InstanceSpec, cost: CostModel, requests: Requests,
                 log: list[int] | None = None):
        self.index = index
        # Changes to the request lists, for a policy in another process (`problems.serving.
        # remote`): flat (op, instance, request, value) entries; None when nobody reads them.
        self.log = log
        self.spec = spec
        self.cost = cost
        self.req = requests
        self.total = spec.total_blocks
        self.limit = spec.total_blocks - spec.watermark_blocks   # admission limit
        self.clock = 0.0
        self.D = 0
        self.running: set[int] = set()
        self.S = 0                       # sum of base over running
        self.phase = [0] * 16            # running requests by base % 16
        self.used = 0                    # blocks in use: running + reserved + held
        self.reserved = 0                # blocks reserved for incoming migrations
        self.held = 0                    # blocks of requests paused for their last copy stage
        self.heap: list[tuple[int, int]] = []
        self.waiting: deque[int] = deque()
        self.waiting_tokens = 0
        self.waiting_blocks = 0
        self.last_iteration_s = 0.0
        self.iterations = 0
        self.busy_s = 0.0
        self.preempted = 0
        self.migrating_out: set[int] = set()
        self.migrating_in = 0

    # ---- queries -------------------------------------------------------------------------
    def kv_tokens(self, rid: int) -> int:
        return self.req.base[rid] + self.D

    def context_tokens(self) -> int:
        return self.S + len(self.running) * self.D

    @property
    def free_blocks(self) -> int:
        return self.total - self.used

    def has_work(self) -> bool:
        return bool(self.running or self.waiting)

    # ---- arrivals and moves ----------------------------------------------------------------
    def enqueue(self, rid: int, now: float) -> None:
        req = self.req
        req.state[rid] = WAITING
        req.where[rid] = self.index
        self.waiting.append(rid)
        if self.log is not None:
            self.log += (ENQUEUED, self.index, rid, req.done_tokens[rid])
        length = req.prompt[rid] + req.done_tokens[rid]
        self.waiting_tokens += length
        self.waiting_blocks += (length + 15) >> 4
        if self.clock < now:
            self.clock = now

    def add_running(self, rid: int, kv: int, now: float) -> None:
        """A migrated request joins the batch with `kv` cached tokens (its blocks were
        reserved here while it was copied)."""
        req = self.req
        blocks = (kv + 15) >> 4
        self.reserved -= blocks
        if self.reserved < 0:
            raise SimulationError(f"instance {self.index}: reservation went negative")
        base = kv - self.D
        req.base[rid] = base
        req.state[rid] = RUNNING
        req.where[rid] = self.index
        req.epoch[rid] += 1
        self.running.add(rid)
        if self.log is not None:
            self.log += (JOINED, self.index, rid, base)
        self.S += base
        self.phase[base & 15] += 1
        heapq.heappush(self.heap, (req.prompt[rid] + req.output[rid] - 1 - base, rid))
        if self.clock < now:
            self.clock = now

    def pause(self, rid: int) -> int:
        """Take a running request out of the batch for its last copy stage; its blocks stay
        held here until the copy ends. Returns its cached tokens."""
        req = self.req
        base = req.base[rid]
        kv = base + self.D
        self.running.discard(rid)
        if self.log is not None:
            self.log += (LEFT, self.index, rid, 0)
        self.S -= base
        self.phase[base & 15] -= 1
        self.held += (kv + 15) >> 4
        req.state[rid] = PAUSED
        req.done_tokens[rid] = kv - req.prompt[rid] + 1
        return kv

    def release_held(self, kv: int) -> None:
        blocks = (kv + 15) >> 4
        self.held -= blocks
        self.used -= blocks

    # ---- simulation ------------------------------------------------------------------------
    def advance_to(self, t: float) -> None:
        """Run every iteration that starts before `t` (the last may end after it)."""
        while self.clock < t:
            if self.waiting and self._prefill():
                continue
            if self.running:
                self._decode()
                continue
            self.clock = t
            return

    def _prefill(self) -> bool:
        req = self.req
        waiting = self.waiting
        slots = self.spec.max_num_seqs - len(self.running)
        budget = self.spec.max_batched_tokens
        free = self.limit - self.used
        batch = []
        tokens = squares = taken = 0
        while waiting and slots > 0:
            rid = waiting[0]
            length = req.prompt[rid] + req.done_tokens[rid]
            blocks = (length + 15) >> 4
            if tokens + length > budget or blocks > free:
                break
            waiting.popleft()
            batch.append(rid)
            tokens += length
            squares += length * length
            free -= blocks
            taken += blocks
            slots -= 1
        if not batch:
            return False
        dt = self.cost.prefill_time(tokens, squares)
        self.clock += dt
        self.busy_s += dt
        self.last_iteration_s = dt
        self.iterations += 1
        self.waiting_tokens -= tokens
        self.waiting_blocks -= taken
        end = self.clock
        D = self.D
        phase = self.phase
        log = self.log
        for rid in batch:
            length = req.prompt[rid] + req.done_tokens[rid]
            produced = req.done_tokens[rid] + 1
            req.epoch[rid] += 1
            if req.first_token[rid] < 0:
                req.first_token[rid] = end
            if produced >= req.output[rid]:
                req.done_tokens[rid] = produced
                req.state[rid] = FINISHED
                req.finish[rid] = end
                if log is not None:
                    log += (ANSWERED, self.index, rid, 0)
                continue
            base = length - D
            if log is not None:
                log += (PREFILLED, self.index, rid, base)
            req.base[rid] = base
            req.state[rid] = RUNNING
            self.running.add(rid)
            self.S += base
            phase[base & 15] += 1
            self.used += (length + 15) >> 4
            heapq.heappush(self.heap, (req.prompt[rid] + req.output[rid] - 1 - base, rid))
        return True

    def _preempt_newest(self) -> None:
        req = self.req
        rid = max(self.running)
        base = req.base[rid]
        kv = base + self.D
        self.running.discard(rid)
        self.S -= base
        self.phase[base & 15] -= 1
        self.used -= (kv + 15) >> 4
        produced = kv - req.prompt[rid] + 1
        req.done_tokens[rid] = produced
        req.state[rid] = WAITING
        req.epoch[rid] += 1
        req.preemptions[rid] += 1
        self.preempted += 1
        self.waiting.appendleft(rid)
        if self.log is not None:
            self.log += (PREEMPTED, self.index, rid, produced)
        self.waiting_tokens += req.prompt[rid] + produced
        self.waiting_blocks += (req.prompt[rid] + produced + 15) >> 4

    def _decode(self) -> None:
        phase = self.phase
        need = phase[-self.D & 15]
        while self.used + need > self.total:
            self._preempt_newest()
            if not self.running:
                return
            need = phase[-self.D & 15]
        batch = len(self.running)
        context = self.S + batch * (self.D + 1)
        dt = self.cost.decode_time(batch, context)
        self.clock += dt
        self.busy_s += dt
        self.last_iteration_s = dt
        self.iterations += 1
        self.used += need
        self.D += 1
        D = self.D
        heap = self.heap
        if heap and heap[0][0] <= D:
            self._complete(D)

    def _complete(self, D: int) -> None:
        req = self.req
        heap = self.heap
        end = self.clock
        while heap and heap[0][0] <= D:
            step, rid = heapq.heappop(heap)
            if req.state[rid] != RUNNING or req.where[rid] != self.index:
                continue
            base = req.base[rid]
            if req.prompt[rid] + req.output[rid] - 1 - base != step:
                continue   # an entry from before a preemption or a move
            if step != D:
                raise SimulationError(f"request {rid} missed its finish step on instance {self.index}")
            self.running.discard(rid)
            if self.log is not None:
                self.log += (LEFT, self.index, rid, 0)
            self.S -= base
            self.phase[base & 15] -= 1
            self.used -= (base + D + 15) >> 4
            req.state[rid] = FINISHED
            req.finish[rid] = end
            req.done_tokens[rid] = req.output[rid]

"""The cluster: N instances, a dispatcher called at every arrival, and Llumnix-style live
migration requested by the policy every `migrate_interval_s`.

Answers are copied with `plain_int` before they are checked. Tampering with the evaluator is
checked once per evaluation, after the policy ran (evaluate.py): a check after each of the
~60,000 calls of the full stage would cost more than the simulation itself, and any patch
found then rejects the whole result anyway.

Events are handled in time order: migration stage ends, then arrivals, then migration calls
(ties in that order). Before the policy is called, every instance is advanced to the call's
time, so its snapshot shows the state at the end of the iteration in flight.

Live migration (Llumnix, OSDI '24): the request keeps decoding on the source while its KV
cache is copied in stages; each stage copies the tokens added since the previous one, taking
`tokens * kv_bytes_per_token / bandwidth + stage overhead`. When a stage had at most one
block of new tokens to copy, the request is paused (out of the source's batch) for a last
stage that copies the rest, then joins the target's running batch (a copy that has not
converged after MAX_STAGES stages pauses for its last one anyway). The target reserves blocks
for everything copied as it goes, and the source keeps its blocks until the copy ends, so the
memory is held on both sides. If the request finishes or is preempted on the source before the
copy ends, or the target runs out of room for the next stage, the migration is aborted and the
target's reservation freed.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

from evaluators.harness_api import plain_int
from problems.serving.costmodel import (
    COST,
    INSTANCE,
    MIGRATION_BYTES_PER_S,
    MIGRATION_STAGE_OVERHEAD_S,
    MODEL,
    CostModel,
    InstanceSpec,
)
from problems.serving.instance import (
    FINISHED,
    MIGRATING,
    PAUSED,
    RUNNING,
    Instance,
    Requests,
    SimulationError,
)
from problems.serving.views import NewRequest, snapshot, state_floats, state_ints
from problems.serving.workload import Workload

MAX_MIGRATIONS_PER_CALL = 64
# A copy that does not converge (the request decodes faster than the link copies) is
# finished with a pause after this many stages.
MAX_STAGES = 4
# What the policy is asked next (`Cluster.calls`): dispatch a request, or migrate.
DISPATCH, MIGRATE = 0, 1


class PolicyError(Exception):
    """The policy returned something invalid; the message says what and when."""


@dataclass(frozen=True)
class ClusterConfig:
    instances: int = 16
    spec: InstanceSpec = INSTANCE
    cost: CostModel = COST
    kv_bytes_per_token: int = MODEL.kv_bytes_per_token
    migration_bytes_per_s: float = MIGRATION_BYTES_PER_S
    stage_overhead_s: float = MIGRATION_STAGE_OVERHEAD_S
    migrate_interval_s: float = 0.1


@dataclass
class _Migration:
    rid: int
    src: int
    tgt: int
    epoch: int
    copied: int          # tokens already copied
    reserved: int        # blocks reserved on the target
    stages: int = 1
    final: bool = False


@dataclass
class SimResult:
    requests: Requests
    instances: list[Instance]
    migrations_started: int
    migrations_done: int
    migrations_aborted: int
    pause_s: float
    end_s: float


DEFAULT_CONFIG = ClusterConfig()


class Cluster:
    def __init__(self, workload: Workload, config: ClusterConfig = DEFAULT_CONFIG, *,
                 log: bool = False):
        self.config = config
        self.req = Requests(workload.arrival_s, workload.prompt, workload.output)
        # Every change to the instances' request lists, when the policy's views are rebuilt in
        # another process (`take_log`).
        self.log: list[int] | None = [] if log else None
        self.instances = [Instance(i, config.spec, config.cost, self.req, self.log)
                          for i in range(config.instances)]
        self.events: list[tuple[float, int, _Migration]] = []
        self._seq = 0
        self.migrating: dict[int, _Migration] = {}
        self.started = self.done = self.aborted = 0
        self.pause_s = 0.0
        self.now = 0.0

    # ---- time ----------------------------------------------------------------------------
    def _advance(self, t: float, which=None) -> None:
        if t < self.now:
            raise SimulationError(f"time went backwards: {t} < {self.now}")
        self.now = t
        for inst in (self.instances if which is None else which):
            inst.advance_to(t)

    def snapshots(self):
        now = self.now
        return tuple(snapshot(inst, now) for inst in self.instances)

    def state(self) -> tuple[bytes, bytes]:
        """What the snapshots show, packed for another process (`remote.STATE_INTS` and
        `remote.STATE_FLOATS`: the time, then per instance its integer and its float fields);
        `problems.serving.remote` rebuilds the snapshots from them and from the log."""
        ints: list[int] = []
        floats: list[float] = [self.now]
        for inst in self.instances:
            running = len(inst.running)
            D = inst.D
            ints += (running, len(inst.waiting), inst.total - inst.used, inst.reserved,
                     inst.waiting_tokens, inst.waiting_blocks, inst.S + running * D,
                     len(inst.migrating_out), inst.migrating_in, D)
            floats += (inst.last_iteration_s, inst.clock)
        return state_ints(len(self.instances)).pack(*ints), \
            state_floats(len(self.instances)).pack(*floats)

    def take_log(self) -> list[int]:
        """The request-list changes since the last call (see `instance.ENQUEUED` and after)."""
        log = self.log
        if log is None:
            return []
        taken = log[:]
        log.clear()
        return taken

    def _log_migrating(self, inst: Instance, rid: int, on: int) -> None:
        if self.log is not None:
            self.log += (MIGRATING, inst.index, rid, on)

    # ---- policy calls ----------------------------------------------------------------------
    def _place(self, rid: int, answer: Any) -> None:
        """Queue request `rid` where the policy's `answer` says (checked)."""
        try:
            index = plain_int(answer)
        except TypeError as exc:
            raise PolicyError(f"dispatch of request {rid} at t={self.now:.3f}s returned "
                              f"{type(answer).__name__}: {exc}") from None
        if not 0 <= index < len(self.instances):
            raise PolicyError(f"dispatch of request {rid} at t={self.now:.3f}s returned {index}, "
                              f"not an instance index (0..{len(self.instances) - 1})")
        self.instances[index].enqueue(rid, self.now)

    def _parse_moves(self, answer: Any) -> list[tuple[int, int, int]]:
        when = f"migrate at t={self.now:.3f}s"
        if answer is None:
            return []
        if type(answer) not in (list, tuple):
            raise PolicyError(f"{when} returned {type(answer).__name__}; return a list of "
                              f"(request id, source, target) tuples")
        if len(answer) > MAX_MIGRATIONS_PER_CALL:
            raise PolicyError(f"{when} asked for {len(answer)} migrations; at most "
                              f"{MAX_MIGRATIONS_PER_CALL} per call")
        moves = []
        for item in answer:
            if type(item) not in (list, tuple) or len(item) != 3:
                raise PolicyError(f"{when}: {item!r} is not a (request id, source, target) tuple")
            try:
                moves.append(tuple(plain_int(x) for x in item))
            except TypeError as exc:
                raise PolicyError(f"{when}: {item!r}: {exc}") from None
        return moves

    def _move(self, answer: Any) -> None:
        """Start the migrations the policy's `answer` asks for (each checked)."""
        moves = self._parse_moves(answer)
        req = self.req
        n = len(self.instances)
        when = f"migrate at t={self.now:.3f}s"
        for rid, src, tgt in moves:
            if not (0 <= src < n and 0 <= tgt < n):
                raise PolicyError(f"{when}: instance index out of range in ({rid}, {src}, {tgt}); "
                                  f"instances are 0..{n - 1}")
            if src == tgt:
                raise PolicyError(f"{when}: request {rid} from instance {src} to itself")
            if not 0 <= rid < req.n or req.state[rid] == 0:
                raise PolicyError(f"{when}: request {rid} does not exist (yet)")
            if req.state[rid] == FINISHED:
                raise PolicyError(f"{when}: request {rid} already finished at "
                                  f"t={req.finish[rid]:.3f}s; only running requests migrate")
            if req.state[rid] != RUNNING or req.where[rid] != src:
                where = "waiting" if req.state[rid] != PAUSED else "paused for migration"
                if req.state[rid] == RUNNING:
                    where = f"running on instance {req.where[rid]}"
                raise PolicyError(f"{when}: request {rid} is not running on instance {src} "
                                  f"({where})")
            if rid in self.migrating:
                raise PolicyError(f"{when}: request {rid} is already being migrated")
            source, target = self.instances[src], self.instances[tgt]
            kv = source.kv_tokens(rid)
            blocks = (kv + 15) >> 4
            if target.free_blocks < blocks + 1:
                raise PolicyError(f"{when}: instance {tgt} has {target.free_blocks} free blocks, "
                                  f"request {rid} needs {blocks + 1}")
            if len(target.running) + target.migrating_in >= target.spec.max_num_seqs:
                raise PolicyError(f"{when}: instance {tgt} has no free sequence slot "
                                  f"(max_num_seqs = {target.spec.max_num_seqs})")
            self._start(rid, source, target, kv, blocks)

    # ---- migration mechanics -------------------------------------------------------------
    def _copy_time(self, tokens: int) -> float:
        cfg = self.config
        return tokens * cfg.kv_bytes_per_token / cfg.migration_bytes_per_s + cfg.stage_overhead_s

    def _schedule(self, at: float, mig: _Migration) -> None:
        self._seq += 1
        heapq.heappush(self.events, (at, self._seq, mig))

    def _start(self, rid, source, target, kv, blocks) -> None:
        mig = _Migration(rid, source.index, target.index, self.req.epoch[rid], kv, blocks)
        target.used += blocks
        target.reserved += blocks
        target.migrating_in += 1
        source.migrating_out.add(rid)
        self._log_migrating(source, rid, 1)
        self.migrating[rid] = mig
        self.started += 1
        # The copy starts when the source's iteration in flight ends (the snapshot showed
        # the cache as of then).
        self._schedule(max(self.now, source.clock) + self._copy_time(kv), mig)

    def _abort(self, mig: _Migration) -> None:
        target = self.instances[mig.tgt]
        target.used -= mig.reserved
        target.reserved -= mig.reserved
        target.migrating_in -= 1
        self.instances[mig.src].migrating_out.discard(mig.rid)
        self._log_migrating(self.instances[mig.src], mig.rid, 0)
        del self.migrating[mig.rid]
        self.aborted += 1

    def _stage_end(self, mig: _Migration) -> None:
        source, target = self.instances[mig.src], self.instances[mig.tgt]
        self._advance(self.now, (source, target))
        req = self.req
        if mig.final:
            source.release_held(mig.copied)
            source.migrating_out.discard(mig.rid)
            self._log_migrating(source, mig.rid, 0)
            target.migrating_in -= 1
            target.add_running(mig.rid, mig.copied, self.now)
            req.migrations[mig.rid] += 1
            del self.migrating[mig.rid]
            self.done += 1
            return
        if req.state[mig.rid] != RUNNING or req.epoch[mig.rid] != mig.epoch:
            self._abort(mig)   # finished or preempted on the source meanwhile
            return
        kv = source.kv_tokens(mig.rid)
        blocks = (kv + 15) >> 4
        extra = blocks - mig.reserved
        if extra > target.free_blocks:
            self._abort(mig)
            return
        target.used += extra
        target.reserved += extra
        mig.reserved = blocks
        delta = kv - mig.copied
        mig.stages += 1
        if delta <= source.spec.block_tokens or mig.stages >= MAX_STAGES:
            source.pause(mig.rid)
            mig.final = True
            duration = self._copy_time(delta)
            self.pause_s += duration
        else:
            duration = self._copy_time(delta)
        mig.copied = kv
        self._schedule(max(self.now, source.clock) + duration, mig)

    # ---- the run ---------------------------------------------------------------------------
    def calls(self, migrate: bool) -> Generator[tuple[int, int], Any, SimResult]:
        """The simulation, as the policy's calls: yields (DISPATCH, request id) or (MIGRATE,
        -1) once every instance is advanced to the call's time, and takes the policy's answer
        (checked here: PolicyError); returns the result. `migrate`: whether the policy has a
        migrate function (called every `migrate_interval_s`)."""
        req = self.req
        arrivals = req.arrival
        n = req.n
        interval = self.config.migrate_interval_s
        next_call = interval if migrate else float("inf")
        i = 0
        inf = float("inf")
        while True:
            t_arrival = arrivals[i] if i < n else inf
            t_event = self.events[0][0] if self.events else inf
            if i >= n and not self.events:
                if not migrate or not any(inst.has_work() for inst in self.instances):
                    break
            if t_event <= t_arrival and t_event <= next_call:
                at, _, mig = heapq.heappop(self.events)
                self.now = max(self.now, at)
                self._stage_end(mig)
            elif t_arrival <= next_call:
                self._advance(t_arrival)
                self._place(i, (yield DISPATCH, i))
                i += 1
            else:
                self._advance(next_call)
                self._move((yield MIGRATE, -1))
                next_call += interval
        for inst in self.instances:
            inst.advance_to(inf)
        end = max(req.finish) if n else 0.0
        return SimResult(req, self.instances, self.started, self.done, self.aborted,
                         self.pause_s, end)

    def run(self, dispatch: Callable, migrate: Callable | None = None) -> SimResult:
        """The simulation with the policy's functions called in this process."""
        req = self.req
        steps = self.calls(migrate is not None)
        try:
            kind, rid = next(steps)
            while True:
                views = self.snapshots()
                if kind == DISPATCH:
                    answer = dispatch(NewRequest(rid, req.arrival[rid], req.prompt[rid]), views)
                else:
                    answer = migrate(views)
                kind, rid = steps.send(answer)
        except StopIteration as stop:
            return stop.value

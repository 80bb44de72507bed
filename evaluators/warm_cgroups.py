"""Each evaluation a warm interpreter forks is born in a cgroup of its own, with no cgroup
migration on its critical path.

Moving a process into a cgroup (`cgroup_join`) waits for an RCU grace
period in the kernel: milliseconds, more than the rest of a warm evaluation's set-up on a busy
machine. A forked process is born in its parent's cgroup for free, so here the zygote itself
sits in the cgroup the *next* evaluation gets: the request goes out, the zygote forks the
evaluation into that cgroup, and only then, in the background while the evaluation runs, the
zygote moves on to a fresh cgroup for the one after (the grace period is paid there, off the
critical path). The evaluation's cgroup then holds its whole tree: the fork's PID 1, the
harness supervisor or the candidate's host (one more task allowed for it), and the candidate's.
A prepared evaluation (`warm_fork`) is forked into the cgroup the zygote sits in ahead of its
request, so the zygote is told to prepare only once it sits in the next evaluation's cgroup.

The zygote does not count as the evaluation's: its memory was charged where it was allocated,
when the evaluation's cgroup runs out of memory the kernel picks the candidate's processes
first (they carry the highest OOM score adjustment, `limits.apply_limits`; the zygote the
lowest where we may set it), and an evaluation's cgroup is released only once the zygote has
left it.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path

from evaluators import tree_limits
from evaluators.tree_limits import TreeCgroup

log = logging.getLogger(__name__)

HARNESS_TASKS = 1  # the harness supervisor (or the candidate's host): the fork's PID 1
_FORK_WAIT_S = 5.0
_FIRST_PAUSE_S, _LAST_PAUSE_S = 0.0005, 0.004  # between looks for the evaluation's fork


class BornInCgroups:
    """The cgroups a zygote's evaluations are born in (None from `start` where there are
    none: evaluations then join theirs, `tree_limits`)."""

    def __init__(self, zygote_pid: int, first: TreeCgroup):
        self.pid = zygote_pid
        self._next = first
        self._moves: queue.Queue[tuple[TreeCgroup, TreeCgroup, threading.Event] | None] = \
            queue.Queue()
        self._left: dict[int, threading.Event] = {}  # id(cgroup) -> the zygote has left it
        self._pending: threading.Event | None = None
        # Evaluations over before the zygote left their cgroup: released by the mover (with
        # what follows them) once it has. `_done_lock` orders that against `finish`.
        self._done_lock = threading.Lock()
        self._after_move: dict[int, tuple[TreeCgroup, Callable[[], None]]] = {}
        self.broken = False
        # Named sandbox-*: the run's sandbox work (benchmarks/overhead.py counts such threads so).
        threading.Thread(target=self._mover, name="sandbox-zygote-cgroups", daemon=True).start()

    @classmethod
    def start(cls, zygote_pid: int | None) -> BornInCgroups | None:
        if zygote_pid is None or not tree_limits.support().version:
            return None
        try:
            # Never the kernel's choice when an evaluation's cgroup runs out of memory (where
            # we may: it needs CAP_SYS_RESOURCE). Either way the candidate's processes are
            # picked first (their adjustment is the highest, `limits.apply_limits`).
            Path(f"/proc/{zygote_pid}/oom_score_adj").write_text("-1000")
        except OSError:
            pass
        first = TreeCgroup.create(None, None, descriptors=False)
        if first is None:
            return None
        try:
            first.adopt(zygote_pid)
        except OSError:
            first.remove()
            return None
        return cls(zygote_pid, first)

    def wait_moved(self) -> None:
        """Until the zygote has moved on from the last evaluation's cgroup (under the caller's
        dispatch lock: nothing the zygote forks after this lands in that one)."""
        if self._pending is not None:
            self._pending.wait()

    def settled(self) -> bool:
        """Whether the zygote has moved on from the last evaluation's cgroup (no wait)."""
        return self._pending is None or self._pending.is_set()

    def prepare(self, memory_mb: int | None, max_processes: int | None) -> TreeCgroup | None:
        """Under the caller's dispatch lock, before it sends a request: the cgroup the zygote
        sits in (and its prepared evaluation, `warm_fork`), now carrying this evaluation's
        limits; None when there is none to give (the evaluation then joins a cgroup of its
        own, as on the cold path)."""
        self.wait_moved()
        if self.broken:
            return None
        try:
            self._next.set_limits(memory_mb, max_processes + HARNESS_TASKS
                                  if max_processes else None)
        except OSError as exc:
            log.warning("could not set an evaluation cgroup's limits (%s)", exc)
            return None
        return self._next

    def sent(self, current: TreeCgroup) -> None:
        """The request went out (still under the lock): once the zygote has forked the
        evaluation into `current` (a prepared one is there already), it moves on to a fresh
        cgroup, made and joined in the background (off the evaluation's critical path)."""
        moved = threading.Event()
        self._left[id(current)] = moved
        self._pending = moved
        self._moves.put((current, moved))

    def _mover(self) -> None:
        while True:
            job = self._moves.get()
            if job is None:
                return
            current, moved = job
            self._move_on(current)
            with self._done_lock:
                moved.set()
                waiting = self._after_move.pop(id(moved), None)
            if waiting is not None:
                # Not on this thread: `then` takes the pool's dispatch lock, whose holder may
                # be waiting in `wait_moved` for the move this thread makes next (a deadlock).
                threading.Thread(target=self._release_left, args=waiting, daemon=True,
                                 name="sandbox-cgroup-release").start()

    def _move_on(self, current: TreeCgroup) -> None:
        """Move the zygote from `current` to a fresh cgroup once the evaluation is forked
        there (a member besides the zygote); on failure it stays (`broken`)."""
        following = None
        try:
            following = TreeCgroup.create(None, None, descriptors=False)
            if following is None:
                self.broken = True  # the zygote stays in `current`: never released under it
                log.warning("no fresh cgroup for the next evaluation; evaluations of this "
                            "warm interpreter join cgroups of their own from now on")
                return
            deadline = time.monotonic() + _FORK_WAIT_S
            pause = _FIRST_PAUSE_S
            while time.monotonic() < deadline and not set(current.members()) - {self.pid}:
                # Off the critical path, but the next request to this zygote waits for the
                # move: short pauses first (a prepared evaluation is there at once, a fresh
                # fork in a few ms), longer ones for a slow fork (each look costs CPU).
                time.sleep(pause)
                pause = min(2 * pause, _LAST_PAUSE_S)
            following.adopt(self.pid)
            self._next = following
        except OSError as exc:
            self.broken = True
            log.warning("could not move the warm interpreter to its next cgroup (%s)", exc)
            if following is not None:
                following.remove()

    def finish(self, cgroup: TreeCgroup, then: Callable[[], None]) -> None:
        """The evaluation born in `cgroup` is over: release the cgroup (kill what is left in it,
        keep it for a later one) and call `then`, now when the zygote has left it, else by the
        mover once it has (no wait on the evaluation's critical path). A cgroup the zygote may
        still be in is kept, never killed."""
        moved = self._left.pop(id(cgroup), None)
        if moved is None:
            then()
            return
        with self._done_lock:
            if not moved.is_set():
                self._after_move[id(moved)] = (cgroup, then)
                return
        self._release_left(cgroup, then)

    def _release_left(self, cgroup: TreeCgroup, then: Callable[[], None]) -> None:
        if self.pid not in cgroup.members():
            cgroup.release()
        then()

    def close(self) -> None:
        self._moves.put(None)
        if self._pending is not None:
            self._pending.wait(timeout=10)
        # The zygote exits with its interpreter; its last cgroup goes with this process.
        self._next.remove_when_empty()

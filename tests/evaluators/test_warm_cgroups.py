"""The cgroups a zygote's evaluations are born in (evaluators.warm_cgroups), on this machine's
real cgroups, with real processes standing in for the zygote and its forks."""

from __future__ import annotations

import subprocess
import threading

import pytest

from evaluators import tree_limits
from evaluators.warm_cgroups import BornInCgroups

pytestmark = pytest.mark.skipif(not tree_limits.support().version,
                                reason=tree_limits.status())


def _sleeper() -> subprocess.Popen[bytes]:
    return subprocess.Popen(["sleep", "60"])


def test_a_late_release_never_waits_on_the_dispatch_lock_its_mover_is_needed_under() -> None:
    """An evaluation that ended before the zygote left its cgroup is released after the move,
    by a callback that takes the pool's dispatch lock (`WarmInterpreter._prepare_next`). The
    holder of that lock may meanwhile have sent the next request and be waiting, under the
    lock, for the mover's *next* move: a callback run on the mover's own thread would wait
    for the lock while the lock's holder waits for the mover (benchmarks/overhead.py
    --in-flight 8 hung so). Here the callback takes the lock only once the holder waits."""
    zygote = _sleeper()
    forks: list[subprocess.Popen[bytes]] = []
    cgroups = BornInCgroups.start(zygote.pid)
    assert cgroups is not None, "cgroups are offered here, so the zygote must get one"
    dispatch = threading.Lock()  # the pool's dispatch lock (WarmInterpreter._lock)
    holder_waits = threading.Event()
    released: list[bool] = []

    def prepare_next() -> None:  # what WarmInterpreter._finish hands `finish`
        assert holder_waits.wait(5), "the test's dispatch never came"
        got = dispatch.acquire(timeout=3)  # the old mover held up the holder this long
        released.append(got)
        if got:
            dispatch.release()

    def fork_into(cgroup: tree_limits.TreeCgroup) -> None:
        """What the zygote's fork does: a process of the evaluation's in its cgroup."""
        forks.append(_sleeper())
        cgroup.adopt(forks[-1].pid)

    try:
        with dispatch:  # evaluation A's request
            first = cgroups.prepare(None, None)
            assert first is not None
            cgroups.sent(first)
        # A ends before its fork showed up, so before the zygote left its cgroup: its release
        # (and the callback) wait for the move.
        cgroups.finish(first, prepare_next)
        fork_into(first)  # the mover sees A's fork, moves the zygote, then calls back
        with dispatch:  # evaluation B's request, then C's, which waits for B's move
            second = cgroups.prepare(None, None)  # waits for A's move
            assert second is not None and second is not first
            cgroups.sent(second)
            fork_into(second)
            holder_waits.set()
            cgroups.wait_moved()  # B's move: the mover's next job
        for _ in range(100):
            if released:
                break
            threading.Event().wait(0.05)
        assert released == [True], "the late release's callback could not take the lock"
        assert zygote.pid not in first.members()
        cgroups.finish(second, lambda: None)  # the zygote has left it: released at once
        assert second.is_empty()
    finally:
        cgroups.close()
        for process in [zygote, *forks]:
            process.kill()
            process.wait()

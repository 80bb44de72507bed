"""The evaluation cgroup (evaluators.tree_limits) on this machine's real cgroups: the limits each
evaluation asks for are the ones set, also on a cgroup kept from an earlier evaluation, and a
kill for memory is counted for the evaluation it happened in only."""

from __future__ import annotations

import json
import os
import signal

import pytest

from evaluators import cgroup_join, tree_limits
from evaluators.tree_limits import TreeCgroup

pytestmark = pytest.mark.skipif(not tree_limits.support().version,
                                reason=tree_limits.status())


def _limit_mb(cgroup: TreeCgroup) -> float | None:
    name = "memory.max" if cgroup.version == "v2" else "memory.limit_in_bytes"
    text = next((f / name).read_text().strip() for f in cgroup.folders if (f / name).exists())
    return None if text == "max" or int(text) >= 1 << 60 else int(text) / (1 << 20)


def _run_in(cgroup: TreeCgroup, allocate_mb: int) -> int:
    """A child that joins `cgroup` as the sandbox does and allocates; its wait status."""
    os.environ[cgroup_join.FDS_VAR] = json.dumps(cgroup.fds)
    for fd in cgroup.fds:
        os.set_inheritable(fd, True)
    pid = os.fork()
    if pid == 0:
        try:
            cgroup_join.join_from_environment()
            held = bytearray(b"\x01") * (allocate_mb << 20)
            os._exit(len(held) & 0)
        finally:
            os._exit(3)
    os.environ.pop(cgroup_join.FDS_VAR, None)
    cgroup.close_fds()
    return os.waitpid(pid, 0)[1]


def test_limits_are_set_anew_on_a_kept_cgroup():
    first = TreeCgroup.create(512, 16)
    assert first is not None and _limit_mb(first) == 512
    folders = first.folders
    first.release()
    lower = TreeCgroup.create(128, 16)
    assert lower is not None
    assert lower.folders == folders  # the same cgroup, kept
    assert _limit_mb(lower) == 128
    lower.release()
    unlimited = TreeCgroup.create(None, 16)
    assert unlimited is not None and _limit_mb(unlimited) is None
    unlimited.release()
    higher = TreeCgroup.create(1024, 16)
    assert higher is not None and _limit_mb(higher) == 1024
    higher.remove()


def test_a_kill_for_memory_is_counted_for_its_own_evaluation_only():
    cgroup = TreeCgroup.create(64, 16)
    assert cgroup is not None
    status = _run_in(cgroup, 200)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    assert cgroup.oom_kills() >= 1
    result = {"failure": "crash", "reason": "killed"}
    tree_limits.explain(result, cgroup, 64)
    assert result["failure"] == "memory" and "64 MB" in result["reason"]
    cgroup.release()
    again = TreeCgroup.create(64, 16)
    assert again is not None and again.oom_kills() == 0
    assert os.WEXITSTATUS(_run_in(again, 8)) == 0
    again.remove()


def test_a_crashed_runs_cgroups_are_removed_by_the_next_run():
    import subprocess
    import sys

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = [parent / f"evolve-{dead.pid}-0123abcd" for parent in tree_limits.support().parents]
    for folder in stale:
        folder.mkdir()
    try:
        # A new run process makes its first cgroup: it sweeps what dead runs left.
        subprocess.run([sys.executable, "-c", "from evaluators.tree_limits import TreeCgroup\n"
                        "TreeCgroup.create(64, 8).release()"], check=True, timeout=60)
        assert [f for f in stale if f.exists()] == []
    finally:
        for folder in stale:
            if folder.exists():
                folder.rmdir()


def test_a_cgroup_is_empty_only_when_none_of_its_folders_holds_a_process(tmp_path):
    # The warm path's check that an evaluation's throw-away uids have no process left rests
    # on this: a process in any of its folders (v1: memory or pids) is seen, and a folder
    # that cannot be read is never taken for an empty one.
    import subprocess

    cgroup = TreeCgroup.create(256, 16)
    assert cgroup is not None
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        assert cgroup.is_empty()
        # Moved into the last hierarchy alone (v1: pids): that one folder must be enough.
        with open(cgroup.folders[-1] / "cgroup.procs", "w") as f:
            f.write(str(sleeper.pid))
        assert not cgroup.is_empty()
        sleeper.kill()
        sleeper.wait()
        assert cgroup.is_empty()
        unreadable = TreeCgroup([tmp_path / "gone"], cgroup.version)
        assert not unreadable.is_empty()
        assert not TreeCgroup([], cgroup.version).is_empty()
    finally:
        sleeper.kill()
        sleeper.wait()
        cgroup.remove()

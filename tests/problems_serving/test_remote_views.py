"""The policy's process rebuilds the snapshots from plain numbers and a log of request-list
changes (`problems.serving.remote`): at every call they must equal the simulator's own
snapshots, per-request lists included, through admissions, completions, preemptions and
migrations."""

from __future__ import annotations

from array import array

from problems.serving.cluster import DISPATCH, Cluster, NewRequest
from problems.serving.remote import Mirror
from tests.problems_serving.conftest import small_workload, tight_config


def _same(local, remote) -> int:
    """Compare two snapshot tuples field by field; returns the request views compared."""
    assert len(local) == len(remote)
    compared = 0
    for mine, theirs in zip(local, remote, strict=True):
        assert tuple(mine[:-1]) == tuple(theirs[:-1]), (mine, theirs)
        assert [type(x) for x in mine[:-1]] == [type(x) for x in theirs[:-1]]
        for running in (True, False):
            want = mine.running_requests() if running else mine.waiting_requests()
            got = theirs.running_requests() if running else theirs.waiting_requests()
            assert want == got, (mine.index, running)
            compared += len(want)
    return compared


def test_mirrored_snapshots_equal_the_simulators_through_preemption_and_migration(baselines):
    config = tight_config()
    workload = small_workload(count=400, rate=25.0)
    policy = baselines["llumnix"]
    cluster = Cluster(workload, config, log=True)
    spec = config.spec
    mirror = Mirror(config.instances, spec.total_blocks, spec.block_tokens, spec.max_num_seqs)
    calls = cluster.calls(True)
    compared = steps = 0
    try:
        kind, rid = next(calls)
        while True:
            mirror.apply(array("q", array("q", cluster.take_log()).tobytes()))
            local = cluster.snapshots()
            remote = mirror.views(cluster.state())
            compared += _same(local, remote)
            steps += 1
            if kind == DISPATCH:
                req = cluster.req
                mirror.arrival[rid], mirror.prompt[rid] = req.arrival[rid], req.prompt[rid]
                answer = policy.dispatch(NewRequest(rid, req.arrival[rid], req.prompt[rid]),
                                         remote)
            else:
                answer = policy.migrate(remote)
            kind, rid = calls.send(answer)
    except StopIteration as stop:
        result = stop.value
    # The run went through the paths the log has to follow.
    assert sum(result.requests.preemptions) > 0
    assert result.migrations_done > 0 and steps > 400
    assert compared > 10_000

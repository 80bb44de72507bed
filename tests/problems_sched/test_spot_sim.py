"""The spot simulator against hand-computed runs (gap 600 s unless said otherwise)."""

from __future__ import annotations

import pytest

from problems._spot_sim import NONE, ON_DEMAND, SPOT
from problems._spot_sim.simulate import ActionError, run_multi, run_single
from problems._spot_sim.state import Scenario

TICK_H = 600 / 3600
SPOT_P, OD_P = 0.9731, 3.06


def scenario(*, overhead: int, work: int, ticks: int, gap: int = 600, regions: int = 1) -> Scenario:
    return Scenario(gap_s=gap, deadline_s=gap * ticks, task_s=work, restart_overhead_s=overhead,
                    on_demand_price=OD_P, spot_price=SPOT_P, num_regions=regions)


def spot_when_available(state):
    return SPOT if state.spot_available else NONE


def test_on_demand_only_pays_overhead_then_full_ticks():
    r = run_single(lambda s: ON_DEMAND, scenario(overhead=72, work=1800, ticks=10), bytes(10))
    # 528 + 600 + 600 >= 1800 after three ticks... 1728 < 1800, so four ticks.
    assert r.finish_tick == 4 and r.on_demand_ticks == 4 and r.spot_ticks == 0
    assert r.cost == pytest.approx(4 * TICK_H * OD_P)
    assert r.launches == 1 and r.preemptions == 0


def test_preemption_mid_overhead_loses_the_overhead_paid_so_far():
    # Overhead 1440 s = 2.4 ticks. Launch at 0, preempted at tick 2 before any progress;
    # relaunch at 3 pays the whole overhead again: ticks 3, 4 nothing, 5 gives 360, 6 and 7 600.
    seen = {}

    def policy(state):
        seen[state.tick] = (state.cluster, state.last_cluster, state.preempted,
                            state.overhead_left_s, state.work_done_s)
        return spot_when_available(state)

    available = bytes([1, 1, 0, 1, 1, 1, 1, 1, 1, 1])
    r = run_single(policy, scenario(overhead=1440, work=1200, ticks=10), available, guard=False)
    assert seen[1] == (SPOT, SPOT, False, 840, 0)
    assert seen[2] == (NONE, SPOT, True, 0, 0)
    assert seen[6] == (SPOT, SPOT, False, 0, 360)
    assert r.finish_tick == 8
    assert r.spot_ticks == 7 and r.on_demand_ticks == 0
    assert r.launches == 2 and r.preemptions == 1
    assert r.cost == pytest.approx(7 * TICK_H * SPOT_P)


def test_an_infeasible_deadline_is_reported_as_a_miss():
    # 3000 s of work plus a 720 s launch cannot fit in five ticks, even on on-demand from tick 0.
    r = run_single(lambda s: NONE, scenario(overhead=720, work=3000, ticks=5), bytes(5))
    assert r.missed and r.finish_tick == -1
    assert r.on_demand_ticks == 5 and r.guard_overrides == 5


def test_guard_forces_on_demand_just_in_time():
    # Always NONE: the guard fires once ceil((1800 + 600) / 600) = 4 >= ticks left, i.e. tick 6;
    # tick 6 pays the overhead and ticks 7-9 do the work: done exactly at the deadline.
    r = run_single(lambda s: NONE, scenario(overhead=600, work=1800, ticks=10), bytes(10))
    assert r.finish_tick == 10 and r.guard_overrides == 4
    assert r.on_demand_ticks == 4 and r.cost == pytest.approx(4 * TICK_H * OD_P)


def test_guard_keeps_a_working_spot_cluster():
    # Launch spot at tick 0 (overhead paid during it); from tick 1 the guard is active and the
    # policy asks for on-demand, but a working spot is kept: 3 more spot ticks finish the job.
    def policy(s):
        return (SPOT if s.tick == 0 else ON_DEMAND)
    r = run_single(policy, scenario(overhead=600, work=1800, ticks=5), bytes([1] * 5))
    assert r.finish_tick == 4 and r.spot_ticks == 4 and r.on_demand_ticks == 0
    assert r.guard_overrides == 3


def test_guard_after_a_preemption_switches_to_on_demand_and_meets_the_deadline():
    available = bytes([1, 1, 0, 1, 1, 1])
    r = run_single(spot_when_available, scenario(overhead=600, work=1800, ticks=6), available)
    assert r.finish_tick == 6 and not r.missed
    # Ticks 3-5: spot is available again but is not a working cluster, so on-demand it is.
    assert (r.spot_ticks, r.on_demand_ticks, r.guard_overrides) == (2, 3, 3)


def test_spot_requested_where_unavailable_runs_as_none():
    r = run_single(lambda s: SPOT, scenario(overhead=0, work=600, ticks=3), bytes([0, 1, 1]),
                   guard=False)
    assert r.unavailable_spot_requests == 1 and r.finish_tick == 2 and r.spot_ticks == 1


@pytest.mark.parametrize("bad", ["SPOT", 3, -1, None, True, 1.0, (SPOT, 0)])
def test_single_region_rejects_invalid_actions(bad):
    with pytest.raises(ActionError):
        run_single(lambda s: bad, scenario(overhead=0, work=600, ticks=3), bytes(3))


def test_the_policy_sees_only_the_past_and_cannot_change_the_run():
    available = bytes([1, 0, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1])
    problems = []

    def nosy(state):
        if len(state.spot_history) != state.tick + 1:
            problems.append("history length")
        if state.spot_history[-1] != available[state.tick]:
            problems.append("history value")
        for slot in ("_hist",):
            for row in getattr(state, slot):
                if len(row) > state.tick + 1:
                    problems.append("future reachable")
        with pytest.raises(AttributeError):
            state.work_done_s = 10**9
        state._done = 10**9          # writing the published copy changes nothing
        return spot_when_available(state)

    scn = scenario(overhead=600, work=3000, ticks=12)
    honest = run_single(spot_when_available, scn, available)
    r = run_single(nosy, scn, available)
    assert problems == []
    assert r == honest


# --- many regions ---------------------------------------------------------------------------

def two_regions(avail0, avail1, price0, price1, ticks):
    return ((bytes(avail0), bytes(avail1)),
            (tuple([price0] * ticks), tuple([price1] * ticks)))


def follow_spot(state):
    if state.spot_available:
        return SPOT
    for r in range(state.num_regions):
        if state.spot_available_in(r):
            return (SPOT, r)
    return NONE


def test_switching_to_a_region_with_spot_launches_there_at_its_price():
    avail, prices = two_regions([0] * 8, [1] * 8, 1.0, 2.0, 8)
    r = run_multi(follow_spot, scenario(overhead=600, work=1200, ticks=8, regions=2), avail, prices,
                  guard=False)
    assert r.finish_tick == 3 and r.region_switches == 1 and r.launches == 1
    assert r.cost == pytest.approx(3 * TICK_H * 2.0)


def test_moving_a_running_cluster_relaunches_it_and_pays_the_overhead():
    avail, prices = two_regions([1] * 8, [1] * 8, 2.0, 1.0, 8)
    def policy(s):
        return (SPOT if s.tick == 0 else (SPOT, 1))
    # overhead 300: tick 0 in region 0 gives 300, the move at tick 1 gives 300 again,
    # then 600 per tick: 300 + 300 + 600 + 600 >= 1500 after four ticks.
    r = run_multi(policy, scenario(overhead=300, work=1500, ticks=8, regions=2), avail, prices,
                  guard=False)
    assert r.finish_tick == 4 and r.launches == 2 and r.region_switches == 1
    assert r.cost == pytest.approx(TICK_H * 2.0 + 3 * TICK_H * 1.0)


def test_moving_while_idle_is_free_and_the_state_reports_the_region():
    avail, prices = two_regions([1] * 8, [1] * 8, 2.0, 1.0, 8)
    regions = []

    def policy(state):
        regions.append(state.region)
        if state.tick == 0:
            return (NONE, 1)
        return SPOT

    r = run_multi(policy, scenario(overhead=0, work=1200, ticks=8, regions=2), avail, prices,
                  guard=False)
    assert regions == [0, 1, 1]
    assert r.finish_tick == 3 and r.cost == pytest.approx(2 * TICK_H * 1.0)


def test_multi_region_state_shows_every_region_now_but_no_future():
    avail = (bytes([1, 0, 1, 0]), bytes([0, 0, 1, 1]))
    prices = ((1.0, 1.1, 1.2, 1.3), (2.0, 2.1, 2.2, 2.3))
    seen = []

    def policy(state):
        seen.append((state.spot_available_in(0), state.spot_available_in(1),
                     state.spot_price_in(1), state.spot_history_in(1)))
        return NONE

    run_multi(policy, scenario(overhead=0, work=600, ticks=4, regions=2), avail, prices,
              guard=False)
    assert seen[2] == (True, True, 2.2, bytes([0, 0, 1]))
    assert len(seen) == 4


@pytest.mark.parametrize("bad", [(SPOT, 2), (SPOT, -1), [SPOT, 0], (SPOT,), ("SPOT", 0), (SPOT, 1.0), 7])
def test_multi_region_rejects_invalid_actions(bad):
    avail, prices = two_regions([1] * 3, [1] * 3, 1.0, 1.0, 3)
    with pytest.raises(ActionError):
        run_multi(lambda s: bad, scenario(overhead=0, work=600, ticks=3, regions=2), avail, prices)


def test_multi_region_guard_overrides_a_move():
    # Guard active from tick 0 (4 ticks needed of 4): a requested move is refused.
    avail, prices = two_regions([0] * 4, [1] * 4, 1.0, 1.0, 4)
    r = run_multi(lambda s: (SPOT, 1), scenario(overhead=600, work=1800, ticks=4, regions=2),
                  avail, prices)
    assert r.region_switches == 0 and r.on_demand_ticks == 4 and r.finish_tick == 4

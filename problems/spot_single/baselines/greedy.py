"""Spot scheduling under a deadline, one region ("Can't Be Late", NSDI '24).

Each tick (600 s) `Policy.decide(state)` picks NONE, SPOT or ON_DEMAND for that tick. SPOT
runs only while available; a spot cluster is preempted when spot becomes unavailable. Every
launch (a change of cluster) costs `restart_overhead_s` of billed time without progress. The
job needs `task_s` seconds of progress before `deadline_s`. Spot costs $0.9731/h, on-demand
$3.06/h. The environment forces ON_DEMAND once the slack can no longer absorb a restart, so
deadlines are safe; the goal is the lowest cost.

`state` (read-only): tick, gap_s, elapsed_s, deadline_s, time_left_s, task_s, work_done_s,
work_left_s, restart_overhead_s, overhead_left_s, cluster, last_cluster, preempted,
spot_available, spot_history (bytes, 1 = available, ticks 0..tick), spot_price,
on_demand_price. `scenario` (given to __init__): gap_s, deadline_s, task_s,
restart_overhead_s, on_demand_price, spot_price.
"""

NONE, SPOT, ON_DEMAND = 0, 1, 2


# EVOLVE-BLOCK-START
class Policy:
    """Greedy: take spot whenever it is available, otherwise wait; fall back to on-demand
    only when the remaining slack could no longer absorb one more restart."""

    def __init__(self, scenario):
        self.gap = scenario.gap_s
        self.overhead = scenario.restart_overhead_s

    def decide(self, state):
        if state.work_left_s <= 0:
            return NONE
        ticks_left = state.time_left_s // self.gap
        ticks_needed = -(-(state.work_left_s + 2 * self.overhead) // self.gap)
        if ticks_needed >= ticks_left:
            return ON_DEMAND
        if state.spot_available:
            return SPOT
        return NONE
# EVOLVE-BLOCK-END

"""Spot scheduling under a deadline, one region ("Can't Be Late", NSDI '24).

The ADRS Leaderboard's initial program for this problem, written from its published description
(our README, "Baselines"): it gives their published avg_cost 119.03 (score 28) on their grid.

`state` (read-only): tick, gap_s, elapsed_s, deadline_s, time_left_s, task_s, work_done_s,
work_left_s, restart_overhead_s, overhead_left_s, cluster, last_cluster, preempted,
spot_available, spot_history, spot_price, on_demand_price.
"""

NONE, SPOT, ON_DEMAND = 0, 1, 2


# EVOLVE-BLOCK-START
class Policy:
    """Spot when available, else wait; once one restart no longer fits in the slack, stay on a
    running spot cluster while spot lasts and otherwise take on-demand; once even the current
    cluster's remaining restart does not fit, on-demand."""

    def __init__(self, scenario):
        self.gap = scenario.gap_s
        self.overhead = scenario.restart_overhead_s

    def decide(self, state):
        if state.work_left_s <= 0:
            return NONE
        left = state.time_left_s // self.gap
        need_one = -(-(state.work_left_s + self.overhead) // self.gap)
        need_two = -(-(state.work_left_s + 2 * self.overhead) // self.gap)
        if need_one >= left:
            return ON_DEMAND
        if need_two >= left:
            if state.last_cluster == SPOT and state.spot_available:
                return SPOT
            return ON_DEMAND
        return SPOT if state.spot_available else NONE
# EVOLVE-BLOCK-END

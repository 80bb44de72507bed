"""Spot scheduling under a deadline across several regions.

The ADRS Leaderboard's initial program for this problem, written from its behaviour: the
single-region greedy rule in the current region, and when spot is unavailable there, wait and
move to the next region in turn (it looks at no other region's availability). Under the
leaderboard's rules (`evaluate(..., rules="leaderboard")`) it costs their published 82.19.

`state` (read-only): tick, gap_s, elapsed_s, deadline_s, time_left_s, task_s, work_done_s,
work_left_s, restart_overhead_s, overhead_left_s, cluster, last_cluster, preempted, region,
num_regions, spot_available (current region), spot_price (current region),
spot_available_in(r), spot_price_in(r), spot_prices, spot_history / spot_history_in(r)
(bytes, 1 = available, ticks 0..tick), on_demand_price. `scenario` (given to __init__):
gap_s, deadline_s, task_s, restart_overhead_s, on_demand_price, num_regions.
"""

NONE, SPOT, ON_DEMAND = 0, 1, 2


# EVOLVE-BLOCK-START
class Policy:
    """On-demand once one restart no longer fits in the slack; with room for one restart but
    not two, stay on a running spot cluster while spot lasts, else on-demand; otherwise spot
    where it is, else wait and move to the next region."""

    def __init__(self, scenario):
        self.gap = scenario.gap_s
        self.overhead = scenario.restart_overhead_s
        self.regions = scenario.num_regions

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
        if state.spot_available:
            return SPOT
        return (NONE, (state.region + 1) % self.regions)
# EVOLVE-BLOCK-END

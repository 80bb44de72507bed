"""Spot scheduling under a deadline across several regions.

Each tick (195 s) `Policy.decide(state)` returns an action, NONE, SPOT or ON_DEMAND, to run in
the current region, or a pair (action, region) to move first. SPOT runs only where spot is
available; a spot cluster is preempted when its region loses spot. Every launch (a change of
cluster, or moving while running) costs `restart_overhead_s` of billed time without progress;
moving while idle is free. Spot is billed at its region's current price, on-demand at
$3.06/h. The job needs `task_s` seconds of progress before `deadline_s`. The environment
forces ON_DEMAND once the slack can no longer absorb a restart; the goal is the lowest cost.

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
    """Greedy: run spot wherever it is available (moving to the next region that has it),
    otherwise wait; fall back to on-demand when the slack could no longer absorb a restart."""

    def __init__(self, scenario):
        self.gap = scenario.gap_s
        self.overhead = scenario.restart_overhead_s
        self.regions = scenario.num_regions

    def decide(self, state):
        if state.work_left_s <= 0:
            return NONE
        ticks_left = state.time_left_s // self.gap
        ticks_needed = -(-(state.work_left_s + 2 * self.overhead) // self.gap)
        if ticks_needed >= ticks_left:
            return ON_DEMAND
        if state.spot_available:
            return SPOT
        for step in range(1, self.regions):
            region = (state.region + step) % self.regions
            if state.spot_available_in(region):
                return (SPOT, region)
        return NONE
# EVOLVE-BLOCK-END

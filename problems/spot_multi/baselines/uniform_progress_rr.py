"""Baseline: Uniform Progress ("Can't Be Late", NSDI '24) with round-robin region switching.

The single-region rules (safety net, hysteresis on on-demand, take spot whenever available,
catch up on on-demand when behind the uniform-progress line ep(t) = t * C0 / R0, else wait);
when the current region has no spot, the next region in round-robin order that has spot now
is taken instead.
"""

NONE, SPOT, ON_DEMAND = 0, 1, 2


class Policy:
    def __init__(self, scenario):
        self.c0 = scenario.task_s
        self.r0 = scenario.deadline_s
        self.d = scenario.restart_overhead_s
        self.gap = scenario.gap_s
        self.regions = scenario.num_regions

    def expected_progress(self, t):
        return t * self.c0 / self.r0

    def next_region_with_spot(self, state):
        for step in range(1, self.regions):
            region = (state.region + step) % self.regions
            if state.spot_available_in(region):
                return region
        return None

    def decide(self, state):
        work_left = state.work_left_s
        if work_left <= 0:
            return NONE
        if -(-(work_left + 2 * self.d) // self.gap) >= state.time_left_s // self.gap:
            return ON_DEMAND
        t = state.elapsed_s
        done = state.work_done_s
        if state.cluster == ON_DEMAND and self.expected_progress(t + 2 * self.d) > done:
            return ON_DEMAND
        if state.spot_available:
            return SPOT
        region = self.next_region_with_spot(state)
        if region is not None:
            return (SPOT, region)
        if self.expected_progress(t) > done:
            return ON_DEMAND
        return NONE

"""Baseline: Uniform Progress, the policy of "Can't Be Late" (Wu et al., NSDI '24), written
from the paper's rules. C0 = total work, R0 = deadline, d = restart overhead,
cp(t) = work done, ep(t) = t * C0 / R0 (progress a uniform spread asks for):
  1. Thrifty: once the work is done, release everything.
  2. Safety net: when R(t) < C(t) + 2d (tick-aligned), run on-demand to the end.
  3. Hysteresis: while on on-demand, stay there until cp(t) >= ep(t + 2d).
  4. Taking risks / exploitation: use spot whenever it is available (and keep it until
     it is preempted).
  5. Uniform progress: without spot, catch up on on-demand when cp(t) < ep(t), else wait.
"""

NONE, SPOT, ON_DEMAND = 0, 1, 2


class Policy:
    def __init__(self, scenario):
        self.c0 = scenario.task_s
        self.r0 = scenario.deadline_s
        self.d = scenario.restart_overhead_s
        self.gap = scenario.gap_s

    def expected_progress(self, t):
        return t * self.c0 / self.r0

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
        if self.expected_progress(t) > done:
            return ON_DEMAND
        return NONE

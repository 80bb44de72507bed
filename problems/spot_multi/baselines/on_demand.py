"""Baseline: on-demand only, in the starting region."""

NONE, SPOT, ON_DEMAND = 0, 1, 2


class Policy:
    def __init__(self, scenario):
        pass

    def decide(self, state):
        return ON_DEMAND if state.work_left_s > 0 else NONE

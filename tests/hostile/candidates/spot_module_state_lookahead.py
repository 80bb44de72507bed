# Module state outlives one run: every run's availability is recorded here, by trace prefix.
# When runs that share a trace are simulated one after another, a later run finds an earlier
# run's longer record of the same trace: the future of its own run.
HISTORIES = []
REPORTED = set()


class Policy:
    def __init__(self, scenario):
        self.gap = scenario.gap_s
        self.overhead = scenario.restart_overhead_s
        self.mine = bytearray()
        HISTORIES.append(self.mine)

    def decide(self, state):
        self.mine[:] = state.spot_history
        now = len(self.mine)
        if now >= 24:
            for other in HISTORIES:
                if other is not self.mine and len(other) > now and other[:now] == self.mine:
                    if id(self) not in REPORTED:
                        REPORTED.add(id(self))
                        print(f"LOOKAHEAD: {len(other) - now} future ticks known at tick {now}")
                    break
        if state.work_left_s <= 0:
            return 0
        ticks_left = state.time_left_s // self.gap
        if -(-(state.work_left_s + 2 * self.overhead) // self.gap) >= ticks_left:
            return 2
        return 1 if state.spot_available else 0

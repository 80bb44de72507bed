"""What a spot policy sees: the fixed scenario and a per-tick state view.

The simulator keeps its own truth in local variables and only *publishes* a copy into the state
object each tick, so a policy that writes to the state (or to private slots) changes nothing.
Public attributes are read-only properties. Times are seconds, prices $/hour.
"""

from __future__ import annotations

from dataclasses import dataclass

from problems._spot_sim import ACTION_NAMES


@dataclass(frozen=True, slots=True)
class Scenario:
    """Fixed for one run; handed to `Policy(scenario)`."""

    gap_s: int                 # length of a tick
    deadline_s: int            # the job must finish by this time
    task_s: int                # total work (progress) the job needs
    restart_overhead_s: int    # each launch costs this much time before progress resumes
    on_demand_price: float     # $/h
    spot_price: float          # $/h (one region; in many regions the price at tick 0 of region 0)
    num_regions: int = 1

    @property
    def deadline_ticks(self) -> int:
        return self.deadline_s // self.gap_s


class SpotState:
    """The state at the start of a tick in one region; the decision applies to this tick.

    It holds only the past and the present: the availability seen so far is appended tick by
    tick by the simulator, so the future of the trace is not reachable from here.
    """

    __slots__ = ("_scn", "_hist", "_tick", "_done", "_oh", "_cluster", "_last", "_avail",
                 "_region", "_preempted")

    def __init__(self, scenario: Scenario, num_regions: int = 1) -> None:
        self._scn = scenario
        self._hist = [bytearray() for _ in range(num_regions)]
        self._tick = 0
        self._done = 0
        self._oh = 0
        self._cluster = 0
        self._last = 0
        self._avail = 0
        self._region = 0
        self._preempted = False

    # --- time -------------------------------------------------------------------------------
    @property
    def tick(self) -> int:
        """Index of the current tick (0-based)."""
        return self._tick

    @property
    def gap_s(self) -> int:
        return self._scn.gap_s

    @property
    def elapsed_s(self) -> int:
        return self._tick * self._scn.gap_s

    @property
    def deadline_s(self) -> int:
        return self._scn.deadline_s

    @property
    def time_left_s(self) -> int:
        """Seconds until the deadline."""
        return self._scn.deadline_s - self._tick * self._scn.gap_s

    # --- work -------------------------------------------------------------------------------
    @property
    def task_s(self) -> int:
        return self._scn.task_s

    @property
    def work_done_s(self) -> int:
        return self._done

    @property
    def work_left_s(self) -> int:
        return self._scn.task_s - self._done

    @property
    def restart_overhead_s(self) -> int:
        return self._scn.restart_overhead_s

    @property
    def overhead_left_s(self) -> int:
        """Restart overhead still to be paid by the current cluster (0 when none runs)."""
        return self._oh

    # --- cluster ----------------------------------------------------------------------------
    @property
    def cluster(self) -> int:
        """The cluster running now (after any preemption at this tick): NONE, SPOT or ON_DEMAND."""
        return self._cluster

    @property
    def last_cluster(self) -> int:
        """The cluster that ran during the previous tick."""
        return self._last

    @property
    def preempted(self) -> bool:
        """True when the spot cluster of the previous tick was taken away at this tick."""
        return self._preempted

    # --- spot market ------------------------------------------------------------------------
    @property
    def spot_available(self) -> bool:
        """Whether spot can run in the current region during this tick."""
        return bool(self._avail)

    @property
    def spot_history(self) -> bytes:
        """Availability of the current region for ticks 0..tick (1 = available)."""
        return bytes(self._hist[self._region])

    @property
    def spot_price(self) -> float:
        """Spot $/h in the current region now."""
        return self._scn.spot_price

    @property
    def on_demand_price(self) -> float:
        return self._scn.on_demand_price

    @property
    def region(self) -> int:
        return self._region

    @property
    def num_regions(self) -> int:
        return len(self._hist)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(tick={self._tick}, done={self._done}s/{self._scn.task_s}s, "
                f"cluster={ACTION_NAMES[self._cluster]}, region={self._region}, "
                f"spot_available={bool(self._avail)}, overhead_left={self._oh}s)")


class MultiSpotState(SpotState):
    """Adds what a multi-region policy sees: every region's availability and price now."""

    __slots__ = ("_avail_now", "_price_now")

    def __init__(self, scenario: Scenario, num_regions: int) -> None:
        super().__init__(scenario, num_regions)
        self._avail_now: bytes = bytes(num_regions)
        self._price_now: tuple[float, ...] = (0.0,) * num_regions

    @property
    def spot_price(self) -> float:
        """Spot $/h in the current region now."""
        return self._price_now[self._region]

    def spot_available_in(self, region: int) -> bool:
        """Whether spot can run in `region` during this tick."""
        return bool(self._avail_now[region])

    def spot_price_in(self, region: int) -> float:
        """Spot $/h in `region` now."""
        return self._price_now[region]

    @property
    def spot_prices(self) -> tuple[float, ...]:
        """Spot $/h of every region now."""
        return self._price_now

    def spot_history_in(self, region: int) -> bytes:
        """Availability of `region` for ticks 0..tick (1 = available)."""
        return bytes(self._hist[region])

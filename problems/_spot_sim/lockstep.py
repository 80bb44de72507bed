"""Run many single-region spot runs against a candidate in another process, in lockstep.

Every run advances one tick per step, and one message carries the decisions of every run
still going (`candidate.batch`): the cost per decision stays near a local call's, and since all
runs are at the same tick, runs that share a trace never let the candidate see one's future
through another (module state included). The tick logic is `simulate.run_single`'s, split
around the decision; the results are the same `RunResult`s.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from evaluators.harness_api import Built, Candidate, CandidateError
from problems._spot_sim.simulate import ActionError, RunResult, _coerce_action
from problems._spot_sim.state import Scenario

NONE_, SPOT_, OD_ = 0, 1, 2


class _Run:
    """One run's truth, kept by the judge."""

    __slots__ = ("scn", "available", "ticks", "k", "done", "oh", "cluster", "last", "a",
                 "n_spot", "n_od", "launches", "preemptions", "bad_spot", "overrides",
                 "finish", "over")

    def __init__(self, scenario: Scenario, available: bytes):
        self.scn, self.available = scenario, available
        self.ticks = scenario.deadline_ticks
        if len(available) < self.ticks:
            raise ValueError(f"trace has {len(available)} ticks, the deadline needs "
                             f"{self.ticks}")
        self.k = self.done = self.oh = self.cluster = self.last = self.a = 0
        self.n_spot = self.n_od = self.launches = self.preemptions = 0
        self.bad_spot = self.overrides = 0
        self.finish = -1
        self.over = self.ticks == 0

    def observe(self) -> list[Any]:
        """Start tick k: preemption, then what the policy sees."""
        self.a = a = self.available[self.k]
        self.last = self.cluster
        preempted = self.cluster == SPOT_ and not a
        if preempted:
            self.cluster = NONE_
            self.oh = 0
            self.preemptions += 1
        return [self.k, self.done, self.oh, self.cluster, self.last, a, preempted]

    def apply(self, req: Any) -> None:
        """Finish tick k with the policy's decision."""
        if type(req) is not int or req > 2 or req < 0:
            req = _coerce_action(req)
        scn, k, a = self.scn, self.k, self.a
        gap, d, work = scn.gap_s, scn.restart_overhead_s, scn.task_s
        self.k += 1
        self.over = self.k >= self.ticks
        if req == SPOT_ and not a:
            req = NONE_
            self.bad_spot += 1
        if (work - self.done + d + gap - 1) // gap >= self.ticks - k:
            forced = SPOT_ if (self.cluster == SPOT_ and self.oh == 0) else OD_
            if forced != req:
                self.overrides += 1
                req = forced
        if req != self.cluster:
            self.cluster = req
            if req == NONE_:
                self.oh = 0
                return
            self.oh = d
            self.launches += 1
        elif self.cluster == NONE_:
            return
        if self.cluster == SPOT_:
            self.n_spot += 1
        else:
            self.n_od += 1
        if self.oh >= gap:
            self.oh -= gap
            return
        self.done += gap - self.oh
        self.oh = 0
        if self.done >= work:
            self.finish = k + 1
            self.over = True

    def result(self) -> RunResult:
        hours = self.scn.gap_s / 3600.0
        cost = (self.n_spot * hours * self.scn.spot_price
                + self.n_od * hours * self.scn.on_demand_price)
        return RunResult(cost, self.finish, self.n_spot, self.n_od, self.launches,
                         self.preemptions, self.bad_spot, self.overrides)


def _scenario(scn: Scenario) -> Built:
    return Built("problems._spot_sim.state:Scenario", scn.gap_s, scn.deadline_s, scn.task_s,
                 scn.restart_overhead_s, scn.on_demand_price, scn.spot_price, scn.num_regions)


def run_lockstep(candidate: Candidate, runs: Sequence[Any]) -> list[RunResult]:
    """Every run (`.scenario`, `.available`) with a fresh `Policy(scenario)` of the candidate's;
    raises CandidateError (the candidate failed) or ActionError (naming the run)."""
    truths = [_Run(run.scenario, run.available) for run in runs]
    runners = candidate.keep(
        [Built("problems._spot_sim.remote:Runner",
               Built("program:Policy", _scenario(run.scenario)), _scenario(run.scenario))
         for run in runs], kind="Policy")
    active = [i for i, t in enumerate(truths) if not t.over]
    while active:
        calls = [(runners[i], "step", truths[i].observe()) for i in active]
        try:
            actions = candidate.batch(calls)
        except CandidateError as exc:
            index = getattr(exc, "index", None)
            if index is None:
                raise
            verb = "raised " if exc.kind == "crash" else ""
            raise CandidateError(exc.kind, f"run {runs[active[index]].key}: the policy "
                                           f"{verb}{exc.detail}") from None
        for i, action in zip(active, actions, strict=True):
            try:
                truths[i].apply(action)
            except ActionError as exc:
                raise ActionError(f"run {runs[i].key}: {exc}") from None
        active = [i for i in active if not truths[i].over]
    return [t.result() for t in truths]

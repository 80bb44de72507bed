"""Run many single-region spot runs against a candidate in another process, in lockstep.

Every run advances one tick per step, and one message carries the decisions of every run
still going (a `Fleet` of runners in the candidate's process, `problems._spot_sim.remote`):
the cost per decision stays near a local call's, and since all runs are at the same tick, runs
that share a trace never let the candidate see one's future through another (module state
included). The judge keeps every run's truth in arrays and applies `simulate.run_single`'s tick
logic to all of them at once; the results are the same `RunResult`s.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from evaluators.harness_api import Built, Candidate, CandidateError
from problems._spot_sim.simulate import ActionError, RunResult, _coerce_action
from problems._spot_sim.state import Scenario

NONE_, SPOT_, OD_ = 0, 1, 2


def _scenario(scn: Scenario) -> Built:
    return Built("problems._spot_sim.state:Scenario", scn.gap_s, scn.deadline_s, scn.task_s,
                 scn.restart_overhead_s, scn.on_demand_price, scn.spot_price, scn.num_regions)


def _actions(raw: Any, which: np.ndarray, runs: Sequence[Any]) -> np.ndarray:
    """The decisions as an int array; ActionError naming the first run whose decision is not
    NONE (0), SPOT (1) or ON_DEMAND (2)."""
    if isinstance(raw, list) and len(raw) == len(which) and all(type(x) is int for x in raw):
        out = np.array(raw, dtype=np.int64)
        if out.size == 0 or (out.min() >= 0 and out.max() <= 2):
            return out
    if not isinstance(raw, list) or len(raw) != len(which):
        raise ActionError(f"the candidate sent {type(raw).__name__} for {len(which)} decisions")
    for i, value in zip(which.tolist(), raw, strict=True):
        try:
            _coerce_action(value)
        except ActionError as exc:
            raise ActionError(f"run {runs[i].key}: {exc}") from None
    return np.array([_coerce_action(v) for v in raw], dtype=np.int64)


def _which_run(fleet: Any, runs: Sequence[Any], error: CandidateError) -> str:
    """'run KEY ' for the run whose policy failed (the candidate's word: only for the message),
    or '' when the candidate cannot say (it ended)."""
    if getattr(error, "detail", None) is None:
        return ""
    try:
        index = fleet.failed_run()
    except CandidateError:
        return ""
    return f"run {runs[index].key} " if type(index) is int and 0 <= index < len(runs) else ""


def run_lockstep(candidate: Candidate, runs: Sequence[Any]) -> list[RunResult]:
    """Every run (`.scenario`, `.available`) with a fresh `Policy(scenario)` of the candidate's;
    raises CandidateError (the candidate failed) or ActionError (naming the run)."""
    n = len(runs)
    scns = [run.scenario for run in runs]
    ticks = np.array([s.deadline_ticks for s in scns], dtype=np.int64)
    for run, t in zip(runs, ticks.tolist(), strict=True):
        if len(run.available) < t:
            raise ValueError(f"trace has {len(run.available)} ticks, the deadline needs {t}")
    width = int(ticks.max()) if n else 0
    avail = np.zeros((n, width), dtype=np.int64)
    for i, run in enumerate(runs):
        avail[i, :ticks[i]] = np.frombuffer(bytes(run.available[:ticks[i]]), dtype=np.uint8)
    gap = np.array([s.gap_s for s in scns], dtype=np.int64)
    over = np.array([s.restart_overhead_s for s in scns], dtype=np.int64)
    work = np.array([s.task_s for s in scns], dtype=np.int64)
    zeros = lambda: np.zeros(n, dtype=np.int64)  # noqa: E731
    done, oh, cluster, finish = zeros(), zeros(), zeros(), zeros() - 1
    n_spot, n_od, launches, preemptions, bad_spot, overrides = (zeros() for _ in range(6))
    fleet = candidate.keep([Built("problems._spot_sim.remote:Fleet", [
        Built("problems._spot_sim.remote:Runner", Built("program:Policy", _scenario(s)),
              _scenario(s)) for s in scns])], kind="Policy")[0]
    active = np.flatnonzero(ticks > 0)
    k = 0
    while active.size:
        i = active
        a = avail[i, k]
        last = cluster[i]
        pre = (last == SPOT_) & (a == 0)
        cl = np.where(pre, NONE_, last)
        o = np.where(pre, 0, oh[i])
        preemptions[i] += pre
        try:
            raw = fleet.step(i.astype(np.int32), k, done[i], o, cl, last, a, pre)
        except CandidateError as exc:
            detail = getattr(exc, "detail", None) or str(exc)
            if exc.kind == "crash":
                detail = f"the policy raised {detail}"
            raise CandidateError(exc.kind, f"{_which_run(fleet, runs, exc)}at tick {k}: "
                                           f"{detail}") from None
        req = _actions(raw, i, runs)
        bad = (req == SPOT_) & (a == 0)
        req = np.where(bad, NONE_, req)
        bad_spot[i] += bad
        d, g, w, dn = over[i], gap[i], work[i], done[i]
        guard = (w - dn + d + g - 1) // g >= ticks[i] - k
        forced = np.where((cl == SPOT_) & (o == 0), SPOT_, OD_)
        overrides[i] += guard & (forced != req)
        req = np.where(guard, forced, req)
        change = req != cl
        launch = change & (req != NONE_)
        o = np.where(change & (req == NONE_), 0, np.where(launch, d, o))
        launches[i] += launch
        cl = np.where(change, req, cl)
        bill = cl != NONE_
        n_spot[i] += bill & (cl == SPOT_)
        n_od[i] += bill & (cl == OD_)
        pay = bill & (o >= g)
        progress = bill & ~pay
        o = np.where(pay, o - g, o)
        dn = np.where(progress, dn + g - o, dn)
        o = np.where(progress, 0, o)
        finished = progress & (dn >= w)
        finish[i[finished]] = k + 1
        done[i], oh[i], cluster[i] = dn, o, cl
        k += 1
        active = i[~finished & (ticks[i] > k)]
    results = []
    for j, s in enumerate(scns):
        hours = s.gap_s / 3600.0
        cost = int(n_spot[j]) * hours * s.spot_price + int(n_od[j]) * hours * s.on_demand_price
        results.append(RunResult(cost, int(finish[j]), int(n_spot[j]), int(n_od[j]),
                                 int(launches[j]), int(preemptions[j]), int(bad_spot[j]),
                                 int(overrides[j])))
    return results

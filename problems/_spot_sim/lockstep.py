"""Run many single-region spot runs against a candidate in another process, in lockstep.

Every run advances one tick per step, and one message carries the decisions of every run
still going (a `Fleet` in the candidate's process, `problems._spot_sim.remote`): the cost per
decision stays near a local call's, and since all runs are at the same tick, runs that share a
trace never let the candidate see one's future through another (module state included). The
judge keeps every run's truth in arrays and applies `simulate.run_single`'s tick logic to all
of them at once; the results are the same `RunResult`s. Each step sends only what changed in
the states the candidate holds (most fields change rarely) and gets the decisions back as
bytes, so a step's messages stay small and the candidate's per-run work is one call.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from evaluators.harness_api import Built, Candidate, CandidateError
from problems._spot_sim.remote import FIELDS
from problems._spot_sim.simulate import ActionError, RunResult, _coerce_action
from problems._spot_sim.state import Scenario

NONE_, SPOT_, OD_ = 0, 1, 2
_SCENARIO_FIELDS = tuple(f.name for f in dataclasses.fields(Scenario))


def _actions(raw: Any, rows: np.ndarray, runs: Sequence[Any]) -> np.ndarray:
    """The decisions as an int array; ActionError naming the first run whose decision is not
    NONE (0), SPOT (1) or ON_DEMAND (2)."""
    if type(raw) is bytes and len(raw) == len(rows) and not raw.translate(None, b"\0\1\2"):
        return np.frombuffer(raw, dtype=np.uint8).astype(np.int64)
    if isinstance(raw, list) and len(raw) == len(rows) and all(type(x) is int for x in raw):
        out = np.array(raw, dtype=np.int64)
        if out.size == 0 or (out.min() >= 0 and out.max() <= 2):
            return out
    if not isinstance(raw, (bytes, list)) or len(raw) != len(rows):
        raise ActionError(f"the candidate sent {type(raw).__name__} for {len(rows)} decisions")
    for i, value in zip(rows.tolist(), raw, strict=True):
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


def tick_failure(fleet: Any, runs: Sequence[Any], error: CandidateError,
                 tick: int) -> CandidateError:
    """The candidate's failure during a lockstep tick, told with the run and the tick (both
    spot locksteps raise it in place of the channel's own error)."""
    detail = getattr(error, "detail", None) or str(error)
    if error.kind == "crash":
        detail = f"the policy raised {detail}"
    return CandidateError(error.kind, f"{_which_run(fleet, runs, error)}at tick {tick}: "
                                      f"{detail}")


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
    avail = np.zeros((n, width), dtype=np.uint8)
    for i, run in enumerate(runs):
        avail[i, :ticks[i]] = np.frombuffer(bytes(run.available[:ticks[i]]), dtype=np.uint8)
    finish = np.full(n, -1, dtype=np.int64)
    # Per run: spot ticks, on-demand ticks, launches, preemptions, SPOT asked where
    # unavailable, guard overrides (RunResult's order).
    totals = np.zeros((6, n), dtype=np.int64)
    # Every run's Policy, made in the candidate's process from the scenario's plain fields.
    fleet = candidate.keep([Built("problems._spot_sim.remote:Fleet", [
        [getattr(s, f) for f in _SCENARIO_FIELDS] for s in scns])], kind="Policy")[0]

    # Every array below holds the runs still going, in run order; compacted as runs end.
    # (Plain ufuncs and take only: np.where, 2-d nonzero and fancy indexing cost several
    # times more, and this loop runs once per tick.)
    rows = np.flatnonzero(ticks > 0)
    ended = np.flatnonzero(ticks <= 0)
    av = np.ascontiguousarray(avail[rows].T)  # tick by run: a tick's column is contiguous
    t_end = ticks[rows]
    g, d, w = (np.array([getattr(s, f) for s in scns], dtype=np.int64)[rows]
               for f in ("gap_s", "restart_overhead_s", "task_s"))
    # run_single's guard, ceil((w - done + d) / g) >= t_end - k, is done < w + d -
    # (t_end - 1 - k) * g: `limit` holds that bound, and grows by g each tick.
    limit = w + d - (t_end - 1) * g
    done, oh, cluster = (np.zeros(rows.size, dtype=np.int64) for _ in range(3))
    count = np.zeros((6, rows.size), dtype=np.int64)
    # What the candidate's states show, field by field (remote.FIELDS' order: the progress
    # is sent whole), and this tick.
    shown = np.zeros((len(FIELDS), rows.size), dtype=np.int64)
    now = np.empty_like(shown)
    column = np.zeros(n, dtype=np.uint8)
    k = 0
    while rows.size:
        if k == 0 or ended.size:
            tiled = np.tile(rows.astype(np.int32), len(FIELDS))  # the run of each cell of now
            bounds = np.arange(1, len(FIELDS) + 1) * rows.size
        a = av[k]
        unavailable = a == 0
        last = cluster
        pre = (last == SPOT_) & unavailable
        if pre.any():
            running = ~pre
            cl, o = last * running, oh * running
            count[3] += pre
        else:
            cl, o = last, oh
        now[0], now[1], now[2], now[3], now[4] = o, cl, last, a, pre
        changed = np.flatnonzero(now != shown)
        ends = np.searchsorted(changed, bounds).tolist()
        who, values = tiled.take(changed), now.take(changed).astype(np.int32)
        now, shown = shown, now
        column[rows] = a
        try:
            raw = fleet.step(k, ended.astype(np.int32).tobytes(),
                             done.astype(np.int32).tobytes(), ends, who.tobytes(),
                             values.tobytes(), column.tobytes())
        except CandidateError as exc:
            raise tick_failure(fleet, runs, exc, k) from None
        req = _actions(raw, rows, runs)
        bad = (req == SPOT_) & unavailable
        if bad.any():
            req = req * ~bad  # runs as NONE
            count[4] += bad
        guard = done < limit
        if guard.any():
            forced = OD_ - ((cl == SPOT_) & (o == 0))  # a working spot cluster stays SPOT_
            count[5] += guard & (forced != req)
            req = np.where(guard, forced, req)
        change = req != cl
        if change.any():
            launch = change & (req != NONE_)
            o = np.where(change, d * launch, o)  # a launch owes the overhead; NONE owes none
            count[2] += launch
        cluster = req
        bill = cluster != NONE_
        count[0] += cluster == SPOT_
        count[1] += cluster == OD_
        # A billed tick pays the overhead still due first and makes progress with the rest.
        paid = np.minimum(o, g) * bill
        done = done + (g - paid) * bill
        oh = o - paid
        limit = limit + g
        finished = done >= w
        k += 1
        over = finished | (t_end <= k)
        if not over.any():
            ended = ended[:0]
            continue
        finish[rows[finished]] = k
        ended = rows[over]
        totals[:, ended] = count[:, over]
        column[ended] = 0
        keep = ~over
        rows, t_end, g, d, w, limit, done, oh, cluster = (
            x[keep] for x in (rows, t_end, g, d, w, limit, done, oh, cluster))
        av, count, shown = av[:, keep], count[:, keep], shown[:, keep]
        now = np.empty_like(shown)
    results = []
    for j, s in enumerate(scns):
        hours = s.gap_s / 3600.0
        n_spot, n_od, launches, preemptions, bad_spot, overrides = totals[:, j].tolist()
        cost = n_spot * hours * s.spot_price + n_od * hours * s.on_demand_price
        results.append(RunResult(cost, int(finish[j]), n_spot, n_od, launches, preemptions,
                                 bad_spot, overrides))
    return results

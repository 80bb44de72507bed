"""Run a policy in another process over many scenarios at once (the judge's side).

Each scenario is a `Cluster` simulated here, as a generator of the policy's calls
(`Cluster.calls`). Every step sends one message with the next call of every scenario that may
advance (`remote.Fleet.step` in the candidate's process): the time, the snapshots' numbers
and the request-list changes since that scenario's last call, plus the request for a
dispatch. The answers come back as plain data and are checked by the cluster, as before.

No two scenarios of one trace share a policy process (`processes_for`: the i-th load level of
every trace is in the i-th process, the candidate's own first, the others forked apart by the
trusted host, `Candidate.isolated`, each importing the program afresh), so a policy's module
state holds one load level of a trace only. The load levels of one trace are the same
requests compressed in time: in one process, a request already finished at a lighter level
(its output length then known) while still running at a heavier one, or an arrival one level
has reached and another has not, would tell the policy its future. The message of one step
carries every process's calls, and they run side by side.

Scenarios that share a trace still dispatch each request in the same message: no scenario is
sent request j before every other scenario of its trace is at request j too. Migrate calls
between two arrivals go first (they show no new request); a scenario waits at its next
arrival until the others of its trace reach theirs.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from typing import Any

from evaluators.harness_api import Built, Candidate, CandidateError
from problems.serving.cluster import DISPATCH, Cluster, ClusterConfig, PolicyError, SimResult
from problems.serving.remote import NOT_DATA
from problems.serving.scenarios import Scenario


class _Run:
    """One scenario's simulation, paused at the policy's next call (`pending`); `process` and
    `slot`: which policy process simulates it, and its mirror there."""

    __slots__ = ("index", "scenario", "cluster", "calls", "pending", "result", "process",
                 "slot")

    def __init__(self, index: int, scenario: Scenario, config: ClusterConfig, migrate: bool):
        self.index = index
        self.scenario = scenario
        self.cluster = Cluster(scenario.workload, config, log=True)
        self.calls = self.cluster.calls(migrate)
        self.result: SimResult | None = None
        self.pending: tuple[int, int] | None = None
        self.process = self.slot = 0
        self._next(None, first=True)

    def _next(self, answer: Any, *, first: bool = False) -> None:
        try:
            self.pending = next(self.calls) if first else self.calls.send(answer)
        except StopIteration as stop:
            self.pending, self.result = None, stop.value

    def item(self) -> list[Any]:
        kind, rid = self.pending
        cluster = self.cluster
        log = array("q", cluster.take_log()).tobytes()
        ints, floats = cluster.state()
        if kind == DISPATCH:
            req = cluster.req
            return [self.slot, rid, req.arrival[rid], req.prompt[rid], log, ints, floats]
        return [self.slot, -1, 0.0, 0, log, ints, floats]

    def answer(self, value: Any) -> None:
        if type(value) is dict and NOT_DATA in value:  # the candidate's side says so
            kind, rid = self.pending
            call = f"dispatch of request {rid}" if kind == DISPATCH else "migrate"
            raise PolicyError(f"{self.scenario.key}: {call} at t={self.cluster.now:.3f}s "
                              f"returned something that is not plain data "
                              f"({str(value[NOT_DATA])[:300]})")
        try:
            self._next(value)
        except PolicyError as exc:
            raise PolicyError(f"{self.scenario.key}: {exc}") from None


def _ready(group: list[_Run]) -> list[_Run]:
    """The runs of one trace that may take their next call now: every pending migrate call;
    the dispatches only once no run of the trace has a migrate call before its arrival."""
    pending = [run for run in group if run.pending is not None]
    migrating = [run for run in pending if run.pending[0] != DISPATCH]
    return migrating or pending


def processes_for(scenarios: Sequence[Scenario]) -> list[list[int]]:
    """Which scenarios share a policy process: the i-th load level of every trace shares the
    i-th process, so no two scenarios of one trace (the same requests) share one. Scenarios of
    different traces have no request in common, and fewer processes make a cheaper step."""
    seen: dict[str, int] = {}
    out: list[list[int]] = []
    for index, scenario in enumerate(scenarios):
        position = seen.get(scenario.trace, 0)
        seen[scenario.trace] = position + 1
        if position == len(out):
            out.append([])
        out[position].append(index)
    return out


def run_lockstep(candidate: Candidate, scenarios: Sequence[Scenario],
                 config: ClusterConfig) -> tuple[list[SimResult], int]:
    """Every scenario with the candidate's `dispatch` (and `migrate`, if it has one); returns
    the results and the number of messages. The candidate's own process serves the first
    scenarios (`processes_for`; the judge only imported the program there, so call this once
    per candidate), processes apart (`Candidate.isolated`) the others. Raises CandidateError
    (the candidate failed: an exception, an answer that is not data, no answer) or
    PolicyError (an invalid answer), naming the scenario."""
    spec = config.spec
    shape = [config.instances, spec.total_blocks, spec.block_tokens, spec.max_num_seqs]
    shares = processes_for(scenarios)
    processes = [candidate, *candidate.isolated(len(shares) - 1)] if shares else []
    fleets = [process.keep([Built("problems.serving.remote:Fleet", [shape] * len(share))],
                           kind="policy")[0] for process, share in zip(processes, shares,
                                                                       strict=True)]
    abouts = candidate.batch([(fleet, "describe", ()) for fleet in fleets])
    for about in abouts:
        if type(about) is not dict or type(about.get("migrates")) is not bool:
            raise PolicyError(f"the candidate sent {type(about).__name__} to describe its "
                              f"functions")
        if about.get("problem") is not None:
            raise PolicyError(str(about["problem"])[:300])
    migrate = bool(abouts) and abouts[0]["migrates"]
    runs = [_Run(i, s, config, migrate) for i, s in enumerate(scenarios)]
    for process, share in enumerate(shares):
        for slot, index in enumerate(share):
            runs[index].process, runs[index].slot = process, slot
    groups: dict[str, list[_Run]] = {}
    for run in runs:
        groups.setdefault(run.scenario.trace, []).append(run)
    steps = 0
    while True:
        chosen = [run for group in groups.values() for run in _ready(group)]
        if not chosen:
            break
        by_process: dict[int, list[_Run]] = {}
        for run in chosen:
            by_process.setdefault(run.process, []).append(run)
        asked = list(by_process.values())
        calls = [(fleets[share[0].process], "step", ([run.item() for run in share],))
                 for share in asked]
        try:
            answers = candidate.batch(calls)
        except CandidateError as exc:
            raise CandidateError(exc.kind, _where(fleets, asked, exc)) from None
        steps += 1
        for share, values in zip(asked, answers, strict=True):
            if type(values) is not list or len(values) != len(share):
                raise PolicyError(f"the candidate sent {type(values).__name__} instead of "
                                  f"{len(share)} answers")
            for run, value in zip(share, values, strict=True):
                run.answer(value)
    return [run.result for run in runs], steps


def _where(fleets: list[Any], asked: list[list[_Run]], error: CandidateError) -> str:
    """The failure, naming the scenario and the call: the failed process's, and which of its
    scenarios when the candidate can say (its word is used for the message only)."""
    index = getattr(error, "index", None)
    share = asked[index] if type(index) is int and 0 <= index < len(asked) else None
    if share is None and len(asked) == 1:
        share = asked[0]
    detail = getattr(error, "detail", None)
    run = share[0] if share is not None and len(share) == 1 else None
    if share is not None and run is None and detail is not None \
            and error.kind != "invalid-output":
        try:
            slot = fleets[share[0].process].call("failed")
        except CandidateError:
            slot = None
        run = next((r for r in share if type(slot) is int and r.slot == slot), None)
    if run is None:
        named = share if share is not None else [r for s in asked for r in s]
        return f"{', '.join(r.scenario.key for r in named)}: {error}"
    kind, rid = run.pending
    t = run.cluster.now
    call = f"dispatch of request {rid}" if kind == DISPATCH else "migrate"
    what = detail if detail is not None else str(error)
    if error.kind == "crash" and detail is not None:
        what = f"the policy raised {detail}"
    return f"{run.scenario.key}: {call} at t={t:.3f}s: {what}"

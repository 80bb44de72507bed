"""Run a policy in another process over many scenarios at once (the judge's side).

Each scenario is a `Cluster` simulated here, as a generator of the policy's calls
(`Cluster.calls`). Every step sends one message with the next call of every scenario that may
advance (`remote.Fleet.step` in the candidate's process): the time, the snapshots' numbers
and the request-list changes since that scenario's last call, plus the request for a
dispatch. The answers come back as plain data and are checked by the cluster, as before.

Every scenario has a candidate process of its own (`Candidate.isolated`: forked by the
trusted host, each importing the program afresh), so a policy's module state holds one
scenario only. The load levels of one trace are the same requests compressed in time: in one
process, a request already finished at a lighter level (its output length then known) while
still running at a heavier one, or an arrival one level has reached and another has not,
would tell the policy its future. The message of one step carries every process's call, and
they run side by side.

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
    """One scenario's simulation, paused at the policy's next call (`pending`)."""

    __slots__ = ("index", "scenario", "cluster", "calls", "pending", "result")

    def __init__(self, index: int, scenario: Scenario, config: ClusterConfig, migrate: bool):
        self.index = index
        self.scenario = scenario
        self.cluster = Cluster(scenario.workload, config, log=True)
        self.calls = self.cluster.calls(migrate)
        self.result: SimResult | None = None
        self.pending: tuple[int, int] | None = None
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
            return [0, rid, req.arrival[rid], req.prompt[rid], log, ints, floats]
        return [0, -1, 0.0, 0, log, ints, floats]

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


def run_lockstep(candidate: Candidate, scenarios: Sequence[Scenario],
                 config: ClusterConfig) -> tuple[list[SimResult], int]:
    """Every scenario with the candidate's `dispatch` (and `migrate`, if it has one); returns
    the results and the number of messages. Raises CandidateError (the candidate failed: an
    exception, an answer that is not data, no answer) or PolicyError (an invalid answer),
    naming the scenario."""
    spec = config.spec
    shape = [config.instances, spec.total_blocks, spec.block_tokens, spec.max_num_seqs]
    processes = candidate.isolated(len(scenarios))
    fleets = [process.keep([Built("problems.serving.remote:Fleet", [shape])],
                           kind="policy")[0] for process in processes]
    abouts = candidate.batch([(fleet, "describe", ()) for fleet in fleets])
    for about in abouts:
        if type(about) is not dict or type(about.get("migrates")) is not bool:
            raise PolicyError(f"the candidate sent {type(about).__name__} to describe its "
                              f"functions")
        if about.get("problem") is not None:
            raise PolicyError(str(about["problem"])[:300])
    migrate = abouts[0]["migrates"]
    runs = [_Run(i, s, config, migrate) for i, s in enumerate(scenarios)]
    groups: dict[str, list[_Run]] = {}
    for run in runs:
        groups.setdefault(run.scenario.trace, []).append(run)
    steps = 0
    while True:
        chosen = [run for group in groups.values() for run in _ready(group)]
        if not chosen:
            break
        calls = [(fleets[run.index], "step", ([run.item()],)) for run in chosen]
        try:
            answers = candidate.batch(calls)
        except CandidateError as exc:
            raise CandidateError(exc.kind, _where(chosen, exc)) from None
        steps += 1
        for run, value in zip(chosen, answers, strict=True):
            if type(value) is not list or len(value) != 1:
                raise PolicyError(f"{run.scenario.key}: the candidate sent "
                                  f"{type(value).__name__} instead of one answer")
            run.answer(value[0])
    return [run.result for run in runs], steps


def _where(chosen: list[_Run], error: CandidateError) -> str:
    """The failure, naming the scenario and the call (its process is the one that failed)."""
    index = getattr(error, "index", None)
    run = chosen[index] if type(index) is int and 0 <= index < len(chosen) else None
    if run is None:
        if len(chosen) != 1:
            return f"{', '.join(r.scenario.key for r in chosen)}: {error}"
        run = chosen[0]
    kind, rid = run.pending
    t = run.cluster.now
    call = f"dispatch of request {rid}" if kind == DISPATCH else "migrate"
    detail = getattr(error, "detail", None)
    what = detail if detail is not None else str(error)
    if error.kind == "crash" and detail is not None:
        what = f"the policy raised {detail}"
    return f"{run.scenario.key}: {call} at t={t:.3f}s: {what}"

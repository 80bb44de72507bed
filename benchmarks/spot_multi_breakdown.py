"""Where a spot_multi full stage's time goes on the judge/candidate path, measured in one run.

Usage: python benchmarks/spot_multi_breakdown.py [--repeat N] [PROGRAM.py]

Pinned to one core (as `benchmarks/evaluators.py`); every figure is the fastest of `--repeat`
(default 5), CPU seconds of every process unless it says wall:
- old: the policy in this process (`run_multi` per run), the path before the split;
- both sides in one process: the judge's lockstep driving the candidate's `MultiFleet` by
  direct calls, every message encoded and decoded as on the channel (the work of the judge
  and of the candidate's side, without processes or sockets);
- a candidate's start and end: `local_candidate` started, the program imported, closed;
- the fleet's first message: `keep` of the stage's `MultiFleet` in a fresh candidate (the
  candidate's side imports its helper modules);
- one round trip per tick, empty: as many requests as the stage has ticks, to a program
  function that returns a step's worth of decision bytes, judge -> worker and back (the
  host passed the judge its end of the worker's channel: it is not in between);
- the same frames between two processes directly (a forked echo on a socket pair): what a
  round trip costs without the host in between;
- new: `evaluate(program, "full")`, everything together.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import resource
import socket
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from evaluators import channel  # noqa: E402
from evaluators.harness_api import Built, local_candidate  # noqa: E402

HERE = REPO / "problems" / "spot_multi"
ECHO = "def echo(*message):\n    return bytes(34)\n"


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _cpu() -> float:
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(
        resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _measure(fn, repeat: int) -> tuple[float, float]:
    """(fastest wall seconds, fastest CPU seconds) of `fn()` over `repeat` calls."""
    walls, cpus = [], []
    for _ in range(repeat):
        start, cpu = time.perf_counter(), _cpu()
        fn()
        walls.append(time.perf_counter() - start)
        cpus.append(_cpu() - cpu)
    return min(walls), min(cpus)


class _InProcessFleet:
    """The fleet as the candidate's process makes it, called directly; what crosses is encoded
    and decoded as the channel does."""

    steps = 0   # of the last stage: its number of ticks, one round trip each

    def __init__(self, built: Built):
        values = channel.decode(channel.encode({"v": [built]}), records="attributes")["v"]
        self.fleet = values[0]
        _InProcessFleet.steps = 0

    def step(self, *message):
        _InProcessFleet.steps += 1
        args = channel.decode(channel.encode(list(message)), records="attributes")
        return channel.decode(channel.encode(self.fleet.step(*args)))


class _InProcessCandidate:
    cpu_s = 0.0

    def keep(self, values, kind=""):
        return [_InProcessFleet(v) for v in values]


def _direct_round_trips(message: bytes, count: int) -> None:
    ours, theirs = socket.socketpair()
    pid = os.fork()
    if pid == 0:
        ours.close()
        try:
            while True:
                channel.recv_frame(theirs, max_bytes=1 << 20)
                channel.send_frame(theirs, channel.encode({"ok": bytes(34)}))
        except channel.ChannelError:
            os._exit(0)
    theirs.close()
    for _ in range(count):
        channel.send_frame(ours, message)
        channel.decode(channel.recv_frame(ours, max_bytes=1 << 20,
                                          deadline=time.monotonic() + 10))
    ours.close()
    os.waitpid(pid, 0)


def main(argv: list[str]) -> None:
    repeat = 5
    if argv[:1] == ["--repeat"]:
        repeat, argv = max(1, int(argv[1])), argv[2:]
    program = Path(argv[0]) if argv else HERE / "initial.py"
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    ev = _load(HERE / "evaluate.py", "_breakdown_eval")
    runs, stage_plan = ev.RUNS["full"], ev.PLANS["full"]
    from problems._spot_sim.lockstep_multi import _SCENARIO_FIELDS, run_lockstep_multi
    from problems._spot_sim.simulate import multi_ticks

    policy_module = _load(program, channel.PROGRAM_MODULE)
    sys.modules[channel.PROGRAM_MODULE] = policy_module   # the fleet finds Policy here
    rows = []

    def old() -> None:
        for run in runs:
            ev._run_one(policy_module.Policy(run.scenario).decide, run)

    def one_process() -> None:
        run_lockstep_multi(_InProcessCandidate(), runs, multi_ticks, stage_plan)

    one_process()
    ticks = _InProcessFleet.steps

    def start_and_end() -> None:
        with local_candidate(program) as candidate:
            candidate.load()

    built = Built("problems._spot_sim.remote_multi:MultiFleet",
                  [[getattr(run.scenario, f) for f in _SCENARIO_FIELDS] for run in runs],
                  stage_plan.of_run, stage_plan.num_streams)
    fleet_cost: list[float] = []

    def first_message() -> None:
        with local_candidate(program) as candidate:
            candidate.load()
            start = time.perf_counter()
            candidate.keep([built])
            fleet_cost.append(time.perf_counter() - start)

    step = [0, b"", [1] * len(runs), [], stage_plan.columns[0], b"", b""]
    with tempfile.TemporaryDirectory() as folder:
        echo = Path(folder) / "echo.py"
        echo.write_text(ECHO)

        def empty_round_trips() -> None:
            with local_candidate(echo) as candidate:
                candidate.load()
                for _ in range(ticks):
                    candidate.call("echo", *step)

        def empty_start() -> None:
            with local_candidate(echo) as candidate:
                candidate.load()

        message = channel.encode({"op": "call", "name": "echo", "args": step, "kwargs": {}})
        rows.append(("old: the policy in the judge's process", *_measure(old, repeat)))
        rows.append(("both sides in one process, no channel", *_measure(one_process, repeat)))
        rows.append(("a candidate's start and end", *_measure(start_and_end, repeat)))
        _measure(first_message, repeat)
        rows.append(("the fleet's first message (wall)", min(fleet_cost), float("nan")))
        trips = _measure(empty_round_trips, repeat)
        start = _measure(empty_start, repeat)
        rows.append((f"{ticks} empty round trips, judge to worker", trips[0] - start[0],
                     trips[1] - start[1]))
        rows.append((f"{ticks} round trips between two processes",
                     *_measure(lambda: _direct_round_trips(message, ticks), repeat)))
    rows.append(("new: evaluate(program, 'full')",
                 *_measure(lambda: ev.evaluate(str(program), "full"), repeat)))
    print(f"{program.name}, full stage ({len(runs)} runs, {ticks} ticks), fastest of {repeat}; "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"{'':<44} {'wall s':>8} {'CPU s':>8}")
    for name, wall, cpu in rows:
        print(f"{name:<44} {wall:8.4f} {cpu:8.4f}")


if __name__ == "__main__":
    main(sys.argv[1:])

"""Attacks on the serving judge (issue 24). While the policy ran inside the evaluator's process
each of them worked (every test shows it again in this process: the in-process control); now
the simulator, the traces and the scores live in the judge's process and the policy sees only
what crosses the channel as plain data.

- Reaching the simulator through the collector or the frames: in one process it read all
  2,866 future arrivals of the quick stage and rewrote the latencies (-0.012 against round
  robin's -2.000, past the pooled bound's -0.165).
- Answers with behaviour: an instance index that lies to every comparison and whose finaliser
  rewrote the simulator's figures when the evaluator dropped it (-0.014).
- Module state across the load levels of one trace: run one after another, a dispatcher held
  the whole trace's prompts from an earlier level (7,147 future requests known at request 0
  of code@80%).
- Completions across the load levels of one trace: in one process, with each request sent to
  every level in the same message, the lighter level (ahead in time at the same request) shows
  requests finishing whose output lengths the heavier level has not reached yet: the policy
  learnt the output length of 257 of the 456 requests of two minutes of conv@95% while they
  still ran there (within 1 to 13 tokens). No two load levels of one trace share a process now.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json

import pytest

from evaluators.channel import Built
from evaluators.executors import LocalExecutor
from evaluators.judge_proxy import local_candidate
from evaluators.result import EvalResult
from evolve.problem.spec import load_problem
from problems.serving.cluster import DEFAULT_CONFIG, Cluster
from problems.serving.lockstep import _ready, _Run, run_lockstep
from problems.serving.scenarios import make_scenarios
from problems.serving.scoring import figures
from tests.sandbox_helpers import BEST_LEVEL, FIXTURES, HOSTILE, candidate

REPO = FIXTURES.parents[1]
SERVING = REPO / "problems" / "serving"
ROUND_ROBIN_QUICK = json.loads((SERVING / "references.json").read_text())[
    "quick"]["conv@80%"]["round_robin"]


def run(code: str, *, path: str = "warm") -> EvalResult:
    async def go() -> EvalResult:
        executor = LocalExecutor(max_parallel=1, isolation=BEST_LEVEL, warm_start=path == "warm")
        try:
            return await executor.evaluate(load_problem(SERVING), code, stages=["quick"])
        finally:
            await executor.aclose()

    return asyncio.run(go())


def _in_process(name: str, count: int = 300):
    """The attack with the policy in the simulator's process, as the old evaluator ran it."""
    spec = importlib.util.spec_from_file_location(f"_attack_{name}", HOSTILE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    from tests.problems_serving.conftest import small_workload
    workload = small_workload(count=count, rate=40.0)
    honest = figures(Cluster(workload).run(lambda r, v: r.id % len(v)))
    return honest, figures(Cluster(workload).run(module.dispatch))


def _one_process(policy, scenarios) -> None:
    """The lockstep as it ran before every scenario had a process of its own (the control):
    one policy process for all `scenarios` (one trace), each request in the same message."""
    spec = DEFAULT_CONFIG.spec
    shape = [DEFAULT_CONFIG.instances, spec.total_blocks, spec.block_tokens, spec.max_num_seqs]
    fleet = policy.keep([Built("problems.serving.remote:Fleet", [shape] * len(scenarios))])[0]
    migrate = fleet.call("describe")["migrates"]
    runs = [_Run(i, s, DEFAULT_CONFIG, migrate) for i, s in enumerate(scenarios)]
    while chosen := _ready(runs):
        items = [[run.index, *run.item()[1:]] for run in chosen]
        for run, answer in zip(chosen, fleet.call("step", items), strict=True):
            run.answer(answer)


def _assert_honest_round_robin(result: EvalResult) -> None:
    quick = result.stages[0]
    assert quick.valid, (result.failure, result.reason)
    m = quick.metrics
    # Exactly round robin's figures: nothing the policy did reached the simulator.
    assert m["ttft_p99[conv@80%]"] == ROUND_ROBIN_QUICK["ttft_p99"]
    assert m["e2e_mean[conv@80%]"] == ROUND_ROBIN_QUICK["e2e_mean"]
    assert quick.score == pytest.approx(-2.0, abs=1e-3)


@pytest.mark.parametrize("path", ["warm", "cold"])
def test_reaching_the_simulator_finds_nothing_to_read_or_rewrite(path):
    honest, tampered = _in_process("serving_reach_simulator")
    assert tampered.e2e_mean < honest.e2e_mean / 10   # in one process: latencies rewritten
    result = run(candidate("serving_reach_simulator"), path=path)
    _assert_honest_round_robin(result)
    stdout = result.stages[0].stdout
    assert "simulator objects found: 0; future arrivals readable: 0" in stdout, stdout


def test_answers_with_behaviour_cross_as_their_plain_values():
    spec = importlib.util.spec_from_file_location("_attack_behaving",
                                                  HOSTILE / "serving_behaving_answers.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    from tests.problems_serving.conftest import small_workload
    workload = small_workload(count=300, rate=40.0)
    result = Cluster(workload).run(module.dispatch)
    # In one process the finaliser ran inside the simulator and rewrote its output lengths.
    assert module.HITS[0] > 0 and set(result.requests.output) == {1}
    result = run(candidate("serving_behaving_answers"))
    # The lying index is sent as its genuine value (request id mod 16: round robin) and its
    # finaliser runs in the policy's own process, where there is no simulator.
    _assert_honest_round_robin(result)
    assert "finalisers that reached the simulator: 0" in result.stages[0].stdout


@pytest.mark.parametrize("migrates", [False, True])
def test_module_state_never_holds_the_future_of_another_load_level(capfd, tmp_path, migrates):
    # Two load levels of the same two minutes of the conversation trace: the same requests.
    scenarios = make_scenarios((("conv", 2.0, (0.6, 0.95)),))
    program = tmp_path / "policy.py"
    source = candidate("serving_module_state_lookahead")
    # With migrate (every 100 ms) the levels make different numbers of calls between two
    # arrivals: the less loaded one waits at each arrival for the other.
    program.write_text(source + ("\n\ndef migrate(instances):\n    return []\n"
                                 if migrates else ""))
    # One after another in one process (as the old evaluator ran them), the second level is
    # told the future.
    with local_candidate(program) as policy:
        for scenario in scenarios:
            _one_process(policy, [scenario])
    assert "LOOKAHEAD" in capfd.readouterr().out
    # Advanced together, each request goes to every level in the same message: nothing ahead.
    with local_candidate(program) as policy:
        results, steps = run_lockstep(policy, scenarios, DEFAULT_CONFIG)
    out = capfd.readouterr().out
    assert "LOOKAHEAD" not in out, out[:500]
    requests = len(scenarios[0].workload)
    assert all(r.requests.n == requests for r in results)
    assert steps > requests if migrates else steps == requests


def _learnt(out: str, scenarios) -> list[tuple[int, int, int]]:
    """The output lengths the policy says it knew while the request still ran: (request,
    claimed length, tokens generated then), each checked against the trace."""
    output = scenarios[0].workload.output
    learnt = []
    for line in out.splitlines():
        if line.startswith("FUTURE_OUTPUT "):
            rid, claimed, generated = map(int, line.split()[1:])
            # Genuine knowledge of the future: the request had not reached that length, and
            # the claim is within a few tokens of the trace's output length.
            assert generated < claimed <= output[rid] <= claimed + 16, line
            learnt.append((rid, claimed, generated))
    return learnt


@pytest.mark.parametrize("migrates", [False, True])
def test_a_lighter_level_never_tells_a_heavier_one_its_output_lengths(capfd, tmp_path,
                                                                      migrates):
    scenarios = make_scenarios((("conv", 2.0, (0.6, 0.95)),))
    assert [len(s.workload) for s in scenarios] == [456, 456]
    program = tmp_path / "policy.py"
    program.write_text(candidate("serving_completions_lookahead") + (
        "\n\ndef migrate(instances):\n    return []\n" if migrates else ""))
    # Control: both levels in one process, each request in the same message. At request j the
    # 60% level is further on in time, and the requests finished there tell the 95% level
    # how long its running ones will be.
    with local_candidate(program) as policy:
        _one_process(policy, scenarios)
    learnt = _learnt(capfd.readouterr().out, scenarios)
    assert len(learnt) > 150, len(learnt)
    # Each level in a process of its own: no completion seen anywhere but its own.
    with local_candidate(program) as policy:
        results, _ = run_lockstep(policy, scenarios, DEFAULT_CONFIG)
        assert policy.cpu_s > 0
    assert _learnt(capfd.readouterr().out, scenarios) == []
    assert all(r.requests.n == 456 for r in results)


@pytest.mark.slow
@pytest.mark.parametrize("path", ["warm", "cold"])
def test_the_sandboxed_full_stage_tells_no_level_another_levels_output_lengths(path):
    # The full stage in the sandbox (about 40 s each): the three load levels of each trace in
    # three policy processes (the i-th level of both traces in the i-th; the policy compares
    # only scenarios of one trace, by their prompts). In one process it learnt 257 output
    # lengths of two minutes of one trace (above).
    async def go() -> EvalResult:
        executor = LocalExecutor(max_parallel=1, isolation=BEST_LEVEL, warm_start=path == "warm")
        try:
            return await executor.evaluate(load_problem(SERVING),
                                           candidate("serving_completions_lookahead"))
        finally:
            await executor.aclose()

    result = asyncio.run(go())
    assert [s.stage for s in result.stages] == ["quick", "full"], (result.reason, result.stages[0].score)
    full = result.stages[1]
    assert full.valid, (full.failure, full.reason)
    assert "FUTURE_OUTPUT" not in full.stdout, full.stdout[:500]
    assert full.metrics["scenarios"] == 6


def test_a_failure_names_the_load_level_whose_policy_failed(tmp_path):
    scenarios = make_scenarios((("conv", 2.0, (0.6, 0.95)),))
    # Request 200 is in one message for both levels, 60% first; only the more loaded level
    # (arrivals closer together: request 200 comes before 7 s) fails on it.
    program = tmp_path / "policy.py"
    program.write_text("def dispatch(request, instances):\n"
                       "    if request.id == 200 and request.arrival_s < 7.0:\n"
                       "        raise RuntimeError('late')\n"
                       "    return request.id % len(instances)\n")
    from evaluators.validate import CandidateError
    with local_candidate(program) as policy, pytest.raises(CandidateError) as failed:
        run_lockstep(policy, scenarios, DEFAULT_CONFIG)
    message = str(failed.value)
    assert message.startswith("conv@95%: dispatch of request 200 at t="), message
    assert "the policy raised RuntimeError: late" in message

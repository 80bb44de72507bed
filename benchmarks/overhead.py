"""The framework's own cost per program: an instant scripted LLM and a trivial evaluator.

Usage: python benchmarks/overhead.py [--programs 60] [--in-flight 1 8 32] [--evaluations 2]

For each N (proposals in flight) it runs a real `run_session` (archive on disk, real sandbox,
real LLM client over HTTP to a scripted OpenAI-compatible server in *another* process) on the
`target` fixture problem, and prints programs per second and the CPU time of this process per
program (sandbox children and the server excluded: `getrusage(RUSAGE_SELF)`), from the loop's
start (initial program evaluated) to its stop, so one-off set-up is not counted.

Baselines measured in the same run, in the same process: the CPU of one bare LLM client call
and of one bare sandbox evaluation (`executor.evaluate`) as the controller starts it, and of one
archive write (a program with its LLM call). The controller's share ("controller ms/prog") is
the total minus the LLM client and the sandbox; the target is < 5 ms per program. The last
column also takes off the archive write, leaving the engine's own Python (sampling, prompts,
diffs, novelty, bookkeeping).
A second table does the same with the offline operators (no LLM client at all).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from evolve.config import load_config  # noqa: E402

FIXTURE = REPO / "tests" / "engine" / "fixtures" / "target"
MODEL = "openai/scripted"
TARGET_MS = 5.0

# The scripted server runs in its own process so that its CPU is not counted. Each reply moves
# the parent's VALUE by a random amount, so siblings are rarely duplicates.
SERVER = r"""
import random, re, sys
sys.path.insert(0, sys.argv[1])
from tests.support.llm_server import Reply, ScriptedLLMServer
VALUE = re.compile(r"^VALUE = (.+)$", re.M)
def respond(request):
    match = VALUE.search(request["messages"][-1]["content"])
    if match is None:
        return Reply("- keep going")
    old = float(match.group(1))
    step = random.random()
    return Reply(f"Move.\n<<<<<<< SEARCH\nVALUE = {old!r}\n=======\nVALUE = {old + step!r}\n>>>>>>> REPLACE\n")
with ScriptedLLMServer(respond) as server:
    print(server.base_url, flush=True)
    sys.stdin.read()
"""


def cpu_self() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def config_for(run_dir: Path, in_flight: int, evaluations: int, programs: int,
               base_url: str | None) -> object:
    data: dict = {
        "problem": str(FIXTURE), "seed": 1, "run_dir": str(run_dir),
        "concurrency": {"proposals": in_flight, "evaluations": evaluations},
        "budget": {"max_programs": programs},
        "mutation": {"mix": {"diff": 1.0}},
    }
    if base_url:
        data["operators"] = {"models": [{"name": MODEL, "api_base": base_url}]}
    else:
        data["operators"] = {"models": [], "use_offline": "auto"}
    return load_config(None, [], base=data)


def own_steps_cost(samples: int) -> float:
    """CPU seconds of the engine's own per-program steps for an LLM proposal: planning a
    parent's view, rendering the prompt with four inspirations, applying the diff, hashing,
    fingerprinting and diffing the child."""
    from evolve.config import PromptConfig
    from evolve.mutation import child_from_reply, unified_diff
    from evolve.novelty import code_hash, fingerprint
    from evolve.prompting import PromptBuilder
    from problems.spec import load_problem

    problem = load_problem(FIXTURE)
    builder = PromptBuilder(problem, PromptConfig(), 40_000)
    code = problem.initial_code()
    reply = "Move.\n<<<<<<< SEARCH\nVALUE = 1.0\n=======\nVALUE = 2.0\n>>>>>>> REPLACE\n"
    start = cpu_self()
    for i in range(samples):
        parent = builder.view(code, score=1.0, valid=True, label="p", metrics={"value": 1.0},
                              feedback="feedback", stdout="out", stderr="err")
        others = [builder.view(code, score=float(k), valid=True, label=f"i{k}") for k in range(4)]
        builder.mutation_messages("diff", parent, inspirations=others, scratchpad=["tip"])
        child = child_from_reply("diff", code, reply, 40_000)
        code_hash(child)
        fingerprint(child, 5)
        unified_diff(code, child + f"# {i}\n")
    return (cpu_self() - start) / samples


def archive_cost(samples: int) -> float:
    """CPU seconds of storing one program with one LLM call (the archive's own share)."""
    from db import Archive

    with tempfile.TemporaryDirectory(prefix="evolve-overhead-db-") as tmp, \
            Archive.open(Path(tmp) / "a.sqlite") as archive:
        run_id = archive.create_run(problem="p", config_toml="", seed=0, isolation="none")
        code = (FIXTURE / "initial.py").read_text()

        def one(i: int) -> None:
            call = archive.record_llm_call(run_id, model=MODEL, prompt="p" * 4000,
                                           response="r" * 300, tokens_in=1000, tokens_out=80,
                                           cost_usd=None, latency_s=0.01, error=None,
                                           purpose="mutation")
            archive.add_program(run_id, code=code + f"# {i}\n", parent_id=None, island=0,
                                generation=1, operator=MODEL, mutation_kind="diff",
                                status="evaluated", score=1.0, valid=True,
                                metrics={"value": 1.0}, feedback="ok", timings={"a": 1.0},
                                diff="d" * 300, proposal_key=f"0:{i}", llm_call_ids=[call])

        one(-1)
        start = cpu_self()
        for i in range(samples):
            one(i)
        return (cpu_self() - start) / samples


async def bare_costs(base_url: str, samples: int) -> tuple[float, float]:
    """CPU seconds of one bare LLM call and of one bare sandbox evaluation, in this process."""
    from evaluators.executors import make_executor
    from evolve.config import LLMConfig, ModelConfig
    from evolve.llm import LLMClient
    from problems.spec import load_problem

    problem = load_problem(FIXTURE)
    code = problem.initial_code()
    client = LLMClient([ModelConfig(name=MODEL, api_base=base_url)], LLMConfig())
    messages = [{"role": "system", "content": "x"},
                {"role": "user", "content": "VALUE = 1.0\n" + "context " * 400}]
    await client.complete(MODEL, messages)  # warm up (imports, connection)
    start = cpu_self()
    for _ in range(samples):
        await client.complete(MODEL, messages)
    llm = (cpu_self() - start) / samples
    config = load_config(None, [], base={"problem": str(FIXTURE)})
    executor = make_executor(config.sandbox, config.concurrency)
    await executor.evaluate(problem, code)
    start = cpu_self()
    for _ in range(samples):
        await executor.evaluate(problem, code)
    sandbox = (cpu_self() - start) / samples
    await executor.aclose()
    return llm, sandbox


def measure(in_flight: int, evaluations: int, programs: int, base_url: str | None) -> dict:
    from evolve.session import run_session

    with tempfile.TemporaryDirectory(prefix="evolve-overhead-") as tmp:
        run_dir = Path(tmp)
        config = config_for(run_dir, in_flight, evaluations, programs, base_url)
        marks: dict[str, tuple[float, float]] = {}

        def on_progress(snapshot: object) -> None:
            # From the start of the loop (initial program done) to its stop: per-program cost,
            # without the one-off set-up (imports, schema, executor start).
            marks[snapshot.event] = (cpu_self(), time.perf_counter())  # type: ignore[attr-defined]

        outcome = asyncio.run(run_session(config, run_dir, handle_signals=False,
                                          log=lambda _m: None, on_progress=on_progress))
        cpu = marks["stop"][0] - marks["start"][0]
        wall = marks["stop"][1] - marks["start"][1]
        from db import Archive

        with Archive.open(run_dir / "archive.sqlite") as archive:
            evaluated = archive.count_programs(outcome.run_id, status="evaluated") - 1
    return {"n": in_flight, "programs": outcome.programs, "evaluated": evaluated, "wall": wall,
            "cpu_ms": 1000 * cpu / max(1, outcome.programs),
            "evaluated_share": evaluated / max(1, outcome.programs)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--programs", type=int, default=60)
    parser.add_argument("--in-flight", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--evaluations", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--samples", type=int, default=40)
    args = parser.parse_args()
    os.environ.pop("OPENAI_API_KEY", None)

    server = subprocess.Popen([sys.executable, "-c", SERVER, str(REPO)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        base_url = server.stdout.readline().strip()
        llm_cpu, sandbox_cpu = asyncio.run(bare_costs(base_url, args.samples))
        store_cpu = archive_cost(args.samples)
        own_cpu = own_steps_cost(10 * args.samples)
        print(f"baselines in this process (CPU per call): LLM client {1000 * llm_cpu:.2f} ms, "
              f"sandbox evaluation (parent side) {1000 * sandbox_cpu:.2f} ms, archive write "
              f"(program + LLM call) {1000 * store_cpu:.2f} ms; the engine's own steps for "
              f"one LLM proposal (view, prompt, diff, hash, shingles) {1000 * own_cpu:.2f} ms")
        for label, url in (("scripted LLM", base_url), ("offline operators", None)):
            # A short unreported run first: modules imported lazily on first use (litellm's
            # cost paths, the scratchpad) must not be charged to the first measured N.
            measure(2, args.evaluations, 25, url)
            print(f"\n{label}: {args.programs} programs, M = {args.evaluations} evaluations")
            print(f"{'N':>4} {'programs/s':>11} {'evaluated':>10} {'CPU ms/prog':>12} "
                  f"{'controller ms/prog':>19} {'vs target':>10} {'without archive':>16}")
            for n in args.in_flight:
                row = measure(n, args.evaluations, args.programs, url)
                # Only evaluated programs cost a sandbox run; rejected ones cost no evaluation.
                outside = (llm_cpu if url else 0.0) + sandbox_cpu * row["evaluated_share"]
                controller = row["cpu_ms"] - 1000 * outside
                print(f"{n:>4} {row['programs'] / row['wall']:>11.2f} "
                      f"{row['evaluated']:>10d} {row['cpu_ms']:>12.2f} {controller:>19.2f} "
                      f"{controller / TARGET_MS:>9.2f}x {controller - 1000 * store_cpu:>16.2f}")
    finally:
        if server.stdin:
            server.stdin.close()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()

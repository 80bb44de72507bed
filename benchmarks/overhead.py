"""The framework's own CPU per program: an instant scripted LLM and a trivial evaluator.

Usage: python benchmarks/overhead.py [--programs 60] [--in-flight 1 8 32] [--repeats 3]
                                     [--evaluations 2] [--samples 40]

For each N (proposals in flight) it runs a real `run_session` (archive on disk, real sandbox,
real LLM client over HTTP to a scripted OpenAI-compatible server in *another* process) on the
`target` fixture problem: one unreported warm-up run, then `--repeats` measured runs, and
prints the median. CPU is this whole process (`getrusage(RUSAGE_SELF)`: every thread, no child),
from the loop's start (initial program evaluated) to its stop, so one-off set-up is not counted.

Two things the framework calls are measured alone in the same run and shown in their own,
labelled columns: litellm itself (a bare `litellm.acompletion` with the arguments our client
passes, times the calls the run made) and the sandbox's parent side (the sandbox threads that
start each child and read its output, times the programs evaluated; the children themselves
are never counted). Everything else is the framework's own cost ("framework ms/prog"): the
controller, the archive writes, prompt building, diff application, novelty, progress and our
LLM-client wrapper around litellm. Target: < 5 ms per program at every N, in both modes.

Noise: besides warm-up, repeats and medians, each framework figure is also shown as a ratio to
a floor measured in the same run: a bare asyncio loop storing the same rows with the sqlite3
module directly (the writes a program needs, and nothing else).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.overhead_baselines import (  # noqa: E402
    FIXTURE,
    MODEL,
    archive_cost,
    cpu_self,
    llm_costs,
    sandbox_cost,
    sqlite_floor,
)
from evolve.config import load_config  # noqa: E402

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


def measure(in_flight: int, evaluations: int, programs: int, base_url: str | None) -> dict:
    from evolve.session import run_session

    with tempfile.TemporaryDirectory(prefix="evolve-overhead-") as tmp:
        run_dir = Path(tmp)
        config = config_for(run_dir, in_flight, evaluations, programs, base_url)
        marks: dict[str, tuple[float, float]] = {}

        def on_progress(snapshot: object) -> None:
            # From the start of the loop (initial program done) to its stop: per-program cost,
            # without the one-off set-up (imports, schema, executor start).
            event = snapshot.event  # type: ignore[attr-defined]
            if event in ("start", "stop"):  # not on every program: getrusage costs CPU too
                marks[event] = (cpu_self(), time.perf_counter())

        outcome = asyncio.run(run_session(config, run_dir, handle_signals=False,
                                          log=lambda _m: None, on_progress=on_progress))
        cpu = marks["stop"][0] - marks["start"][0]
        wall = marks["stop"][1] - marks["start"][1]
        from db import Archive

        with Archive.open(run_dir / "archive.sqlite") as archive:
            evaluated = archive.count_programs(outcome.run_id, status="evaluated") - 1
            calls = archive.cost_summary(outcome.run_id).calls
    programs = max(1, outcome.programs)
    return {"programs": outcome.programs, "evaluated": evaluated, "rate": outcome.programs / wall,
            "cpu": cpu / programs, "calls": calls / programs, "evaluated_share": evaluated / programs}




def row_for(n: int, runs: list[dict], litellm_cpu: float, sandbox_cpu: float,
            floor: float) -> str:
    """One table line: medians over the repeats (the framework's range in brackets)."""
    own = sorted(1000 * (r["cpu"] - r["calls"] * litellm_cpu - r["evaluated_share"] * sandbox_cpu)
                 for r in runs)
    mid = statistics.median(own)
    total = statistics.median(1000 * r["cpu"] for r in runs)
    lite = statistics.median(1000 * r["calls"] * litellm_cpu for r in runs)
    sandbox = statistics.median(1000 * r["evaluated_share"] * sandbox_cpu for r in runs)
    rate = statistics.median(r["rate"] for r in runs)
    evaluated = statistics.median(r["evaluated"] for r in runs)
    return (f"{n:>4} {rate:>10.2f} {evaluated:>5.0f} {total:>9.2f} {lite:>8.2f} {sandbox:>8.2f} "
            f"{mid:>10.2f} [{own[0]:.2f}-{own[-1]:.2f}] {mid / TARGET_MS:>6.2f}x "
            f"{mid / (1000 * floor):>7.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--programs", type=int, default=60)
    parser.add_argument("--in-flight", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--evaluations", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--samples", type=int, default=40)
    args = parser.parse_args()
    os.environ.pop("OPENAI_API_KEY", None)

    server = subprocess.Popen([sys.executable, "-c", SERVER, str(REPO)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        base_url = server.stdout.readline().strip()
        litellm_cpu, client_cpu = asyncio.run(llm_costs(base_url, args.samples, args.repeats))
        sandbox_cpu = asyncio.run(sandbox_cost(args.samples, args.repeats))
        store_cpu = archive_cost(args.samples, args.repeats)
        floor = sqlite_floor(args.samples, args.repeats)
        own_cpu = own_steps_cost(10 * args.samples)
        print("same-run baselines, CPU of this process per call (median of "
              f"{args.repeats} batches of {args.samples}):")
        print(f"  litellm.acompletion alone          {1000 * litellm_cpu:7.2f} ms  (excluded: litellm's own)")
        print(f"  our LLMClient.complete             {1000 * client_cpu:7.2f} ms  "
              f"(our wrapper: {1000 * (client_cpu - litellm_cpu):+.2f} ms, counted as ours)")
        print(f"  sandbox evaluation, parent side    {1000 * sandbox_cpu:7.2f} ms  (excluded: the "
              f"sandbox's threads; its child processes are never counted)")
        print(f"  archive: program + its LLM call    {1000 * store_cpu:7.2f} ms  (ours)")
        print(f"  sqlite3 floor for the same rows    {1000 * floor:7.2f} ms  (bare asyncio loop)")
        print(f"  prompt + diff + hash + shingles    {1000 * own_cpu:7.2f} ms  (ours)")
        for label, url in (("scripted LLM", base_url), ("offline operators", None)):
            # A short unreported run first: modules imported lazily on first use (litellm's
            # cost paths, the scratchpad) must not be charged to the first measured N.
            measure(2, args.evaluations, 25, url)
            print(f"\n{label}: {args.programs} programs, M = {args.evaluations} evaluations, "
                  f"median of {args.repeats} runs")
            print(f"{'N':>4} {'programs/s':>10} {'evals':>5} {'total ms':>9} {'litellm':>8} "
                  f"{'sandbox':>8} {'framework ms/prog [range]':>25} {'target':>7} "
                  f"{'/floor':>8}")
            for n in args.in_flight:
                runs = [measure(n, args.evaluations, args.programs, url)
                        for _ in range(args.repeats)]
                print(row_for(n, runs, litellm_cpu if url else 0.0, sandbox_cpu, floor),
                      flush=True)
        print(f"\nframework = total - litellm - sandbox parent side; target < {TARGET_MS:g} ms "
              f"(the 'target' column is framework / {TARGET_MS:g} ms, below 1.00x meets it)")
    finally:
        if server.stdin:
            server.stdin.close()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()

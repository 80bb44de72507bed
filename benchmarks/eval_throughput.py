"""Evaluation throughput, warm interpreter against a fresh interpreter per stage (cold), in one run.

    python benchmarks/eval_throughput.py txn [--programs 40] [--repeats 3] [--parallel 2]
    python benchmarks/eval_throughput.py trivial [--programs 1000] [--repeats 1] [--skip-cold]

`txn`: programs per minute through the txn problem's stage (its only, quick stage: three
workloads of 100 transactions) with `--parallel` evaluations at once (2 = the 2 cores of the
target machine), the txn initial program and greedy baseline alternating. Cold and warm batches
alternate within each repeat; the warm interpreter's one-off start is timed apart.

`trivial`: a whole run (`run_session`: archive on disk, a real LLM client over HTTP to a scripted
OpenAI-compatible server in another process, the engine's `target` fixture problem) of
`--programs` programs, evaluated (a) sandboxed on the warm path, (b) sandboxed cold and (c) by an
in-process executor that calls the evaluator directly, without any sandbox or isolation. (c)
exists only in this benchmark, as the floor to compare against; it is never a user option.
Wall time from the first to the last program (the loop's start and stop), medians of repeats.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.overhead import SERVER  # noqa: E402
from benchmarks.overhead_baselines import FIXTURE, MODEL  # noqa: E402
from evaluators.cascade import run_cascade, select_stages, stage_result  # noqa: E402
from evaluators.executors import LocalExecutor  # noqa: E402
from evaluators.result import EvalResult  # noqa: E402
from evaluators.sandbox import SandboxOutcome  # noqa: E402
from evaluators.validate import validate_returned  # noqa: E402
from evolve.problem.spec import ProblemSpec, load_problem  # noqa: E402

TXN = REPO / "problems" / "txn"


# --- txn: programs per minute ----------------------------------------------------------------

async def _txn_batch(executor: LocalExecutor, problem: ProblemSpec, codes: list[str]) -> float:
    start = time.perf_counter()
    results = await asyncio.gather(*(executor.evaluate(problem, code) for code in codes))
    elapsed = time.perf_counter() - start
    bad = [r.reason for r in results if not r.valid]
    if bad:
        raise SystemExit(f"a txn evaluation failed: {bad[0]}")
    return len(codes) / elapsed * 60


def txn(args: argparse.Namespace) -> None:
    problem = load_problem(TXN)
    sources = [(TXN / "initial.py").read_text(), (TXN / "baselines" / "greedy.py").read_text()]
    codes = [sources[i % 2] + f"\n# program {i}\n" for i in range(args.programs)]

    async def go() -> dict[str, list[float]]:
        cold = LocalExecutor(max_parallel=args.parallel, warm_start=False)
        warm = LocalExecutor(max_parallel=args.parallel, warm_start=True)
        if warm._warm is None:
            raise SystemExit("no warm path here (it needs root)")
        rates: dict[str, list[float]] = {"cold": [], "warm": []}
        try:
            started = time.perf_counter()
            await warm.evaluate(problem, codes[0])  # starts the warm interpreter
            print(f"warm interpreter start + first evaluation: "
                  f"{time.perf_counter() - started:.2f} s (once per run, not counted)")
            await cold.evaluate(problem, codes[0])
            for repeat in range(args.repeats):
                order = [("cold", cold), ("warm", warm)]
                for name, executor in order if repeat % 2 == 0 else order[::-1]:
                    rates[name].append(await _txn_batch(executor, problem, codes))
        finally:
            await cold.aclose()
            await warm.aclose()
        return rates

    rates = asyncio.run(go())
    cold, warm = (statistics.median(rates[k]) for k in ("cold", "warm"))
    print(f"txn stage 'full': {args.programs} programs, {args.parallel} at once, median of "
          f"{args.repeats} (each: {', '.join(f'{r:.0f}' for r in rates['cold'])} cold; "
          f"{', '.join(f'{r:.0f}' for r in rates['warm'])} warm)")
    print(f"{'path':<6} {'programs/min':>13}")
    print(f"{'cold':<6} {cold:>13.1f}")
    print(f"{'warm':<6} {warm:>13.1f}")
    print(f"warm / cold = {warm / cold:.2f}x (target >= 1.5x)")


# --- trivial: a whole run against an in-process floor ---------------------------------------

class InProcessExecutor:
    """BENCHMARK ONLY: calls the problem's evaluator in this very process, with no sandbox, no
    limits and no isolation at all (what frameworks that evaluate in-process do). It is the
    floor the sandboxed paths are compared against, and never offered to users."""

    isolation = "none (in-process benchmark floor)"

    def __init__(self, problem: ProblemSpec):
        sys.path.insert(0, str(problem.root))
        path = problem.root / problem.config.problem.evaluator
        spec = importlib.util.spec_from_file_location("_inprocess_evaluator", path)
        assert spec is not None and spec.loader is not None
        self.module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(self.module)
        self.tmp = tempfile.TemporaryDirectory(prefix="evolve-inprocess-")

    async def evaluate(self, problem: ProblemSpec, code: str, *,
                       stages: Any = None) -> EvalResult:
        program = Path(self.tmp.name) / "program.py"
        program.write_text(code)

        async def run_stage(stage: Any) -> Any:
            start = time.perf_counter()
            value = self.module.evaluate(str(program), stage.name)
            result = validate_returned({"status": "returned", "value": value})
            outcome = SandboxOutcome(result, False, 0, "", "", 0, 0, time.perf_counter() - start,
                                     self.isolation)
            return stage_result(stage, outcome, stage.timeout_s)

        return await run_cascade(select_stages(problem, stages), run_stage)

    async def aclose(self) -> None:
        self.tmp.cleanup()


def _config(run_dir: Path, programs: int, base_url: str, evaluations: int) -> Any:
    from evolve.config import load_config

    return load_config(None, [], base={
        "problem": str(FIXTURE), "seed": 1, "run_dir": str(run_dir),
        "concurrency": {"proposals": 8, "evaluations": evaluations},
        "budget": {"max_programs": programs}, "mutation": {"mix": {"diff": 1.0}},
        "operators": {"models": [{"name": MODEL, "api_base": base_url}]}})


def _run_once(mode: str, programs: int, base_url: str, evaluations: int) -> tuple[float, int]:
    """(wall seconds from the loop's start to its stop, programs made) for one run."""
    from evolve.engine.session import run_session

    problem = load_problem(FIXTURE)
    with tempfile.TemporaryDirectory(prefix="evolve-throughput-") as tmp:
        run_dir = Path(tmp)
        marks: dict[str, float] = {}

        def on_progress(snapshot: Any) -> None:
            if snapshot.event in ("start", "stop"):
                marks[snapshot.event] = time.perf_counter()

        async def go() -> Any:
            if mode == "in-process":
                executor: Any = InProcessExecutor(problem)
            else:
                executor = LocalExecutor(max_parallel=evaluations, warm_start=mode == "warm")
                if mode == "warm" and executor._warm is None:
                    raise SystemExit("no warm path here (it needs root)")
            try:
                return await run_session(_config(run_dir, programs, base_url, evaluations),
                                         run_dir, handle_signals=False, log=lambda _m: None,
                                         on_progress=on_progress, executor=executor)
            finally:
                await executor.aclose()

        outcome = asyncio.run(go())
    return marks["stop"] - marks["start"], outcome.programs


def trivial(args: argparse.Namespace) -> None:
    os.environ.pop("OPENAI_API_KEY", None)
    modes = ["in-process", "warm"] + ([] if args.skip_cold else ["cold"])
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(REPO)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    walls: dict[str, list[float]] = {m: [] for m in modes}
    try:
        assert server.stdout is not None
        base_url = server.stdout.readline().strip()
        for mode in modes:  # unreported warm-up: lazy imports, caches
            _run_once(mode, 20, base_url, args.evaluations)
        for repeat in range(args.repeats):
            for mode in modes if repeat % 2 == 0 else modes[::-1]:
                wall, made = _run_once(mode, args.programs, base_url, args.evaluations)
                walls[mode].append(wall)
                print(f"  {mode:<10} run {repeat + 1}: {made} programs in {wall:.1f} s",
                      flush=True)
    finally:
        if server.stdin:
            server.stdin.close()
        server.wait(timeout=10)
    floor = statistics.median(walls["in-process"])
    print(f"\ntrivial problem, {args.programs} programs, scripted model, {args.evaluations} "
          f"evaluations at once, median of {args.repeats}")
    print(f"{'evaluation':<12} {'wall s':>8} {'programs/s':>11} {'/in-process':>12}")
    for mode in modes:
        wall = statistics.median(walls[mode])
        print(f"{mode:<12} {wall:>8.1f} {args.programs / wall:>11.1f} {wall / floor:>11.2f}x")
    print(f"warm sandbox / in-process = {statistics.median(walls['warm']) / floor:.2f}x "
          f"(target <= 2x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="which", required=True)
    p_txn = sub.add_parser("txn", help="programs per minute on the txn problem")
    p_txn.add_argument("--programs", type=int, default=40)
    p_txn.add_argument("--repeats", type=int, default=3)
    p_txn.add_argument("--parallel", type=int, default=2)
    p_triv = sub.add_parser("trivial", help="a whole scripted run against in-process evaluation")
    p_triv.add_argument("--programs", type=int, default=1000)
    p_triv.add_argument("--repeats", type=int, default=1)
    p_triv.add_argument("--evaluations", type=int, default=os.cpu_count() or 2)
    p_triv.add_argument("--skip-cold", action="store_true")
    args = parser.parse_args()
    txn(args) if args.which == "txn" else trivial(args)


if __name__ == "__main__":
    main()

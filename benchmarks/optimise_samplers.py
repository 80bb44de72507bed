"""Which proposals find more: `optimise` with Optuna's TPE, the same operator with Optuna's
random sampler over the same ranges, and the old `tune` operator, on circle_packing.

Usage: python benchmarks/optimise_samplers.py [--steps 50] [--seeds 6] [--window 6]
                                              [--variants tpe random tune]

A bare hill climb in this process, no engine: each step takes the best program so far as the
parent, asks the operator for a child and scores it with the problem's own evaluator. `--window`
hides the newest trials from the operator, as the engine's planning window does. Prints the
best sum of radii per seed and the mean of each variant, so the ratio between variants is
measured in the same run.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from evolve.operators.offline import NoChange, TuneOperator  # noqa: E402
from evolve.operators.optimise import OptimiseOperator  # noqa: E402
from problems.circle_packing.evaluate import evaluate  # noqa: E402

INITIAL = (REPO / "problems" / "circle_packing" / "initial.py").read_text()


def score(code: str) -> float | None:
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as handle:
        handle.write(code)
    try:
        result = evaluate(handle.name, "main")
    finally:
        os.unlink(handle.name)
    return result["score"] if result["valid"] else None


def climb(variant: str, seed: int, steps: int, window: int) -> float:
    rng = random.Random(seed)
    history = {-1: SimpleNamespace(code=INITIAL, status="evaluated", score=score(INITIAL),
                                   valid=True, operator="initial")}
    operator = TuneOperator() if variant == "tune" else OptimiseOperator(sampler=variant)
    if isinstance(operator, OptimiseOperator):
        operator.attach_history(lambda: history, lambda: window)
    for seq in range(steps):
        best = max((h for h in history.values() if h.score is not None), key=lambda h: h.score)
        try:
            child = operator.propose(best.code, rng, seq=seq) \
                if isinstance(operator, OptimiseOperator) else operator.propose(best.code, rng)
        except NoChange:
            continue
        value = score(child)
        history[seq] = SimpleNamespace(code=child, status="evaluated", score=value,
                                       valid=value is not None, operator=variant)
    return max(h.score for h in history.values() if h.score is not None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--seeds", type=int, default=6)
    parser.add_argument("--window", type=int, default=6)
    parser.add_argument("--variants", nargs="+", default=["tpe", "random", "tune"],
                        choices=["tpe", "random", "tune"])
    args = parser.parse_args()
    means = {}
    for variant in args.variants:
        started = time.perf_counter()
        bests = [climb(variant, seed, args.steps, args.window) for seed in range(args.seeds)]
        means[variant] = statistics.mean(bests)
        print(f"{variant:>6}: mean {means[variant]:.4f}, per seed "
              f"{' '.join(f'{b:.4f}' for b in bests)} ({time.perf_counter() - started:.0f} s)",
              flush=True)
    first = args.variants[0]
    for variant in args.variants[1:]:
        print(f"{first} / {variant}: gain over the initial 1.4529 is "
              f"{(means[first] - 1.4529) / max(1e-9, means[variant] - 1.4529):.2f}x")


if __name__ == "__main__":
    main()

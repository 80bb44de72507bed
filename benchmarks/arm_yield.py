"""Arms that never yield a program, as a share of new proposals, with a model that always
answers in SEARCH/REPLACE diffs whatever it is asked (the scripted HTTP server).

    python benchmarks/arm_yield.py [--programs 500]

Runs the fixture problem of tests/engine with the default mutation mix (diff, full, crossover)
and prints, per arm: proposals, proposals that yielded an evaluated program, and the share of
all proposals made by arms that never yielded one. Issue 12 measured about 55% before replies
were read in the format they hold; the target is under 10%. The baseline row is the same run
with the fixed (non-learning) policy, measured in the same invocation.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.engine.engine_support import (  # noqa: E402
    engine_config,
    open_archive,
    parent_value,
    run,
    set_value_diff,
)
from tests.support.llm_server import Reply, ScriptedLLMServer  # noqa: E402


def diffs_only():
    """Every reply, whatever was asked, is a SEARCH/REPLACE diff that moves the parent's VALUE
    by a new small step (so children are rarely duplicates of each other)."""
    count = {"n": 0}

    def respond(request):
        count["n"] += 1
        old = parent_value(request)
        return Reply(set_value_diff(old, repr(round(old + 0.001 * (count["n"] % 997 + 1), 6))))

    return respond


def measure(programs: int, algorithm: str) -> tuple[dict[str, Counter], float, float]:
    with tempfile.TemporaryDirectory() as tmp, ScriptedLLMServer(diffs_only()) as server:
        run_dir = Path(tmp)
        config = engine_config(run_dir, server, budget={"max_programs": programs},
                               mutation={"mix": {"diff": 0.6, "full": 0.3, "crossover": 0.1},
                                         "repair_rate": 0.1, "max_resample": 3},
                               bandit={"algorithm": algorithm},
                               concurrency={"proposals": 4, "evaluations": 4})
        started = time.perf_counter()
        run(config, run_dir)
        seconds = time.perf_counter() - started
        with open_archive(run_dir) as archive:
            rows = [p for p in archive.programs(1) if p.proposal_key != "initial"]
    by_arm: dict[str, Counter] = {}
    for p in rows:
        arm = (p.timings or {}).get("arm") or f"(no arm: {p.mutation_kind})"
        by_arm.setdefault(arm, Counter())["proposals"] += 1
        by_arm[arm]["yielded"] += p.status == "evaluated"
    never = sum(c["proposals"] for c in by_arm.values() if c["yielded"] == 0)
    return by_arm, never / max(1, len(rows)), seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--programs", type=int, default=500)
    args = parser.parse_args()
    for algorithm in ("fixed", "ucb"):
        by_arm, share, seconds = measure(args.programs, algorithm)
        print(f"{algorithm}: {args.programs} programs in {seconds:.0f}s; proposals by arms that "
              f"never yielded a program: {share:.1%}")
        for arm, counts in sorted(by_arm.items()):
            print(f"  {arm:40} proposals {counts['proposals']:5}  yielded {counts['yielded']:5}")


if __name__ == "__main__":
    main()

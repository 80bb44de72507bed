"""Reproduce the ADRS Leaderboard's multi-region figures: every program's mean cost on the six
scenarios under our rules and under theirs (`rules="leaderboard"`, the five rules listed in
`problems/spot_multi/README.md`).

    python -m problems.spot_multi.leaderboard [PROGRAM.py ...]   (default: initial + baselines)

Their published avg_cost: initial greedy 82.19, OpenEvolve 80.06, ShinkaEvolve 79.02, GEPA 78.03.
Under their rules a late finish is billed and valid, and a run that runs off its trace is left
out of its scenario's mean; the last two columns count both.
"""

from __future__ import annotations

import sys
from pathlib import Path

from problems.spot_multi.evaluate import evaluate

HERE = Path(__file__).resolve().parent


def _cell(cost: float | None) -> str:
    return f"{cost:.2f}" if cost is not None else "invalid"


def main(argv: list[str]) -> int:
    programs = ([Path(a) for a in argv] if argv
                else [HERE / "initial.py", *sorted((HERE / "baselines").glob("[!_]*.py"))])
    print(f"{'program':<28} {'ours':>10} {'leaderboard':>12} {'late runs':>10} {'failed':>7}")
    for program in programs:
        ours = evaluate(str(program), "full")
        theirs = evaluate(str(program), "full", rules="leaderboard")
        m = theirs["metrics"]
        print(f"{program.stem:<28} {_cell(ours['metrics']['mean_cost'] if ours['valid'] else None):>10}"
              f" {_cell(m['mean_cost'] if theirs['valid'] else None):>12}"
              f" {m.get('late_finishes', '-'):>10} {m.get('failed_runs', '-'):>7}")
        if not theirs["valid"]:
            print(f"    {theirs['feedback']}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

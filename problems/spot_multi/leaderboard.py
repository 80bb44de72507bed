"""Reproduce the ADRS Leaderboard's multi-region figures: every program's mean cost on the six
scenarios under our rules and under theirs (`rules="leaderboard"`).

    python -m problems.spot_multi.leaderboard [PROGRAM.py ...]   (default: initial + baselines)

Their published avg_cost: initial greedy 82.19, OpenEvolve 80.06, ShinkaEvolve 79.02, GEPA 78.03.
"""

from __future__ import annotations

import sys
from pathlib import Path

from problems.spot_multi.evaluate import evaluate

HERE = Path(__file__).resolve().parent


def mean_costs(program: Path) -> dict[str, float | None]:
    costs = {}
    for rules in ("ours", "leaderboard"):
        result = evaluate(str(program), "full", rules=rules)
        costs[rules] = result["metrics"]["mean_cost"] if result["valid"] else None
    return costs


def main(argv: list[str]) -> int:
    programs = ([Path(a) for a in argv] if argv
                else [HERE / "initial.py", *sorted((HERE / "baselines").glob("[!_]*.py"))])
    print(f"{'program':<28} {'ours':>10} {'leaderboard':>12}")
    for program in programs:
        costs = mean_costs(program)
        cells = [f"{c:.2f}" if c is not None else "invalid" for c in costs.values()]
        print(f"{program.stem:<28} {cells[0]:>10} {cells[1]:>12}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

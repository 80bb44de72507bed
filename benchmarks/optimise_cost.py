"""The CPU of one `optimise` proposal as its skeleton's trials grow: the study built as before
(`create_trial` + `add_trial`, which deep-copies every trial) against the study built now (each
trial handed over whole), in one run, the two interleaved.

Usage: python benchmarks/optimise_cost.py [--trials 50 200 800] [--proposals 15]
                                          [--archive 3000 4500] [--run 300] [--in-flight 8]
                                          [--repeats 3]

Part 1: `propose` on an archive holding `--trials` programs of the parent's skeleton (random
literals, one in ten invalid) and half as many programs of another skeleton; CPU of this
process per proposal (median of `--proposals`, each at its own seq and seed), and of `ask`
alone. Then reading an archive of `--archive` programs (a third of another skeleton): a
proposal's trials, read again by the same operator (new: each program's shape kept per run)
against a reading through `skeleton_of`'s cache alone (old; it holds 4096 programs). Part 2
(`--run N`, 0 to skip): `benchmarks/overhead.py`'s offline run (no model:
`optimise` + `structure`, `target` fixture, scripted nothing) with N programs at `--in-flight`,
old and new interleaved, median of `--repeats`: total CPU of this process per program and the
framework's share (the event loop's thread). Part 1 checks the two give the same proposals.
Only the study's build differs between old and new here (the rest of the operator is today's).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import optuna  # noqa: E402

from evolve.operators.optimise import OptimiseOperator, skeleton_trials  # noqa: E402
from evolve.operators.registry import NoChange  # noqa: E402
from evolve.operators.skeleton import skeleton_of  # noqa: E402

PROGRAM = '''import math
# EVOLVE-BLOCK-START
SCALE = 0.5
COUNT = 4
FLAG = True
RATE = 0.01


def f(x, items):
    return -SCALE * x + COUNT * items[0] * RATE if FLAG else math.sqrt(x) * -2
# EVOLVE-BLOCK-END
'''
OTHER = PROGRAM.replace("math.sqrt(x) * -2", "math.sqrt(x) * -2 + 1.5")
WINDOW = 8
KEY = skeleton_of(PROGRAM).key


def rebuilt_study_of(self, trials, scores, dims, active, distributions, seed):
    """The study as it was built before this benchmark's change: every trial deep-copied."""
    study = optuna.create_study(direction="maximize", sampler=self.make_sampler(seed))
    for trial, score in zip(trials, scores, strict=True):
        study.add_trial(optuna.trial.create_trial(
            params={f"p{i}": dims[i].to_param(trial.values[i]) for i in active},
            distributions=distributions, value=score))
    return study


NEW_STUDY_OF = OptimiseOperator.study_of


def use(path: str) -> None:
    OptimiseOperator.study_of = rebuilt_study_of if path == "old" else NEW_STUDY_OF


def archive(trials: int, seed: int) -> dict[int, SimpleNamespace]:
    rng = random.Random(seed)
    history, seq = {}, -1
    for index in range(trials + trials // 2):
        base = PROGRAM if index % 3 != 2 else OTHER
        values = (round(rng.uniform(0.1, 2.0), 4), rng.randint(1, 12), rng.random() < 0.5, -2,
                  rng.choice([0.01, 0.02, 0.05]))
        code = skeleton_of(base).render(values if base is PROGRAM else (*values, 1.5))
        score = None if rng.random() < 0.1 else round(rng.random(), 4)
        history[seq] = SimpleNamespace(code=code, score=score, valid=score is not None,
                                       status="evaluated", operator="optimise")
        seq += 1
    last = max(k for k, item in history.items() if skeleton_of(item.code).key == KEY)
    history[last].score, history[last].valid = 2.0, True  # a recent best: not converged
    return history


def per_proposal(trials: int, proposals: int) -> dict[str, dict[str, float]]:
    """Median CPU (s) of `propose` and of `ask` alone, old and new, and their proposals."""
    history = archive(trials, trials)
    next_seq = max(history) + 1
    skeleton = skeleton_of(PROGRAM)
    found: dict[str, dict[str, list]] = {p: {"propose": [], "ask": [], "out": []}
                                         for p in ("old", "new")}
    for k in range(proposals):
        for path in ("old", "new") if k % 2 == 0 else ("new", "old"):
            use(path)
            operator = OptimiseOperator()
            operator.attach_history(lambda: history, lambda: WINDOW)
            seq = next_seq + WINDOW + k
            start = time.process_time()
            try:
                out = operator.propose(PROGRAM, random.Random(k), seq=seq)
            except NoChange as exc:
                out = f"NoChange: {exc}"
            found[path]["propose"].append(time.process_time() - start)
            found[path]["out"].append(out)
            visible = operator.trials_for(skeleton, seq)
            start = time.process_time()
            try:
                operator.ask(skeleton, visible, set(), random.Random(k))
            except NoChange:
                pass
            found[path]["ask"].append(time.process_time() - start)
    use("new")
    if found["old"]["out"] != found["new"]["out"]:
        raise SystemExit(f"old and new proposals differ at {trials} trials")
    declined = sum(out.startswith("NoChange") for out in found["new"]["out"])
    return {p: {"propose": statistics.median(f["propose"]), "ask": statistics.median(f["ask"]),
                "declined": declined} for p, f in found.items()}


def archive_reads(size: int) -> tuple[int, int, float, float]:
    """Programs, trials, and the median CPU (s) of a second reading, old and new."""
    history = archive(2 * size // 3, size)
    skeleton = skeleton_of(PROGRAM)
    operator = OptimiseOperator()
    operator.attach_history(lambda: history, lambda: WINDOW)
    seq = max(history) + WINDOW
    reads = {"old": lambda: skeleton_trials(skeleton, history, seq - WINDOW),
             "new": lambda: operator.trials_for(skeleton, seq)}
    found = {path: read() for path, read in reads.items()}  # the first read of each
    spent: dict[str, list[float]] = {"old": [], "new": []}
    for _ in range(3):
        for path, read in reads.items():
            start = time.process_time()
            found[path] = read()
            spent[path].append(time.process_time() - start)
    if found["old"] != found["new"]:
        raise SystemExit(f"old and new readings differ at {size} programs")
    return (len(history), len(found["new"]), statistics.median(spent["old"]),
            statistics.median(spent["new"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, nargs="+", default=[50, 200, 800])
    parser.add_argument("--proposals", type=int, default=15)
    parser.add_argument("--archive", type=int, nargs="+", default=[3000, 4500])
    parser.add_argument("--run", type=int, default=300)
    parser.add_argument("--in-flight", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    print(f"one proposal, CPU of this process (median of {args.proposals}; old = create_trial "
          "+ add_trial, new = handed over; the same proposals checked):")
    print(f"{'trials':>7} {'old propose':>12} {'new propose':>12} {'new/old':>8} "
          f"{'old ask':>9} {'new ask':>9} {'declined':>9}")
    for trials in args.trials:
        got = per_proposal(trials, args.proposals)
        old, new = got["old"], got["new"]
        print(f"{trials:>7} {1000 * old['propose']:>9.2f} ms {1000 * new['propose']:>9.2f} ms "
              f"{new['propose'] / old['propose']:>7.2f}x {1000 * old['ask']:>6.2f} ms "
              f"{1000 * new['ask']:>6.2f} ms {new['declined']:>9}", flush=True)
    print("\nreading the archive for one proposal, second read (median of 3):")
    for size in args.archive:
        programs, trials, old, new = archive_reads(size)
        print(f"  {programs:>6} programs: old {1000 * old:8.1f} ms, new {1000 * new:6.1f} ms "
              f"({trials} trials)", flush=True)
    if not args.run:
        return

    from benchmarks.overhead import measure

    measure(2, 2, 25, None)  # warm-up: lazy imports are not charged to the first measured run
    runs: dict[str, list[dict]] = {"old": [], "new": []}
    for k in range(args.repeats):
        for path in ("old", "new") if k % 2 == 0 else ("new", "old"):
            use(path)
            runs[path].append(measure(args.in_flight, 2, args.run, None))
    use("new")
    print(f"\noffline run (benchmarks/overhead.py's measure: no model, {args.run} programs, "
          f"{args.in_flight} in flight, median of {args.repeats}, interleaved):")
    for path, found in runs.items():
        total = statistics.median(r["total"] for r in found)
        framework = statistics.median(r["framework"] for r in found)
        print(f"  {path}: total {1000 * total:6.2f} ms/program, framework (loop thread) "
              f"{1000 * framework:6.2f} ms/program, programs {found[0]['programs']}")
    old_total = statistics.median(r["total"] for r in runs["old"])
    new_total = statistics.median(r["total"] for r in runs["new"])
    print(f"  new/old total: {new_total / old_total:.2f}x")


if __name__ == "__main__":
    main()

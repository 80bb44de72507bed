"""Archive cost per write and lineage query time, against baselines measured in the same run.

    python benchmarks/archive_bench.py [--programs 10000]

- write: `Archive.add_program` (one transaction each, with two stage rows) against a bare
  sqlite3 INSERT + COMMIT per program into the same kind of WAL file (the floor for a
  one-transaction-per-program design).
- lineage: `Archive.ancestors` / `descendants` (recursive CTEs) against loading every
  (id, parent_id) pair and walking them in Python (what a caller would do without the CTE).
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from db import Archive, archive_path  # noqa: E402
from evaluators.result import StageResult  # noqa: E402


def bare_sqlite_writes(path: Path, parents: list[int | None]) -> float:
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("pragma journal_mode=wal")
    con.execute("pragma synchronous=normal")
    con.execute("create table p (id integer primary key, parent integer, code text, score real)")
    con.execute("create table e (id integer primary key, p integer, stage text, score real)")
    start = time.perf_counter()
    for i, parent in enumerate(parents):
        con.execute("begin immediate")
        cur = con.execute("insert into p (parent, code, score) values (?, ?, ?)",
                          (parent, f"x = {i}", float(i)))
        for stage in ("quick", "full"):
            con.execute("insert into e (p, stage, score) values (?, ?, ?)",
                        (cur.lastrowid, stage, 1.0))
        con.execute("commit")
    elapsed = time.perf_counter() - start
    con.close()
    return elapsed


def python_walk(arch: Archive, run_id: int, node: int) -> tuple[list[int], set[int]]:
    parent = {p.id: p.parent_id for p in arch.programs(run_id)}
    up, cur = [], parent[node]
    while cur is not None:
        up.append(cur)
        cur = parent[cur]
    children: dict[int, list[int]] = {}
    for child, par in parent.items():
        if par is not None:
            children.setdefault(par, []).append(child)
    down, stack = set(), list(children.get(node, []))
    while stack:
        n = stack.pop()
        down.add(n)
        stack.extend(children.get(n, []))
    return up, down


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--programs", type=int, default=10_000)
    args = parser.parse_args()
    n = args.programs
    rng = random.Random(0)
    # Parent of program i (1-based ids): a chain for the first third, then a random tree.
    parents: list[int | None] = [None] + [
        i if i < n // 3 else rng.randint(1, i) for i in range(1, n)]

    with tempfile.TemporaryDirectory() as tmp:
        bare_s = bare_sqlite_writes(Path(tmp) / "bare.sqlite", parents)
        stages = [StageResult(stage="quick", score=1.0, valid=True),
                  StageResult(stage="full", score=1.0, valid=True)]
        with Archive.open(archive_path(tmp)) as arch:
            run_id = arch.create_run(problem="bench", config_toml="", seed=0, isolation="none")
            start = time.perf_counter()
            for i, parent in enumerate(parents):
                arch.add_program(run_id, code=f"x = {i}", parent_id=parent, score=float(i),
                                 valid=True, evaluations=stages)
            archive_s = time.perf_counter() - start

            deep = n // 3  # the end of the chain: the deepest single ancestry
            start = time.perf_counter()
            up = [p.id for p in arch.ancestors(deep)]
            down = {p.id for p in arch.descendants(1)}
            cte_s = time.perf_counter() - start
            start = time.perf_counter()
            up_py, _ = python_walk(arch, run_id, deep)
            _, down_py = python_walk(arch, run_id, 1)
            walk_s = time.perf_counter() - start
            assert up == up_py and down == down_py

    print(f"programs: {n}")
    print(f"write  add_program {1e3 * archive_s / n:.3f} ms/program, bare sqlite3 "
          f"{1e3 * bare_s / n:.3f} ms/program, ratio {archive_s / bare_s:.2f}x")
    print(f"lineage  CTE ancestors({len(up)}) + descendants({len(down)}) {1e3 * cte_s:.1f} ms, "
          f"load-all-and-walk {1e3 * walk_s:.1f} ms, ratio {cte_s / walk_s:.2f}x")


if __name__ == "__main__":
    main()

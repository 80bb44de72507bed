"""How much a dashboard refresh costs on a long run, incremental against a full reload.

Usage: python benchmarks/dashboard_refresh.py [PROGRAMS]   (default 3000)

Writes a run of PROGRAMS programs (each with an LLM call holding a realistic prompt) through the
archive API into a temporary folder, then measures in the same run:
- reading the run: `load_run` from scratch (baseline) vs `load_run(previous=...)` after the
  controller stored 10 more programs (what the dashboard's timer does);
- the programs table: rebuilding every row (baseline) vs adding the new rows in place, inside a
  headless Textual app at 80x24.
Prints seconds and the ratio baseline / incremental for each.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from db import Archive  # noqa: E402
from evolve.dashboard.app import DashboardApp  # noqa: E402
from evolve.dashboard.data import load_run  # noqa: E402
from evolve.dashboard.programs import ProgramsPane  # noqa: E402

CODE = "def solve(xs):\n" + "".join(f"    x{i} = sorted(xs)[:{i}]\n" for i in range(120))


def write_programs(archive: Archive, run_id: int, count: int, rng: random.Random,
                   ids: list[int]) -> None:
    for _ in range(count):
        prompt = json.dumps([{"role": "system", "content": "You evolve programs."},
                             {"role": "user", "content": CODE * 3}])
        call = archive.record_llm_call(run_id, model="openai/gpt-4.1-mini", prompt=prompt,
                                       response=CODE, tokens_in=3000, tokens_out=900,
                                       cost_usd=0.002, latency_s=2.0, error=None,
                                       purpose="proposal")
        ids.append(archive.add_program(
            run_id, code=CODE + f"# {len(ids)}\n", parent_id=rng.choice(ids) if ids else None,
            island=len(ids) % 4, generation=len(ids) // 40, operator="openai/gpt-4.1-mini",
            mutation_kind="diff", status="evaluated", score=rng.random(), valid=True,
            metrics={"n": 1}, feedback="ok", llm_call_ids=[call]))


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


async def table_times(archive: Archive, run_id: int, writer: Archive, rng, ids) -> tuple:
    app = DashboardApp(archive, run_id, refresh_s=3600)
    app.animation_level = "none"
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        pane = app.query_one(ProgramsPane)
        full = timed(pane._rebuild)
        await pilot.pause()
        write_programs(writer, run_id, 10, rng, ids)
        app.data = load_run(archive, run_id, previous=app.data)
        incremental = timed(lambda: pane.set_programs(app.data.programs))
        await pilot.pause()
        assert pane.shown_count == len(ids)
    return full, incremental


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
    rng = random.Random(0)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "archive.sqlite"
        writer = Archive.open(path)
        run_id = writer.create_run(problem="bench", config_toml="", seed=0, isolation="rlimits")
        ids: list[int] = []
        print(f"writing {count} programs ...", flush=True)
        write_programs(writer, run_id, count, rng, ids)
        reader = Archive.open(path, create=False)
        data = {}
        full = timed(lambda: data.setdefault("d", load_run(reader, run_id)))
        write_programs(writer, run_id, 10, rng, ids)
        incremental = timed(lambda: load_run(reader, run_id, previous=data["d"]))
        print(f"read run:       full {full:.3f} s, incremental {incremental:.3f} s, "
              f"ratio {full / incremental:.1f}x")
        table_full, table_incremental = asyncio.run(table_times(reader, run_id, writer, rng, ids))
        print(f"programs table: rebuild {table_full:.3f} s, add rows {table_incremental:.3f} s, "
              f"ratio {table_full / table_incremental:.1f}x")
        reader.close()
        writer.close()


if __name__ == "__main__":
    main()

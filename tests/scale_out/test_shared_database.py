"""Several runs in one PostgreSQL database (a real server, tests/conftest.py): each run directory
records its run id, `evolve resume RUN_DIR` continues exactly that run, kill -9 loses nothing."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from tests.engine.engine_support import FIXTURE, evolve_process

ROOT = Path(__file__).resolve().parents[2]


def run_args(run_dir: Path, url: str, seed: int, programs: int) -> list[str]:
    # Offline operators: no LLM library to import, so each process starts quickly.
    return ["run", str(FIXTURE), "--programs", str(programs), "--run-dir", str(run_dir),
            "--seed", str(seed), "--no-live", "--set", f'archive.url="{url}"',
            "--set", "concurrency.proposals=2", "--set", "concurrency.evaluations=1",
            "--set", "islands.count=2"]


def recorded_run_id(run_dir: Path) -> int | None:
    path = run_dir / "run.json"
    return json.loads(path.read_text())["run_id"] if path.is_file() else None


def committed(url: str, run_id: int | None) -> dict[str, tuple[int, str, float | None, str]]:
    """proposal key -> (id, code, score, status) of every row the run stored."""
    if run_id is None:
        return {}
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT proposal_key, id, code, score, status FROM programs "
                                     "WHERE run_id = :r"), {"r": run_id}).all()
    finally:
        engine.dispose()
    keys = [r[0] for r in rows]
    assert len(keys) == len(set(keys)), f"a proposal key was stored twice: {sorted(keys)}"
    return {r[0]: (r[1], r[2], r[3], r[4]) for r in rows}


def evaluated(rows: dict[str, tuple]) -> int:
    """Candidates that count against budget.max_programs: evaluated ones, the initial program
    aside (duplicates and rejected proposals are stored too but make room for more)."""
    return sum(1 for key, row in rows.items() if key != "initial" and row[3] == "evaluated")


def assert_complete_sequence(rows: dict[str, tuple], seed: int, programs: int) -> None:
    """The run's proposals are seed:0..seed:K-1 with no gap (proposals start in order, a
    resume re-plans lost ones under the same key), exactly `programs` of them evaluated, and
    the last one evaluated (no proposal starts once the budget is reached)."""
    seqs = sorted(int(key.split(":")[1]) for key in rows if key != "initial")
    assert "initial" in rows and all(key == "initial" or key.startswith(f"{seed}:")
                                     for key in rows)
    assert seqs == list(range(len(seqs))), f"proposal keys with a gap: {seqs}"
    assert evaluated(rows) == programs
    assert rows[f"{seed}:{seqs[-1]}"][3] == "evaluated"


def run_status(url: str, run_id: int) -> str:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT status FROM runs WHERE id = :r"),
                                {"r": run_id}).scalar_one()
    finally:
        engine.dispose()


def test_two_runs_share_one_database_and_each_resumes_its_own_after_kill_9(tmp_path,
                                                                         postgres_server):
    url = postgres_server.database()
    programs = 20
    dirs = {5: tmp_path / "seed5", 6: tmp_path / "seed6"}
    procs = {seed: evolve_process(*run_args(d, url, seed, programs)) for seed, d in dirs.items()}
    # Let both write concurrently, then kill -9 both mid-run: once both have a few programs,
    # or as soon as one nears its end (a run that started later may still be setting up, and
    # the other must not finish meanwhile: runs got fast enough to do so).
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        counts = [len(committed(url, recorded_run_id(d))) for d in dirs.values()]
        if min(counts) >= 4 or max(counts) >= programs - 6 or \
                any(p.poll() is not None for p in procs.values()):
            break
        time.sleep(0.1)
    for proc in procs.values():
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    ids = {seed: recorded_run_id(d) for seed, d in dirs.items()}
    assert None not in ids.values() and ids[5] != ids[6]
    before = {seed: committed(url, ids[seed]) for seed in dirs}
    assert all(evaluated(rows) < programs for rows in before.values()), "killed too late"

    resumed = {seed: evolve_process("resume", str(d), "--no-live") for seed, d in dirs.items()}
    for seed, proc in resumed.items():
        output = proc.communicate(timeout=180)[0]
        assert proc.returncode == 0, output
        assert f"resuming run {ids[seed]}:" in output
    for seed in dirs:
        final = committed(url, ids[seed])
        for key, row in before[seed].items():
            assert final.get(key) == row, f"run {ids[seed]}: program {key} lost or changed"
        assert_complete_sequence(final, seed, programs)
        assert run_status(url, ids[seed]) == "completed"


def test_resume_on_a_shared_database_continues_the_run_of_that_directory(tmp_path,
                                                                        postgres_server):
    from evolve.cli import app

    url = postgres_server.database()
    runner = CliRunner()
    first, second = tmp_path / "first", tmp_path / "second"
    for seed, run_dir in ((5, first), (6, second)):
        result = runner.invoke(app, run_args(run_dir, url, seed, 3))
        assert result.exit_code == 0, result.output
    first_id, second_id = recorded_run_id(first), recorded_run_id(second)
    assert (first_id, second_id) == (1, 2)

    # The first run is not the newest in the database: resume must still pick it.
    result = runner.invoke(app, ["resume", str(first), "--programs", "6", "--no-live"])
    assert result.exit_code == 0, result.output
    assert f"resuming run {first_id}:" in result.output
    assert_complete_sequence(committed(url, first_id), 5, 6)
    assert_complete_sequence(committed(url, second_id), 6, 3)

    # The inspection commands read the directory's own run too.
    shown = runner.invoke(app, ["status", str(first), "--json"])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output)["run_id"] == first_id

    # A directory that lost its run.json cannot guess among several runs: it says so...
    (second / "run.json").unlink()
    result = runner.invoke(app, ["resume", str(second), "--no-live"])
    assert result.exit_code == 2
    assert "--run-id" in result.output and "1, 2" in result.output
    # ...and --run-id picks one.
    result = runner.invoke(app, ["resume", str(second), "--run-id", str(second_id),
                                 "--programs", "5", "--no-live"])
    assert result.exit_code == 0, result.output
    assert_complete_sequence(committed(url, second_id), 6, 5)
    assert_complete_sequence(committed(url, first_id), 5, 6)

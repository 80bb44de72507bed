"""`kill -9` of a real `evolve run` at random points, each followed by `evolve resume`: no
committed program is lost and none is stored twice. Ctrl-C exits cleanly."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

from tests.engine.engine_support import (
    FIXTURE,
    MODEL,
    evolve_process,
    parent_value,
    set_value_diff,
)
from tests.support.llm_server import Reply

ROOT = Path(__file__).resolve().parents[2]
PROGRAMS = 60   # warm evaluations take ~20 ms: enough programs that five kills land mid-run


def committed(run_dir: Path) -> dict[str, tuple[int, str, float | None]]:
    """proposal key -> (id, code, score), read straight from the SQLite file."""
    db = run_dir / "archive.sqlite"
    if not db.exists():
        return {}
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as conn:
        try:
            rows = conn.execute("SELECT proposal_key, id, code, score FROM programs").fetchall()
        except sqlite3.OperationalError:  # the schema is not created yet
            return {}
    keys = [r[0] for r in rows]
    assert len(keys) == len(set(keys)), f"a proposal key was stored twice: {sorted(keys)}"
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


def wait_for(run_dir: Path, at_least: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end and proc.poll() is None:
        if len(committed(run_dir)) >= at_least:
            return
        time.sleep(0.05)


def test_kill_9_five_times_then_resume_loses_and_duplicates_nothing(tmp_path):
    # The offline operators keep each process start short (no LLM library to import); the
    # resume path for LLM runs is the same code and is covered in test_run_e2e.
    run_dir = tmp_path / "run"
    rng = random.Random(2024)
    seen: dict[str, tuple[int, str, float | None]] = {}
    args = ["run", str(FIXTURE), "--programs", str(PROGRAMS), "--run-dir", str(run_dir),
            "--seed", "5", "--no-live", "--set", "concurrency.proposals=3",
            "--set", "concurrency.evaluations=2", "--set", "islands.count=2",
            "--set", "scratchpad.interval=5", "--set", "islands.migration_interval=2"]
    kills = 0
    proc = evolve_process(*args)
    while kills < 5:
        # Kill at a random point: after a random number of further commits plus a random delay.
        wait_for(run_dir, len(seen) + rng.randint(1, 4), proc)
        time.sleep(rng.uniform(0.0, 0.1))
        if proc.poll() is not None:
            break  # finished before the kill: nothing to kill
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        kills += 1
        now = committed(run_dir)
        for key, row in seen.items():
            assert now.get(key) == row, f"committed program {key} was lost or changed"
        seen = now
        proc = evolve_process("resume", str(run_dir), "--no-live")
    output = proc.communicate(timeout=120)[0]
    assert proc.returncode == 0, output
    assert kills == 5, f"the run finished after {kills} kills; make it longer"
    final = committed(run_dir)
    for key, row in seen.items():
        assert final.get(key) == row, f"committed program {key} was lost or changed"
    # The budget counts evaluated programs (duplicates make room for more proposals); the
    # proposals stored are exactly 5:0 .. 5:n-1, none missing.
    proposals = len(final) - 1
    assert sorted(final) == sorted(["initial"] + [f"5:{i}" for i in range(proposals)])
    with sqlite3.connect(run_dir / "archive.sqlite") as conn:
        evaluated = conn.execute("SELECT COUNT(*) FROM programs WHERE status = 'evaluated' "
                                 "AND proposal_key != 'initial'").fetchone()[0]
        assert evaluated == PROGRAMS
        assert conn.execute("SELECT status FROM runs").fetchone()[0] == "completed"
        resumes = conn.execute("SELECT COUNT(*) FROM events WHERE kind='resume'").fetchone()[0]
    assert resumes == 5
    assert (run_dir / "best" / "program.py").is_file()


def test_ctrl_c_finishes_in_flight_work_and_exits_cleanly(tmp_path, server_factory):
    def slow(request):
        old = parent_value(request)
        return Reply(set_value_diff(old, repr(old + 1)), delay_s=0.3)

    server = server_factory(slow)
    run_dir = tmp_path / "run"
    proc = evolve_process("run", str(FIXTURE), "--model", MODEL, "--api-base", server.base_url,
                          "--programs", "200", "--run-dir", str(run_dir), "--no-live",
                          "--set", "concurrency.proposals=2", "--set", "concurrency.evaluations=1")
    wait_for(run_dir, 3, proc)
    os.killpg(proc.pid, signal.SIGINT)
    output = proc.communicate(timeout=60)[0]
    assert proc.returncode == 1, output     # did not complete: the README's rule
    assert "finishing in-flight work" in output and "run interrupted" in output
    with sqlite3.connect(run_dir / "archive.sqlite") as conn:
        assert conn.execute("SELECT status FROM runs").fetchone()[0] == "interrupted"
        n = conn.execute("SELECT COUNT(*) FROM programs").fetchone()[0]
        # Every proposal the server answered became a program (in-flight work was finished).
        orphans = conn.execute("SELECT COUNT(*) FROM llm_calls WHERE program_id IS NULL"
                               ).fetchone()[0]
    assert 3 <= n < 200 and orphans == 0

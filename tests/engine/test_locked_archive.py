"""A database locked by another process holds back only the writes, never the event loop.

A real second process takes the archive's write lock (SQLite: BEGIN EXCLUSIVE; PostgreSQL: LOCK
TABLE ... IN EXCLUSIVE MODE) for 2 s while a run is writing. Meanwhile a heartbeat task on the
run's event loop keeps ticking and LLM replies keep arriving; once the lock is gone, every
reply and every program is in the archive.
"""

from __future__ import annotations

import asyncio
import itertools
import sys
import time

from db import Archive
from evolve.engine.session import run_session
from tests.engine.engine_support import engine_config, parent_value, set_value_diff
from tests.support.llm_server import Reply, ScriptedLLMServer

HOLD_S = 2.0
REPLY_DELAY_S = 0.3
# Enough programs that the run is still proposing when the locker process (a fresh
# interpreter, slow to start on a busy machine) takes the lock: with 8 a run whose
# writes are fast could be done proposing by then, and no reply came during the lock.
PROGRAMS = 20
TABLES = "programs, evaluations, llm_calls, events, state, runs"

# The second process: takes the lock, says when, holds it, says when it let go.
SQLITE_LOCKER = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN EXCLUSIVE")
print("locked", time.monotonic(), flush=True)
time.sleep(float(sys.argv[2]))
print("releasing", time.monotonic(), flush=True)
db.execute("COMMIT")
"""
POSTGRES_LOCKER = f"""
import psycopg, sys, time
with psycopg.connect(sys.argv[1]) as db:
    db.execute("LOCK TABLE {TABLES} IN EXCLUSIVE MODE")  # reads still pass, writes wait
    print("locked", time.monotonic(), flush=True)
    time.sleep(float(sys.argv[2]))
    print("releasing", time.monotonic(), flush=True)
"""


def distinct_steps():
    """Each reply moves VALUE by its own amount (no duplicates), after a network-like delay."""
    counter = itertools.count(1)

    def respond(request):
        old = parent_value(request)
        return Reply(set_value_diff(old, repr(old + 0.01 * next(counter))), delay_s=REPLY_DELAY_S)

    return respond


def locker_command(archive_url: str) -> list[str]:
    if "://" in archive_url:
        return [sys.executable, "-c", POSTGRES_LOCKER, archive_url.replace("+psycopg", ""),
                str(HOLD_S)]
    return [sys.executable, "-c", SQLITE_LOCKER, archive_url, str(HOLD_S)]


def test_a_locked_archive_does_not_stall_the_loop_and_loses_nothing(tmp_path, archive_url):
    run_dir = tmp_path / "run"
    with ScriptedLLMServer(distinct_steps()) as server:
        config = engine_config(run_dir, server, budget={"max_programs": PROGRAMS},
                               concurrency={"proposals": 3, "evaluations": 2},
                               archive={"url": archive_url})
        beats: list[float] = []

        async def scenario():
            run = asyncio.ensure_future(run_session(config, run_dir, handle_signals=False,
                                                    log=lambda _m: None))

            async def heartbeat():
                while not run.done():
                    beats.append(time.monotonic())
                    await asyncio.sleep(0.02)

            beating = asyncio.ensure_future(heartbeat())
            while len(server.chat_requests) < 3 and not run.done():  # the run is writing
                await asyncio.sleep(0.01)
            assert not run.done(), "the run ended before the lock was taken"
            locker = await asyncio.create_subprocess_exec(
                *locker_command(archive_url), stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE)
            out, err = await locker.communicate()
            assert locker.returncode == 0, err.decode()
            times = dict(line.split() for line in out.decode().splitlines())
            outcome = await run
            await beating
            return outcome, float(times["locked"]), float(times["releasing"])

        outcome, locked, released = asyncio.run(scenario())
        replies_in_lock = [r for r in server.chat_requests
                           if locked < r.received_at + REPLY_DELAY_S < released]
        chat_requests = len(server.chat_requests)

    assert released - locked >= HOLD_S * 0.9
    in_lock = [b for b in beats if locked <= b <= released]
    gaps = [b - a for a, b in itertools.pairwise([locked, *in_lock, released])]
    # Blocking calls on the loop would leave one gap as long as the lock (2 s).
    assert max(gaps) < 0.5, f"the event loop stalled {max(gaps):.2f} s under the lock"
    assert len(in_lock) >= 20
    assert replies_in_lock, "no LLM reply arrived while the archive was locked"
    # Nothing lost: the budget is reached and every reply is stored, the ones that waited too.
    assert outcome.status == "completed" and outcome.programs == PROGRAMS
    with Archive.open(archive_url, create=False) as archive:
        run = archive.get_run(outcome.run_id)
        assert run.status == "completed"
        calls = archive.llm_calls(outcome.run_id)
        programs = archive.programs(outcome.run_id)
    assert len(calls) == chat_requests
    assert all(call.response and call.error is None for call in calls)
    assert sum(p.status == "evaluated" for p in programs) == PROGRAMS + 1
    # Each call is linked to the program it proposed (none was proposed and then dropped).
    assert {call.program_id for call in calls} <= {p.id for p in programs}
    assert None not in {call.program_id for call in calls}

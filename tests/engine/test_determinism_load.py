"""The same seed gives the same archive under load: several `evolve run` processes at once, an
evaluator that sleeps a random time unrelated to the seed, embeddings-based novelty on, and one
run killed with kill -9 and resumed. Compared: (proposal_key, code_hash, status, operator)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from db import Archive
from tests.engine.engine_support import bump, stored_count
from tests.engine.test_fail_fast import ROOT, evolve, problem_with_evaluator
from tests.support.llm_server import ScriptedLLMServer

JITTER = """
_plain_evaluate = evaluate


def evaluate(program_path, stage):
    import random
    import time
    time.sleep(random.SystemRandom().uniform(0.0, 0.25))  # not from the run's seed
    return _plain_evaluate(program_path, stage)
"""
PROGRAMS = 14


def run_args(folder: Path, run_dir: Path, base_url: str) -> list[str]:
    return ["run", str(folder), "--model", "openai/scripted", "--api-base", base_url,
            "--seed", "3", "--programs", str(PROGRAMS), "--no-live", "--run-dir", str(run_dir),
            "--set", "concurrency.proposals=3", "--set", "concurrency.evaluations=2",
            "--set", "islands.count=2", "--set", "islands.migration_interval=2",
            "--set", "scratchpad.interval=4",
            "--set", "novelty.embedding_model=\"openai/embedder\"",
            "--set", f"novelty.embedding_api_base=\"{base_url}\""]


def contents(run_dir: Path) -> list[tuple]:
    with Archive.open(run_dir / "archive.sqlite", create=False) as archive:
        run = archive.runs()[-1]
        return sorted((p.proposal_key, p.code_hash, p.status, p.operator)
                      for p in archive.programs(run.id))


@pytest.mark.slow  # about 4 minutes on 2 busy cores; the in-process test below is the fast one
def test_concurrent_runs_and_a_killed_and_resumed_run_store_the_same_programs(tmp_path):
    folder = problem_with_evaluator(tmp_path, JITTER)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    for key in [k for k in env if k.endswith("_API_KEY")]:
        env.pop(key)
    with ScriptedLLMServer(bump(1.0)) as server:
        dirs = [tmp_path / f"run{i}" for i in range(3)]
        killed = tmp_path / "killed"
        processes = [subprocess.Popen([sys.executable, "-m", "evolve",
                                       *run_args(folder, d, server.base_url)],
                                      cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.PIPE, text=True)
                     for d in [*dirs, killed]]
        victim = processes[-1]
        try:  # kill -9 the fourth run once it has stored a few programs
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and victim.poll() is None:
                if stored_count(killed) >= 6:
                    break
                time.sleep(0.1)
            victim.send_signal(signal.SIGKILL)
            victim.wait()
            for process in processes[:-1]:
                _, err = process.communicate(timeout=300)
                assert process.returncode == 0, err
        finally:
            for process in processes:
                if process.poll() is None:
                    process.kill()
                    process.wait()
        partial = sum(row[2] == "evaluated" for row in contents(killed))
        resumed = evolve("resume", str(killed), "--no-live", timeout=300)
        assert resumed.returncode == 0, resumed.stderr
        embedded = [r for r in server.requests if r.path.endswith("/embeddings")]
    assert embedded, "the embeddings-based novelty check was not used"
    reference = contents(dirs[0])
    assert sum(status == "evaluated" for _k, _h, status, _o in reference) == PROGRAMS + 1
    assert any(status == "duplicate" for _key, _hash, status, _op in reference)
    for other in dirs[1:]:
        assert contents(other) == reference, other.name
    assert partial < PROGRAMS + 1  # the kill came before the end ...
    assert contents(killed) == reference  # ... and the resume completed the same archive


def test_two_runs_at_once_in_one_process_with_jittered_evaluations_agree(tmp_path):
    """The fast check: two runs of the same seed share one event loop (so their completions
    interleave differently), with jittered evaluation times and embeddings on."""
    import asyncio

    from evolve.engine.session import run_session
    from tests.engine.engine_support import engine_config

    folder = problem_with_evaluator(tmp_path, JITTER)
    with ScriptedLLMServer(bump(1.0)) as server:
        configs = [engine_config(
            tmp_path / name, server, problem=str(folder), seed=3,
            budget={"max_programs": 12}, concurrency={"proposals": 3, "evaluations": 3},
            mutation={"mix": {"diff": 0.6, "full": 0.4}, "repair_rate": 0.0},
            scratchpad={"enabled": True, "interval": 3},
            novelty={"embedding_model": "openai/embedder",
                     "embedding_api_base": server.base_url}) for name in ("a", "b")]

        async def both():
            await asyncio.gather(*(run_session(c, tmp_path / n, handle_signals=False,
                                               log=lambda _m: None)
                                   for c, n in zip(configs, ("a", "b"), strict=True)))

        asyncio.run(both())
    a, b = contents(tmp_path / "a"), contents(tmp_path / "b")
    assert sum(status == "evaluated" for _k, _h, status, _o in a) == 13 and a == b

"""A run that cannot work stops at once with exit code 1 and one line that names the cause and
the fix (real `evolve run` subprocesses; models behind the scripted HTTP server)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from db import Archive
from tests.engine.engine_support import FIXTURE, MODEL, bump, engine_config, open_archive, run
from tests.support.llm_server import HTTPError, Reply, ScriptedLLMServer

ROOT = Path(__file__).resolve().parents[2]


def evolve(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), COLUMNS="80")
    for key in [k for k in env if k.endswith("_API_KEY")]:
        env.pop(key)
    return subprocess.run([sys.executable, "-m", "evolve", *args], capture_output=True,
                          text=True, env=env, timeout=timeout, cwd=ROOT)


def problem_with_evaluator(tmp_path: Path, extra: str) -> Path:
    """The fixture problem with `extra` appended to its evaluator."""
    folder = tmp_path / "problem"
    shutil.copytree(FIXTURE, folder)
    with (folder / "evaluate.py").open("a") as handle:
        handle.write("\n" + extra + "\n")
    return folder


def programs(run_dir: Path) -> list:
    with Archive.open(run_dir / "archive.sqlite", create=False) as archive:
        run = archive.runs()[-1]
        return [run.status, archive.programs(run.id), archive.llm_calls(run.id)]


def error_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.mark.parametrize("extra, expected", [
    ("def evaluate(p, s:", "SyntaxError"),
    ("def evaluate(program_path, stage):\n    raise RuntimeError('scorer is broken')",
     "scorer is broken"),
    ("def evaluate(program_path, stage):\n    return 42", "must return a dict"),
    ("def evaluate(program_path, stage):\n    return {'score': 'high', 'valid': True}",
     "score must be a number"),
], ids=["syntax-error", "raises", "not-a-dict", "bad-score"])
def test_a_broken_evaluator_stops_before_any_proposal(tmp_path, extra, expected):
    folder = problem_with_evaluator(tmp_path, extra)
    run_dir = tmp_path / "run"
    result = evolve("run", str(folder), "--programs", "3", "--no-live", "--run-dir", str(run_dir))
    assert result.returncode == 1, result.stdout + result.stderr
    line = error_line(result)
    assert "the evaluator of target failed on the initial program" in line
    assert expected in line and "evaluate.py" in line and "evolve eval" in line
    status, stored, _calls = programs(run_dir)
    assert status == "failed"
    assert [p.proposal_key for p in stored] == ["initial"]  # nothing proposed
    assert "best program in" not in result.stdout  # no pointer to a best/ that does not exist


def test_an_invalid_initial_program_stops_the_run_with_its_reason(tmp_path):
    """The evaluator works and rejects the initial program: not the evaluator's fault, but
    there is nothing to evolve from, so the run stops at once with the evaluator's reason."""
    folder = tmp_path / "problem"
    shutil.copytree(FIXTURE, folder)
    (folder / "initial.py").write_text("def solve():\n    return float('nan')\n")
    result = evolve("run", str(folder), "--programs", "2", "--no-live", "--run-dir",
                    str(tmp_path / "run"))
    assert result.returncode == 1, result.stdout + result.stderr
    line = error_line(result)
    assert "the initial program of target is invalid" in line
    assert "the evaluator of target failed" not in line      # the program's fault, not its
    assert "solve returned nan, not a finite number" in line and "initial.py" in line
    status, stored, _ = programs(tmp_path / "run")
    assert status == "failed" and [p.proposal_key for p in stored] == ["initial"]


def test_an_unknown_provider_stops_after_k_failures_naming_model_error_and_fix(tmp_path):
    run_dir = tmp_path / "run"
    result = evolve("run", str(FIXTURE), "--model", "nosuchprovider/foo", "--programs", "30",
                    "--no-live", "--run-dir", str(run_dir), "--set", "llm.retries=0")
    assert result.returncode == 1, result.stdout + result.stderr
    line = error_line(result)
    assert "model nosuchprovider/foo failed 3 times in a row and never answered" in line
    assert "LLM Provider NOT provided" in line and "Fix: check the model name" in line
    status, stored, _ = programs(run_dir)
    assert status == "failed" and len(stored) < 30


def test_refused_connections_stop_the_run_and_say_which_server(tmp_path):
    with ScriptedLLMServer([]) as server:
        dead_base = server.base_url  # a port that was just free, now closed again
    run_dir = tmp_path / "run"
    result = evolve("run", str(FIXTURE), "--model", "openai/down", "--api-base", dead_base,
                    "--programs", "30", "--no-live", "--run-dir", str(run_dir),
                    "--set", "llm.retries=0", "--set", "concurrency.proposals=1")
    assert result.returncode == 1, result.stdout + result.stderr
    line = error_line(result)
    assert "model openai/down failed 3 times" in line
    assert f"check that the server at {dead_base} is running" in line


def test_an_auth_failure_stops_the_run_and_names_the_key(tmp_path):
    denied = HTTPError(401, {"error": {"message": "Incorrect API key provided",
                                       "type": "invalid_request_error", "code": "invalid_api_key"}})
    with ScriptedLLMServer(default=denied) as server:
        result = evolve("run", str(FIXTURE), "--model", "openai/locked", "--api-base",
                        server.base_url, "--programs", "30", "--no-live", "--run-dir",
                        str(tmp_path / "run"), "--set", "concurrency.proposals=1")
        asked = len(server.chat_requests)
    assert result.returncode == 1, result.stdout + result.stderr
    line = error_line(result)
    assert "AuthenticationError" in line and "Fix: check the API key" in line
    assert asked == 3  # a 401 is not retried: K proposals, one call each


def _answers_then_fails(answers: int):
    """A responder: `answers` good replies, then a server error for every later call."""
    good = bump()
    seen = {"n": 0}

    def respond(request):
        seen["n"] += 1
        return good(request) if seen["n"] <= answers else HTTPError(500)

    return respond


def test_a_model_that_fails_during_the_run_is_benched_and_the_run_stops(tmp_path):
    run_dir = tmp_path / "run"
    with ScriptedLLMServer(_answers_then_fails(3)) as server:
        result = evolve("run", str(FIXTURE), "--model", "openai/flaky", "--api-base",
                        server.base_url, "--programs", "20", "--no-live", "--run-dir",
                        str(run_dir), "--set", "llm.retries=0", "--set", "llm.bench_after=3",
                        "--set", "concurrency.proposals=1", "--set", "concurrency.evaluations=1",
                        "--set", "islands.count=1")
    assert "warning: model openai/flaky is benched: its last 3 calls failed" in result.stdout
    assert result.returncode == 1  # no other operator: the run stops
    assert "every operator is benched" in error_line(result)
    with Archive.open(run_dir / "archive.sqlite", create=False) as archive:
        run = archive.runs()[-1]
        benches = archive.events(run.id, kind="bench")
        stored = archive.programs(run.id)
    assert len(benches) == 1 and benches[0].data["model"] == "openai/flaky"
    assert run.status == "failed" and len(stored) < 21


def test_with_offline_operators_a_run_goes_on_without_its_benched_model(tmp_path):
    # One good reply, then failures: the model is benched within its first picks, whether or
    # not the bandit would come back to it once `optimise` pays on this fixture.
    with ScriptedLLMServer(_answers_then_fails(1)) as server:
        config = engine_config(tmp_path, server, islands={"count": 1},
                               llm={"retries": 0, "bench_after": 2},
                               operators={"models": [{"name": MODEL, "api_base": server.base_url}],
                                          "use_offline": "always"},
                               concurrency={"proposals": 1, "evaluations": 1},
                               budget={"max_programs": 14})
        outcome = run(config, tmp_path)
    assert outcome.status == "completed" and outcome.programs == 14
    with open_archive(tmp_path) as archive:
        benches = archive.events(1, kind="bench")
        stored = archive.programs(1)
    assert [e.data["model"] for e in benches] == [MODEL]
    benched_at = benches[0].data["at_ingest"]
    later = [p for p in stored if p.proposal_key != "initial"
             and int(p.proposal_key.split(":")[1]) > benched_at + 2]
    # Only the default offline operators (optimise + structure) propose once the model is benched.
    offline = set(config.operators.offline)
    assert MODEL not in offline
    assert later and all(p.operator in offline for p in later)


def test_replies_are_not_model_failures(tmp_path):
    """A model that answers, but never usefully, is not stopped by the fail-fast check."""
    with ScriptedLLMServer(default=Reply("I cannot help with that.")) as server:
        config = engine_config(tmp_path, server, mutation={"max_resample": 0},
                               budget={"max_programs": 5, "stall_after": 6})
        outcome = run(config, tmp_path)
    # Not stopped as a broken model: it ends because nothing new can be proposed.
    assert outcome.status == "completed" and outcome.programs == 0
    with open_archive(tmp_path) as archive:
        assert "nothing new can be proposed" in archive.events(1, kind="stop")[-1].message

"""What a candidate can reach, at every isolation level this machine offers: host files outside
the allow-list, hidden evaluation data (also copied elsewhere), the checkout, the evolve
process's environment, processes left behind; one failure kind per exception; secrets scrubbed.

A level where a guarantee cannot be given is skipped with the reason `isolation.exposure`
states (and `evolve doctor` prints)."""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from evaluators import isolation
from evaluators.result import FailureKind
from evolve.problem.spec import load_problem
from tests.sandbox_helpers import candidate, evaluate
from tests.support.llm_server import scripted_llm_server  # noqa: F401 - fixture

REPO = Path(__file__).resolve().parents[2]
SPOT = REPO / "problems" / "spot_single"
LEVELS = list(isolation.available_levels())
ROOT = os.geteuid() == 0


def host_files_hidden(level: str) -> str:
    """'' when the candidate cannot read host files outside the allow-list at `level`, else why."""
    if level == "bwrap" or (level == "unshare" and ROOT):
        return ""
    return f"at {level}: {'; '.join(isolation.exposure(level))}"


def checkout_protected(level: str) -> str:
    if level == "bwrap" or (ROOT and isolation.uid_drop_possible(level)):
        return ""
    return f"at {level}: {'; '.join(isolation.exposure(level))}"


def environ_protected(level: str) -> str:
    # Our own PID namespace hides the parent; otherwise a throw-away uid or our non-dumpable
    # flag keeps /proc/<pid>/environ closed, unless the candidate runs as root.
    if level != "rlimits" or not ROOT or isolation.uid_drop_possible(level):
        return ""
    return f"at {level}: {'; '.join(isolation.exposure(level))}"


@pytest.mark.parametrize("level", LEVELS)
def test_a_host_file_outside_the_allow_list_is_unreadable(level, host_file):
    if why := host_files_hidden(level):
        pytest.skip(why)
    path, content = host_file
    result = evaluate(candidate("read_host_file", paths=repr([str(path)])), isolation=level,
                      stages=["quick"])
    stdout = result.stages[0].stdout
    assert "DENIED" in stdout, stdout
    assert content not in stdout + result.stages[0].stderr + result.reason


@pytest.mark.parametrize("level", LEVELS)
def test_hidden_data_and_a_copy_of_it_under_another_name_are_unreadable(level):
    if why := host_files_hidden(level):
        pytest.skip(why)
    original = SPOT / "optimum.json"
    head = original.read_bytes()[:40]
    copy = Path("/srv" if os.access("/srv", os.W_OK) else "/opt") / f"notes-{uuid.uuid4().hex}.bin"
    try:
        shutil.copyfile(original, copy)
        copy.chmod(0o644)
    except OSError:
        pytest.skip("cannot place a copy under /srv or /opt")
    try:
        paths = [str(original), str(SPOT / "data" / "single_region.json.gz"), str(copy)]
        result = evaluate(candidate("spot_read_hidden_copy", paths=repr(paths)),
                          load_problem(SPOT), isolation=level, stages=["quick"])
    finally:
        copy.unlink(missing_ok=True)
    stage = result.stages[0]
    assert stage.failure is None, stage.reason  # the evaluator itself still read its data
    assert "DENIED" in stage.stdout or "READ" in stage.stdout, stage.stdout
    assert head.decode() not in stage.stdout
    assert "\\x1f\\x8b" not in stage.stdout  # the gzip traces' magic bytes
    leaked = [line for line in stage.stdout.splitlines() if line.startswith("FD")
              and ("optimum" in line or "single_region" in line)]
    assert leaked == []  # no descriptor of the hidden files is left for the candidate


@pytest.mark.parametrize("level", LEVELS)
def test_writing_to_the_checkout_is_denied(level):
    if why := checkout_protected(level):
        pytest.skip(why)
    target = REPO / f"_escape_{uuid.uuid4().hex}.txt"
    try:
        result = evaluate(candidate("write_outside", target=target), isolation=level,
                          stages=["quick"])
        assert not target.exists()
        assert result.failure == FailureKind.SANDBOX_DENIED, (result.failure, result.reason)
    finally:
        target.unlink(missing_ok=True)


@pytest.mark.parametrize("level", LEVELS)
def test_the_parent_environment_is_unreadable(level):
    if why := environ_protected(level):
        pytest.skip(why)
    result = evaluate(candidate("read_parent_environ", parent=os.getpid()), isolation=level,
                      stages=["quick"])
    stdout = result.stages[0].stdout
    assert "DENIED" in stdout and "READ" not in stdout, stdout


def ps_lines_with(marker: str) -> list[str]:
    out = subprocess.run(["ps", "-eo", "pid,stat,args"], capture_output=True, text=True,
                         check=True).stdout
    return [line for line in out.splitlines() if marker in line and " Z" not in line]


@pytest.mark.parametrize("name", ["daemon_with_marker", "fork_flood_with_marker"])
@pytest.mark.parametrize("level", LEVELS)
def test_daemons_and_fork_floods_leave_no_process(level, name):
    if not shutil.which("ps"):
        pytest.skip("needs ps (procps)")
    marker = f"evolve-hostile-{uuid.uuid4().hex}"
    result = evaluate(candidate(name, marker=marker), isolation=level, stages=["quick"])
    assert result.stages[0].stage == "quick"
    deadline = time.monotonic() + 3
    while ps_lines_with(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert ps_lines_with(marker) == []


EXPECTED_KIND = {"PermissionError": FailureKind.SANDBOX_DENIED, "MemoryError": FailureKind.MEMORY}


@pytest.mark.parametrize("problem", ["sort_fixture", "spot_single"])
@pytest.mark.parametrize("exc", sorted(EXPECTED_KIND))
def test_one_exception_one_failure_kind_at_import_and_in_the_call(problem, exc):
    """sort_fixture lets the exception escape evaluate(); spot_single catches it and returns
    "invalid": the kind is the same either way, at import and in the call."""
    spec = load_problem(SPOT) if problem == "spot_single" else None
    names = (["spot_raise_at_import", "spot_raise_in_call"] if problem == "spot_single"
             else ["raise_at_import", "raise_in_call"])
    kinds = {}
    for name in names:
        result = evaluate(candidate(name, exc=exc), spec, stages=["quick"])
        kinds[name] = (result.failure, result.reason)
    assert {k for k, _ in kinds.values()} == {EXPECTED_KIND[exc]}, kinds


def test_same_exception_kind_mapping_covers_errno_denials():
    from evaluators.validate import classify_exception

    denied = PermissionError(errno.EACCES, "Permission denied")
    assert classify_exception(denied, Path("program.py"))[0] == "sandbox-denied"
    assert classify_exception(MemoryError(), Path("program.py"))[0] == "memory"


def test_an_echoed_secret_never_reaches_the_archive_or_a_prompt(tmp_path, monkeypatch,
                                                               scripted_llm_server):  # noqa: F811
    """The candidate finds a secret of the evolve process (here: decodes it, as it could after
    reading a file at a weak level) and prints it, writes it to stderr and raises it: stdout,
    stderr, reason and feedback in the archive and every later prompt carry a marker instead."""
    from tests.engine.engine_support import engine_config, open_archive, run
    from tests.support.llm_server import Reply

    secret = f"sk-live-{uuid.uuid4().hex}"
    monkeypatch.setenv("EVOLVE_HOSTILE_API_KEY", secret)
    leak = (f"import sys\nSECRET = bytes.fromhex('{secret.encode().hex()}').decode()\n"
            f"print(SECRET)\nsys.stderr.write(SECRET)\nVALUE = float(SECRET)")

    count = iter(range(1, 1000))

    def respond(request):
        if "recommendations" in request["messages"][-1]["content"]:
            return Reply("- keep going")
        user = next(m["content"] for m in request["messages"] if m["role"] == "user")
        old = re.search(r"^VALUE = (.+)$", user, re.MULTILINE).group(1)
        return Reply(f"Leak it.\n<<<<<<< SEARCH\nVALUE = {old}\n=======\n{leak} + {next(count)}\n"
                     f">>>>>>> REPLACE\n")

    server = scripted_llm_server(respond)
    config = engine_config(tmp_path, server, budget={"max_programs": 3},
                           concurrency={"proposals": 1, "evaluations": 1},
                           mutation={"mix": {"diff": 1.0}, "repair_rate": 1.0,
                                     "max_resample": 1})
    outcome = run(config, tmp_path)
    with open_archive(tmp_path) as archive:
        failed = [p for p in archive.programs(outcome.run_id) if p.proposal_key != "initial"]
    assert failed, "the leaking program was evaluated and stored"
    stored = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    assert secret.encode() not in stored
    assert b"[secret $EVOLVE_HOSTILE_API_KEY removed]" in stored
    prompts = json.dumps([r.json for r in server.chat_requests])
    assert len(server.chat_requests) >= 3 and "SECRET" in prompts  # repair prompts went out
    assert secret not in prompts


def test_a_run_starts_by_saying_what_the_sandbox_exposes(tmp_path):
    import asyncio

    from evolve.engine.session import run_session
    from tests.engine.engine_support import engine_config

    config = engine_config(tmp_path, budget={"max_programs": 1},
                           operators={"models": [], "use_offline": "always"})
    lines: list[str] = []
    asyncio.run(run_session(config, tmp_path, resume=False, handle_signals=False,
                            log=lines.append, on_progress=None))
    level = isolation.available_levels()[0]
    assert lines and lines[0].startswith(f"sandbox: {isolation.DESCRIPTIONS[level]}")
    assert "; exposed: " + "; ".join(isolation.exposure(level)) in lines[0]

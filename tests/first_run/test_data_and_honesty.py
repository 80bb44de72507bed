"""Nothing a user owns is overwritten, and nothing that cannot work exits 0 (issue 25, "Data and
honesty"): each mistake is refused by `evolve` itself, run as a user runs it (a subprocess,
keys taken out of the environment), before anything is written where it can be."""

from __future__ import annotations

import shutil
from pathlib import Path

from db import Archive
from tests.first_run.support import REPO, TOY, evolve


def _tree(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` with its bytes (to see that nothing changed)."""
    return {str(p.relative_to(folder)): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def _toy_copy(tmp_path: Path, name: str = "mine") -> Path:
    folder = tmp_path / name
    shutil.copytree(TOY, folder, ignore=shutil.ignore_patterns("__pycache__"))
    return folder


# ---------------------------------------------------------------- a folder that is not a run

def test_run_refuses_a_folder_that_holds_the_users_files_and_writes_nothing(tmp_path):
    mine = tmp_path / "experiment"
    (mine / "best").mkdir(parents=True)
    (mine / "config.toml").write_text("# my own settings\nseed = 42\n")
    (mine / "best" / "program.py").write_text("print('my best program')\n")
    before = _tree(mine)
    done = evolve("run", str(TOY), "--programs", "2", "--run-dir", str(mine), cwd=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    [line] = _error_lines(done.stderr)
    assert str(mine) in line and "holds no run" in line and "--run-dir" in line
    assert "best" in line and "config.toml" in line     # what it found there
    assert _tree(mine) == before                         # not one byte written or replaced
    assert sorted(p.name for p in mine.iterdir()) == ["best", "config.toml"]


def test_run_may_start_in_an_empty_folder(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    done = evolve("run", str(TOY), "--programs", "1", "--run-dir", str(empty), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (empty / "archive.sqlite").is_file()


def test_resume_of_a_problem_folder_refuses_without_suggesting_a_run_inside_it(tmp_path):
    problem = _toy_copy(tmp_path)
    before = _tree(problem)
    done = evolve("resume", str(problem), cwd=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    [line] = _error_lines(done.stderr)
    assert "is a problem folder, not a run directory" in line
    assert f"`evolve run {problem}`" in line
    assert "--run-dir" not in line                       # never "run it into this folder"
    assert _tree(problem) == before


# ---------------------------------------------------------------- an invalid initial program

def test_an_initial_program_with_a_syntax_error_stops_the_run_and_its_resume(tmp_path):
    problem = _toy_copy(tmp_path)
    (problem / "initial.py").write_text("def solve(:\n    return 2.5, 4.0\n")
    run_dir = tmp_path / "run"
    done = evolve("run", str(problem), "--programs", "20", "--no-live", "--run-dir",
                  str(run_dir), cwd=tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    [line] = _error_lines(done.stderr)
    assert "the initial program of toy_objective is invalid" in line
    assert "syntax" in line and str(problem / "initial.py") in line and "evolve eval" in line
    assert "run completed" not in done.stdout
    with Archive.open(run_dir / "archive.sqlite", create=False) as archive:
        run = archive.runs()[-1]
        assert run.status == "failed"
        assert [p.proposal_key for p in archive.programs(run.id)] == ["initial"]

    again = evolve("resume", str(run_dir), "--no-live", cwd=tmp_path)
    assert again.returncode == 1, again.stdout + again.stderr
    [line] = _error_lines(again.stderr)
    assert "the initial program of toy_objective is invalid" in line and "syntax" in line
    with Archive.open(run_dir / "archive.sqlite", create=False) as archive:
        run = archive.runs()[-1]
        assert run.status == "failed"
        assert [p.proposal_key for p in archive.programs(run.id)] == ["initial"]


# ---------------------------------------------------------------- a missing API key

def test_a_named_model_without_its_key_is_refused_before_a_run_directory_exists(tmp_path):
    run_dir = tmp_path / "run"
    done = evolve("run", str(TOY), "--model", "openai/gpt-4.1-mini", "--programs", "3",
                  "--no-live", "--run-dir", str(run_dir), cwd=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.count("\n") == 1, done.stderr     # one line
    [line] = _error_lines(done.stderr)
    assert "openai/gpt-4.1-mini" in line and "OPENAI_API_KEY is not set" in line
    assert not run_dir.exists()


def test_models_check_names_the_missing_key_at_once_without_loading_litellm(tmp_path):
    done = evolve("models", "check", "--model", "anthropic/claude-haiku-4-5", cwd=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    [line] = _error_lines(done.stderr)
    assert "ANTHROPIC_API_KEY is not set" in line
    # "At once": litellm's import alone takes seconds; the key check must not need it.
    timed = evolve("models", "check", "--model", "anthropic/claude-haiku-4-5", cwd=tmp_path,
                   PYTHONPROFILEIMPORTTIME="1")
    imported = [line.split("|")[-1].strip() for line in timed.stderr.splitlines()
                if line.startswith("import time:")]
    assert "evolve.cli" in imported and "litellm" not in imported


def test_the_key_table_agrees_with_litellm(monkeypatch):
    """The variables named without importing litellm are the ones litellm itself asks for."""
    from evolve.operators.keys import PROVIDER_KEY_ENV
    from evolve.operators.llm import litellm_module

    litellm = litellm_module()
    for provider, names in PROVIDER_KEY_ENV.items():
        for name in names:
            monkeypatch.delenv(name, raising=False)
        missing = litellm.validate_environment(model=f"{provider}/some-model")["missing_keys"]
        assert set(names) == set(missing), (provider, names, missing)


# ---------------------------------------------------------------- missing `requires`

def _without_torch(tmp_path: Path) -> dict[str, str]:
    """An environment in which `torch` cannot be found, as on a machine without the extra."""
    hide = tmp_path / "hide_torch"
    hide.mkdir()
    (hide / "sitecustomize.py").write_text(
        "import sys\n"
        "class _NoTorch:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'torch' or name.startswith('torch.'):\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, _NoTorch())\n")
    return {"PYTHONPATH": f"{hide}:{REPO}"}


def test_a_problem_whose_requires_are_missing_is_refused_with_the_install_command(tmp_path):
    run_dir = tmp_path / "run"
    done = evolve("run", "eplb", "--programs", "2", "--no-live", "--run-dir", str(run_dir),
                  cwd=tmp_path, **_without_torch(tmp_path))
    assert done.returncode == 2, done.stdout + done.stderr
    [line] = _error_lines(done.stderr)
    assert "problem eplb needs torch" in line and "-m pip install torch==" in line
    assert "evaluate.py" not in line                     # not "fix" a built-in file
    assert not run_dir.exists()


def test_a_problem_of_ones_own_with_a_missing_requirement_is_refused(tmp_path):
    problem = _toy_copy(tmp_path)
    toml = (problem / "problem.toml").read_text()
    (problem / "problem.toml").write_text(toml.replace(
        "[function]", 'requires = ["evolve_no_such_module>=1"]\n\n[function]'))
    done = evolve("run", str(problem), "--no-live", "--run-dir", str(tmp_path / "run"),
                  cwd=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    [line] = _error_lines(done.stderr)
    assert "needs evolve_no_such_module>=1" in line
    assert "-m pip install 'evolve_no_such_module>=1'" in line
    assert not (tmp_path / "run").exists()


def test_the_discovery_benchmark_skips_a_problem_whose_requires_are_missing(tmp_path):
    import subprocess
    import sys

    from tests.first_run.support import evolve_env

    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "discovery.py"), "--problems", "eplb",
         "--programs", "2", "--seeds", "1", "--run-root", str(tmp_path / "runs")],
        cwd=tmp_path, env=evolve_env(**_without_torch(tmp_path)), capture_output=True,
        text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "skipping eplb: problem eplb needs torch" in done.stdout
    assert "-m pip install torch==" in done.stdout
    assert not any((tmp_path / "runs").glob("eplb-*"))  # no run was started


# ---------------------------------------------------------------- problems check --repeat

def test_problems_check_repeat_counts_every_evaluation_and_shows_each_invalid_ones_reason(
        tmp_path):
    """An evaluator that, like a machine under load, now and then fails a program it passes
    otherwise: every one of the K evaluations decides `ok`, and each invalid one is listed
    with its cause (each evaluation is invalid with probability 1/2: all 12 valid, which
    would leave nothing to show, has a chance of 1 in 4096)."""
    problem = _toy_copy(tmp_path)
    (problem / "baselines").rename(tmp_path / "no_baselines")   # the initial program only
    evaluator = problem / "evaluate.py"
    evaluator.write_text(evaluator.read_text().replace("def evaluate(", "def _evaluate(") + '''

def evaluate(program_path, stage):
    import random

    if random.SystemRandom().random() < 0.5:
        return {"score": 0.0, "valid": False, "metrics": {},
                "feedback": "coin toss lost: the scorer saw a flaky measurement"}
    return _evaluate(program_path, stage)
''')
    done = evolve("problems", "check", str(problem), "--repeat", "12", cwd=tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    invalid = [line for line in done.stdout.splitlines()
               if line.startswith("initial: evaluation ")]
    assert invalid, done.stdout
    for line in invalid:
        assert "of 12 not valid: stage 'full', invalid-output: the evaluator rejected the " \
               "output: coin toss lost" in line
    valid = 12 - len(invalid)
    if valid:
        assert f"only {valid} of 12 runs valid" in done.stdout
    assert "not valid: initial" in done.stdout

    as_json = evolve("problems", "check", str(problem), "--repeat", "12", "--json",
                     cwd=tmp_path)
    assert as_json.returncode == 1
    import json

    report = json.loads(as_json.stdout)
    assert report["ok"] is False
    repeats = report["invalid_repeats"]["initial"]
    assert repeats and all("coin toss lost" in r["reason"] for r in repeats)
    assert report["programs"]["initial"]["valid"] is False   # shown by an invalid evaluation


# ---------------------------------------------------------------- invalid results carry a cause

KILLS_ITSELF = """import os
import signal


def solve():
    os.kill(os.getpid(), signal.SIGKILL)   # what the out-of-memory killer does to a process
    return 2.5, 4.0
"""


def test_a_program_killed_by_sigkill_below_every_limit_says_so_and_names_the_suspects(tmp_path):
    program = tmp_path / "killed.py"
    program.write_text(KILLS_ITSELF)
    done = evolve("eval", str(TOY), str(program), "--json", cwd=tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    import json

    result = json.loads(done.stdout)
    assert result["valid"] is False and result["failure"] == "crash"
    reason = result["reason"]
    assert "killed by SIGKILL at" in reason and "MB resident" in reason
    assert "below the sandbox's limits (memory 320 MB, CPU 4 s)" in reason
    assert "by the program itself or from outside the sandbox" in reason
    assert "the kernel's out-of-memory killer ended" in reason   # looked at, either way


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parent = int(stat[stat.rindex(")") + 2:].split()[1])
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _uid(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("Uid:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def test_a_sandbox_killed_from_outside_comes_back_with_how_it_ended(tmp_path):
    """The whole sandbox is SIGKILLed from outside while the program runs (as the machine's
    out-of-memory killer or a user's `kill` would): the result says by which signal, that
    nothing arrived on the result channel, and what the out-of-memory killer did meanwhile,
    instead of a bare "ended without a result (exit code -9)"."""
    import json
    import os
    import signal
    import subprocess
    import sys
    import time

    import pytest

    from tests.first_run.support import evolve_env

    if os.geteuid() != 0:
        pytest.skip("finds the running program by the throw-away uid a root run gives it")
    problem = _toy_copy(tmp_path)
    toml = problem / "problem.toml"
    toml.write_text(toml.read_text().replace("timeout_s = 2", "timeout_s = 120")
                    .replace("cpu_seconds = 4", "cpu_seconds = 120"))
    program = tmp_path / "slow.py"
    program.write_text("import time\n\n\ndef solve():\n    time.sleep(60)\n    return 2.5, 4.0\n")
    proc = subprocess.Popen([sys.executable, "-m", "evolve", "eval", str(problem), str(program),
                             "--json"], cwd=tmp_path, env=evolve_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:   # until the program runs under its own uid
            if any((_uid(p) or 0) >= 1_800_000 for p in _descendants(proc.pid)):
                break
            time.sleep(0.1)
        else:
            pytest.skip("the program never ran under a throw-away uid here")
        for pid in _descendants(proc.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 1, out + err
    result = json.loads(out)
    assert result["valid"] is False and result["failure"] == "crash"
    reason = result["reason"]
    assert "the evaluation ended without a result: its process was killed by SIGKILL" in reason
    assert "nothing arrived on the result channel" in reason
    assert "the kernel's out-of-memory killer ended" in reason

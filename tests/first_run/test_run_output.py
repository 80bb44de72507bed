"""What `evolve run` tells a new user: where the results are (first) and how the run ended
(last), piped and on a terminal; the --config file's problem; one exit-code rule."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tomllib

from tests.first_run.support import TOY, evolve, evolve_env, evolve_on_terminal


def test_live_view_on_a_terminal_keeps_directory_and_summary_in_the_scrollback(tmp_path):
    run_dir = tmp_path / "live"
    code, text = evolve_on_terminal("run", str(TOY), "--programs", "3", "--run-dir",
                                    str(run_dir), cwd=tmp_path)
    assert code == 0, text
    assert f"in {run_dir}" in text                 # the start line, above the panel
    summary = text.rindex("run completed: program budget 3 reached")
    assert text.rindex("╰") < summary, "the summary comes after the live panel closed"
    assert "best program in" in text[summary:] and "best" in text[summary:]


def test_piped_run_from_a_config_file_prints_its_directory_first_and_the_summary_last(tmp_path):
    """The --config file's `problem` is used when the argument is absent."""
    config = tmp_path / "toy.toml"
    config.write_text(f'problem = "{TOY}"\n[budget]\nmax_programs = 3\n')
    run_dir = tmp_path / "from-config"
    done = evolve("run", "--config", str(config), "--run-dir", str(run_dir), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert tomllib.loads((run_dir / "config.toml").read_text())["problem"] == str(TOY)
    lines = done.stdout.strip().splitlines()
    start = next(line for line in lines if line.startswith("run 1 on toy_objective"))
    assert f"in {run_dir}" in start
    summary = lines[-2]
    assert summary.startswith("run completed: program budget 3 reached; 3 programs evaluated")
    assert summary.endswith(f"best program in {run_dir / 'best'}")
    assert "$0.0000" in summary    # offline operators: a true zero, not an unknown price
    assert lines[-1].startswith("next: `evolve best ")


def test_a_problem_argument_that_differs_from_the_config_file_is_an_error(tmp_path):
    config = tmp_path / "cp.toml"
    config.write_text('problem = "circle_packing"\n')
    done = evolve("run", "txn", "--config", str(config), "--run-dir", str(tmp_path / "x"),
                  cwd=tmp_path)
    assert done.returncode == 2
    assert "'txn'" in done.stderr and '"circle_packing"' in done.stderr
    assert not (tmp_path / "x").exists()


def test_the_same_problem_spelled_as_a_name_and_as_a_folder_is_not_a_conflict(tmp_path):
    config = tmp_path / "toy.toml"
    config.write_text(f'problem = "{TOY}"\n[budget]\nmax_programs = 2\n')
    relative = os.path.relpath(TOY, tmp_path)
    done = evolve("run", relative, "--config", str(config), "--run-dir", str(tmp_path / "x"),
                  cwd=tmp_path)
    assert done.returncode == 0, done.stderr


def test_no_problem_anywhere_is_an_error_that_says_what_to_pass(tmp_path):
    done = evolve("run", cwd=tmp_path)
    assert done.returncode == 2
    assert "name a problem" in done.stderr


def test_ctrl_c_ends_a_run_with_exit_1_and_says_how_to_continue(tmp_path):
    run_dir = tmp_path / "stopped"
    proc = subprocess.Popen([sys.executable, "-m", "evolve", "run", str(TOY), "--programs",
                             "500", "--run-dir", str(run_dir), "--no-live"], cwd=tmp_path,
                            env=evolve_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:          # wait until programs are flowing
        lines.append(line)
        if "| evaluated 2/500 |" in line:
            break
    proc.send_signal(signal.SIGINT)
    rest, _ = proc.communicate(timeout=120)
    assert proc.returncode == 1
    last = rest.strip().splitlines()[-1]
    assert last.startswith("run interrupted (not complete; continue it with `evolve resume")
    assert "interrupted: interrupted" not in rest


def test_eval_exit_code_follows_the_rule(tmp_path):
    good = evolve("eval", str(TOY), str(TOY / "initial.py"), cwd=tmp_path)
    assert good.returncode == 0, good.stdout + good.stderr
    broken = tmp_path / "broken.py"
    broken.write_text("def solve(:\n")
    bad = evolve("eval", str(TOY), str(broken), cwd=tmp_path)
    assert bad.returncode == 1 and "not valid" in bad.stdout
    as_json = evolve("eval", str(TOY), str(broken), "--json", cwd=tmp_path)
    assert as_json.returncode == 1 and json.loads(as_json.stdout)["valid"] is False
    missing = evolve("eval", str(TOY), str(tmp_path / "nope.py"), cwd=tmp_path)
    assert missing.returncode == 2


def test_resume_with_a_new_budget_updates_status_and_config(tmp_path):
    run_dir = tmp_path / "grow"
    first = evolve("run", str(TOY), "--programs", "2", "--run-dir", str(run_dir), cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    more = evolve("resume", str(run_dir), "--programs", "4", "--no-live", cwd=tmp_path)
    assert more.returncode == 0, more.stderr
    assert tomllib.loads((run_dir / "config.toml").read_text())["budget"]["max_programs"] == 4
    status = json.loads(evolve("status", str(run_dir), "--json", cwd=tmp_path).stdout)
    programs = next(b for b in status["budgets"] if b["name"] == "programs")
    assert (programs["used"], programs["limit"]) == (4, 4)
    shown = evolve("status", str(run_dir), cwd=tmp_path, COLUMNS="80").stdout
    assert "4 / 4" in shown and "/ 2" not in shown


def test_a_local_model_without_its_extra_is_refused_before_anything_is_written(tmp_path):
    from evolve.operators.local_model import missing_local_extra

    if missing_local_extra() is None:
        import pytest
        pytest.skip("the local extra is installed here (the slow README test runs it)")
    done = evolve("run", "circle_packing", "--model", "local/smollm2", "--programs", "6",
                  "--no-live", "--run-dir", str(tmp_path / "local"), cwd=tmp_path)
    assert done.returncode == 2
    assert "scripts/setup.sh --local" in done.stderr
    assert not (tmp_path / "local").exists()

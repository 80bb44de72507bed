"""`evolve run` / `evolve resume` argument handling (exit code 2, nothing written on errors)."""

from __future__ import annotations

from typer.testing import CliRunner

from evolve.cli import app
from tests.engine.engine_support import FIXTURE

runner = CliRunner()


def test_unknown_problem_is_a_usage_error_and_writes_nothing(tmp_path):
    result = runner.invoke(app, ["run", "no_such_problem", "--run-dir", str(tmp_path / "r")])
    assert result.exit_code == 2 and "no problem named 'no_such_problem'" in result.output
    assert not (tmp_path / "r").exists()


def test_bad_override_and_api_base_without_model(tmp_path):
    result = runner.invoke(app, ["run", str(FIXTURE), "--set", "budget.max_progs=3",
                                 "--run-dir", str(tmp_path / "r")])
    assert result.exit_code == 2 and "unknown key 'budget.max_progs'" in result.output
    result = runner.invoke(app, ["run", str(FIXTURE), "--api-base", "http://127.0.0.1:1/v1",
                                 "--run-dir", str(tmp_path / "r")])
    assert result.exit_code == 2 and "--api-base needs --model" in result.output
    assert not (tmp_path / "r").exists()


def test_offline_run_then_refuse_to_overwrite_and_resume_with_a_bigger_budget(tmp_path):
    run_dir = tmp_path / "r"
    result = runner.invoke(app, ["run", str(FIXTURE), "--programs", "3", "--run-dir",
                                 str(run_dir), "--no-live", "--set", "islands.count=1"])
    assert result.exit_code == 0, result.output
    assert "operators: built-in offline" in result.output and "| evaluated 3/3 |" in result.output
    assert (run_dir / "best" / "program.py").is_file() and (run_dir / "config.toml").is_file()
    again = runner.invoke(app, ["run", str(FIXTURE), "--run-dir", str(run_dir)])
    assert again.exit_code == 2 and "evolve resume" in again.output
    more = runner.invoke(app, ["resume", str(run_dir), "--programs", "5", "--no-live"])
    assert more.exit_code == 0, more.output
    assert "resuming run 1: 3 programs committed" in more.output and "| evaluated 5/5 |" in more.output


def test_a_run_directory_in_use_is_refused(tmp_path):
    from evolve.engine.run_files import run_lock

    run_dir = tmp_path / "r"
    with run_lock(run_dir):  # as if another evolve process were running there
        result = runner.invoke(app, ["run", str(FIXTURE), "--programs", "1", "--run-dir",
                                     str(run_dir)])
    assert result.exit_code == 2 and "in use by another evolve process" in result.output
    assert not (run_dir / "archive.sqlite").exists()


def test_an_archive_without_a_run_does_not_block_a_new_run(tmp_path):
    from db import Archive

    run_dir = tmp_path / "r"
    Archive.open(run_dir / "archive.sqlite").close()  # a run killed right after creating it
    result = runner.invoke(app, ["run", str(FIXTURE), "--programs", "1", "--run-dir",
                                 str(run_dir), "--set", "islands.count=1"])
    assert result.exit_code == 0, result.output

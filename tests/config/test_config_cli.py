"""`evolve config show` prints the effective configuration; a bad one exits 2 with the reason."""

from __future__ import annotations

import tomllib

import pytest
from typer.testing import CliRunner

from evolve.cli import app
from evolve.config import load_config


def test_show_prints_effective_config_as_toml(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text("seed = 9\n[budget]\nmax_programs = 30\n")
    result = CliRunner().invoke(app, ["config", "show", "--config", str(path),
                                      "--set", "budget.max_programs=12", "--set", "islands.count=3"])
    assert result.exit_code == 0, result.output
    shown = tomllib.loads(result.stdout)
    assert shown["seed"] == 9 and shown["budget"]["max_programs"] == 12
    assert shown["islands"]["count"] == 3
    assert "\x1b[" not in result.stdout
    assert load_config(None, [], base=shown) == load_config(
        path, ["budget.max_programs=12", "islands.count=3"])


def test_show_with_defaults_only():
    result = CliRunner().invoke(app, ["config", "show"])
    assert result.exit_code == 0
    assert tomllib.loads(result.stdout)["problem"] == "circle_packing"


@pytest.mark.parametrize("args, expected", [
    (["--set", "budget.max_programz=3"], "unknown key 'budget.max_programz'"),
    (["--set", "budget.max_programs=lots"], "key 'budget.max_programs': expected int | None"),
    (["--set", "budget.max_programs"], "must look like dotted.key=value"),
    (["--config", "/nonexistent/evolve.toml"], "not found"),
])
def test_errors_exit_2_with_a_message_and_no_output(args, expected):
    result = CliRunner().invoke(app, ["config", "show", *args])
    assert result.exit_code == 2
    assert expected in result.stderr
    assert result.stdout == ""


def test_bad_toml_file_exits_2(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("seed = = 1\n")
    result = CliRunner().invoke(app, ["config", "show", "--config", str(path)])
    assert result.exit_code == 2 and "is not valid TOML" in result.stderr

"""Piped output at 80 columns is plain lines, never a squeezed table; texts say what they mean."""

from __future__ import annotations

import tomllib

from typer.testing import CliRunner

from evolve.cli import app
from evolve.cli.config_doc import unset_keys
from evolve.config import load_config, to_toml
from tests.first_run.support import REPO, TOY, evolve


def test_eval_piped_at_80_columns_prints_one_metric_per_line(tmp_path):
    done = evolve("eval", "spot_single", str(REPO / "problems/spot_single/initial.py"),
                  cwd=tmp_path, COLUMNS="80")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    # Whole metric names with their brackets (rich markup used to eat "[us-west-2a_k80_1]").
    assert any(line.startswith("  mean_cost[us-west-2a_k80_1] = ") for line in lines)
    assert any(line.startswith("initial.py stage full: score -106.413, valid") for line in lines)
    assert not any(ch in done.stdout for ch in "┃│┏━"), "no table when piped"
    assert len(lines) < 80          # a squeezed table took ~190 lines


def test_problems_check_piped_prints_plain_lines(tmp_path):
    done = evolve("problems", "check", str(TOY), cwd=tmp_path, COLUMNS="80")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "initial stage full: score" in done.stdout
    assert not any(ch in done.stdout for ch in "┃│┏━")
    assert "ok: every program is valid" in done.stdout


def test_models_check_hint_keeps_its_brackets_and_is_not_cut():
    result = CliRunner().invoke(app, ["models", "check"], terminal_width=80)
    assert result.exit_code == 2
    assert "or add [[operators.models]] to the config" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_config_show_lists_every_unset_key_with_its_meaning():
    result = CliRunner().invoke(app, ["config", "show"])
    assert result.exit_code == 0
    text = result.output
    assert tomllib.loads(text) == tomllib.loads(to_toml(load_config()))   # comments only
    for path in unset_keys(load_config()):
        assert f"# {path[-1]} =   (unset: " in text, path
    for key in ("max_usd", "max_minutes", "target_score", "evaluations", "memory_mb", "url"):
        assert f"# {key} =   (unset: " in text
    budget = text[text.index("[budget]"):text.index("[sandbox]")]
    assert "# max_usd =   (unset: no dollar limit)" in budget


def test_readme_price_example_sets_a_price():
    result = CliRunner().invoke(app, [
        "config", "show",
        "--set", 'llm.prices."openai/gpt-4.1-mini".input_per_mtok=0.4',
        "--set", 'llm.prices."openai/gpt-4.1-mini".output_per_mtok=1.6'])
    assert result.exit_code == 0, result.output
    price = tomllib.loads(result.output)["llm"]["prices"]["openai/gpt-4.1-mini"]
    assert price == {"input_per_mtok": 0.4, "output_per_mtok": 1.6}


def test_version_and_flags_without_a_value_placeholder():
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.startswith("evolve (adrs-evolve) ")
    for command in (["run"], ["resume"], ["show"], ["doctor"], ["eval"]):
        help_text = CliRunner().invoke(app, [*command, "--help"], terminal_width=100).output
        assert "<bool>" not in help_text, command
    run_help = CliRunner().invoke(app, ["run", "--help"], terminal_width=100).output
    assert "--no-live" in run_help and "<int>" in run_help   # valued options keep theirs

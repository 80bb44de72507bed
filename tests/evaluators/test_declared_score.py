"""problem.toml `[score]`: the program's score and metrics are declared, not "the last stage";
`problems check` fails on `[metrics]` names absent from the final metrics and on a program
stopped at a gate, and `--repeat K` reports the score's spread."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from evolve.cli import app
from evolve.problem.spec import ProblemError, load_problem
from tests.sandbox_helpers import FIXTURES, evaluate

runner = CliRunner()
PROBE = FIXTURES / "probe_problem"
SORT = FIXTURES / "sort_problem"


def copy_with(source: Path, tmp_path: Path, extra_toml: str, replace: tuple[str, str] = ("", "")
              ) -> Path:
    root = tmp_path / source.name
    shutil.copytree(source, root)
    root.chmod(0o755)
    toml = root / "problem.toml"
    text = toml.read_text().replace(*replace) if replace[0] else toml.read_text()
    toml.write_text(text + "\n" + extra_toml)
    return root


def probe(value: str) -> str:
    return f"def solve():\n    return {value}\n"


def test_without_a_declaration_the_last_stage_scores(tmp_path: Path):
    result = evaluate(probe("3"), load_problem(PROBE))
    assert result.score == 6.0 and result.final_score is None
    assert result.metrics == result.stages[-1].metrics


def test_a_declared_stage_is_the_program_score(tmp_path: Path):
    root = copy_with(PROBE, tmp_path, '[score]\nstage = "first"\nmetrics_from = ["first"]\n')
    result = evaluate(probe("3"), load_problem(root))
    assert [s.stage for s in result.stages] == ["first", "second"]
    assert result.score == 3.0 and result.program_score == 3.0   # not the last stage's 6.0
    assert result.metrics == result.stages[0].metrics
    assert result.feedback == "solve() returned 3"


def test_a_weighted_combination_of_stage_scores(tmp_path: Path):
    root = copy_with(PROBE, tmp_path, '[score]\nweights = { first = 0.25, second = 0.5 }\n')
    result = evaluate(probe("4"), load_problem(root))
    assert result.score == pytest.approx(0.25 * 4 + 0.5 * 8)
    assert result.metrics == result.stages[-1].metrics       # metrics_from left out: last stage


def test_metrics_merge_in_declared_order(tmp_path: Path):
    root = copy_with(PROBE, tmp_path, '[score]\nstage = "second"\n'
                                      'metrics_from = ["second", "first"]\n')
    result = evaluate(probe("2"), load_problem(root))
    # Both stages report "start"; the stage named later wins.
    assert result.metrics["start"] == result.stages[0].metrics["start"]
    assert result.metrics["start"] != result.stages[1].metrics["start"]


def test_a_program_stopped_at_a_gate_keeps_the_gate_score(tmp_path: Path):
    root = copy_with(PROBE, tmp_path, '[score]\nstage = "second"\n')
    result = evaluate(probe("0.25"), load_problem(root))
    assert result.stage_reached == "first" and result.final_score is None
    assert result.program_score == 0.25


def test_a_declaration_naming_an_unknown_stage_is_refused(tmp_path: Path):
    root = copy_with(PROBE, tmp_path, '[score]\nstage = "thrid"\n')
    with pytest.raises(ProblemError, match="thrid"):
        load_problem(root)
    root2 = copy_with(PROBE, tmp_path / "b", '[score]\nstage = "first"\nweights = { first = 1 }\n')
    with pytest.raises(ProblemError, match="not both"):
        load_problem(root2)


def test_check_fails_when_a_feature_is_absent_from_the_final_metrics(tmp_path: Path):
    root = copy_with(SORT, tmp_path, '[metrics]\nshown = ["n"]\nfeatures = ["seconds", "depth"]\n')
    res = runner.invoke(app, ["problems", "check", str(root), "--json"])
    assert res.exit_code == 1, res.output
    data = json.loads(res.output)
    assert data["ok"] is False
    assert any("features names depth" in line for line in data["problems"])
    assert not any("shown" in line for line in data["problems"])
    # The same names, all present: ok.
    fixed = copy_with(SORT, tmp_path / "b", '[metrics]\nshown = ["n"]\nfeatures = ["seconds"]\n')
    assert runner.invoke(app, ["problems", "check", str(fixed)]).exit_code == 0


def test_check_reports_a_program_stopped_by_a_gate(tmp_path: Path):
    # Scores are 1 / (1 + seconds) <= 1: a threshold of 2 stops every program at "quick".
    root = copy_with(SORT, tmp_path, "", replace=("threshold = 0.5", "threshold = 2.0"))
    res = runner.invoke(app, ["problems", "check", str(root)])
    assert res.exit_code == 1, res.output
    assert "stopped by the gate of stage 'quick'" in res.output
    assert "ok: every program" not in res.output


def test_repeat_reports_the_spread_of_each_program(tmp_path: Path):
    res = runner.invoke(app, ["problems", "check", str(SORT), "--repeat", "3", "--json"])
    assert res.exit_code == 0, res.output
    spread = json.loads(res.output)["spread"]
    assert set(spread) == {"initial", "baseline:insertion"}
    for found in spread.values():
        assert found["runs"] == 3 and found["valid_runs"] == 3
        assert found["minimum"] <= found["mean"] <= found["maximum"]
        assert found["range"] == pytest.approx(found["maximum"] - found["minimum"])
        assert found["std"] is not None and found["std"] >= 0
    text = runner.invoke(app, ["problems", "check", str(SORT), "--repeat", "2"]).output
    assert "score over 2 evaluations" in text and "initial: mean" in text

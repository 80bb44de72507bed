"""`evolve eval` and `evolve problems check` through the real CLI and sandbox."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from typer.testing import CliRunner

from evolve.cli import app
from tests.sandbox_helpers import FIXTURES, HOSTILE

runner = CliRunner()
SORT = FIXTURES / "sort_problem"


def test_eval_json_of_a_good_program():
    res = runner.invoke(app, ["eval", str(SORT), str(SORT / "initial.py"), "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["valid"] is True and data["stage_reached"] == "full"
    assert [s["stage"] for s in data["stages"]] == ["quick", "full"]
    assert data["isolation"]


def test_eval_of_a_failing_program_exits_one():
    res = runner.invoke(app, ["eval", str(SORT), str(HOSTILE / "syntax_error.py")])
    assert res.exit_code == 1, res.output   # the README's rule: the checked thing failed
    assert "syntax" in res.output and "not valid" in res.output


def test_eval_one_stage():
    res = runner.invoke(app, ["eval", str(SORT), str(SORT / "initial.py"), "--stage", "full",
                              "--json"])
    assert res.exit_code == 0
    assert [s["stage"] for s in json.loads(res.output)["stages"]] == ["full"]


def test_eval_usage_errors_exit_two(tmp_path: Path):
    assert runner.invoke(app, ["eval", str(SORT), str(tmp_path / "nope.py")]).exit_code == 2
    assert runner.invoke(app, ["eval", str(tmp_path), str(SORT / "initial.py")]).exit_code == 2
    res = runner.invoke(app, ["eval", str(SORT), str(SORT / "initial.py"), "--stage", "zzz"])
    assert res.exit_code == 2 and "no stage zzz" in res.output


def test_check_scores_initial_and_baselines():
    res = runner.invoke(app, ["problems", "check", str(SORT), "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["ok"] is True
    assert set(data["programs"]) == {"initial", "baseline:insertion"}
    for program in data["programs"].values():
        assert [s["stage"] for s in program["stages"]] == ["quick", "full"]
        assert all(s["valid"] and s["wall_s"] > 0 for s in program["stages"])


def test_check_table_and_failure_exit(tmp_path: Path):
    root = tmp_path / "sorty"
    shutil.copytree(SORT, root)
    root.chmod(0o755)
    (root / "baselines" / "broken.py").write_text("def solve(xs):\n    return xs[::-1]\n")
    res = runner.invoke(app, ["problems", "check", str(root)])
    assert res.exit_code == 1, res.output
    assert "baseline:broken" in res.output and "not valid" in res.output
    assert "baseline:insertion" in res.output

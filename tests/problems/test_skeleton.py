"""`evolve problems new` writes a problem that validates and whose evaluator really judges."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from evolve.cli import app
from evolve.problem.scaffold import write_skeleton
from evolve.problem.spec import EVOLVE_BLOCK_END, EVOLVE_BLOCK_START, ProblemError, load_problem

REPO_ROOT = Path(__file__).resolve().parents[2]

# Run the problem's evaluator in a fresh interpreter, from the problem folder, as the sandbox does.
RUN_EVALUATE = (
    "import json, sys, evaluate\n"
    "print(json.dumps(evaluate.evaluate(sys.argv[1], sys.argv[2])))\n"
)


def evaluate_in_subprocess(problem_root: Path, program: Path, stage: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run([sys.executable, "-c", RUN_EVALUATE, str(program), stage],
                          cwd=problem_root, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_cli_new_writes_a_problem_that_validates(tmp_path):
    result = CliRunner().invoke(app, ["problems", "new", "my_task", "--dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    root = tmp_path / "my_task"
    assert f"Created problem 'my_task' in {root}" in result.output
    spec = load_problem(root)
    assert spec.name == "my_task" and spec.source == "path"
    assert [s.name for s in spec.stages] == ["quick", "full"]
    assert sorted(spec.baselines()) == ["greedy"]
    assert (root / "README.md").is_file()
    initial = spec.initial_code()
    assert initial.index(EVOLVE_BLOCK_START) < initial.index("def solve") < initial.index(
        EVOLVE_BLOCK_END)


def test_cli_new_refuses_bad_names_and_existing_folders(tmp_path):
    runner = CliRunner()
    bad = runner.invoke(app, ["problems", "new", "9-lives", "--dir", str(tmp_path)])
    assert bad.exit_code == 2 and "must be a Python-style identifier" in bad.output
    assert list(tmp_path.iterdir()) == []
    assert runner.invoke(app, ["problems", "new", "dup", "--dir", str(tmp_path)]).exit_code == 0
    again = runner.invoke(app, ["problems", "new", "dup", "--dir", str(tmp_path)])
    assert again.exit_code == 2 and "already exists" in again.output
    with pytest.raises(ProblemError):
        write_skeleton("dup", tmp_path)


def test_skeleton_evaluator_scores_initial_and_baseline(tmp_path):
    spec = write_skeleton("ap_free", tmp_path)
    scores = {}
    for label, program in [("initial", spec.initial_path), ("greedy", spec.baselines()["greedy"])]:
        for stage in ("quick", "full"):
            result = evaluate_in_subprocess(spec.root, program, stage)
            assert result["valid"] is True, result
            assert set(result) >= {"score", "valid", "metrics", "feedback"}
            assert result["metrics"]["size"] == result["score"]
            scores[label, stage] = result["score"]
    # Numbers stated in the skeleton's README: powers of two vs. base-3 digits {0, 1}.
    assert scores["initial", "full"] == 11 and scores["greedy", "full"] == 128
    assert scores["initial", "quick"] == 7 and scores["greedy", "quick"] == 24


@pytest.mark.parametrize("body, expected", [
    ("return [0, 1, 2]", "0, 1, 2 form an arithmetic progression"),
    ("return [1, 1]", "not distinct"),
    ("return [5, n]", "outside"),
    ("return [True, 3]", "item 0 is bool"),
    ("return [1.0, 3]", "item 0 is float"),
    ("return {1, 3}", "set is not plain data"),  # refused by the channel itself
    ("return \"0 1\"", "must return a list"),
    ("return list(range(n + 1))", "cannot be distinct"),
])
def test_skeleton_evaluator_rejects_wrong_answers(tmp_path, body, expected):
    spec = write_skeleton("ap_free", tmp_path)
    liar = tmp_path / "liar.py"
    liar.write_text(f"def solve(n):\n    {body}\n")
    result = evaluate_in_subprocess(spec.root, liar, "quick")
    assert result["valid"] is False and result["score"] == 0.0
    assert expected in result["feedback"]


def test_skeleton_evaluator_reports_unloadable_programs(tmp_path):
    spec = write_skeleton("ap_free", tmp_path)
    broken = tmp_path / "broken.py"
    broken.write_text("def solve(n:\n")
    result = evaluate_in_subprocess(spec.root, broken, "quick")
    assert result["valid"] is False and "syntax" in result["feedback"]

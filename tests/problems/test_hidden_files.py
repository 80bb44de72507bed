"""`hidden` in problem.toml: paths inside the problem folder, existing files; the sandbox is
handed them as descriptors (see tests/hostile/test_confinement.py for what a candidate sees)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from evolve.problem.spec import ProblemError, load_problem
from tests.sandbox_helpers import FIXTURES, evaluate


def problem_with_hidden(tmp_path: Path, hidden: str) -> Path:
    root = tmp_path / "prob"
    shutil.copytree(FIXTURES / "sort_problem", root)
    toml = root / "problem.toml"
    toml.write_text(toml.read_text().replace('description = "Return',
                                             f'hidden = {hidden}\ndescription = "Return'))
    return root


@pytest.mark.parametrize("hidden, words", [('["/etc/passwd"]', "inside the problem folder"),
                                           ('["../secret.txt"]', "inside the problem folder"),
                                           ('["data/missing.json"]', "problem.hidden names")])
def test_hidden_files_must_be_existing_files_inside_the_problem(tmp_path, hidden, words):
    with pytest.raises(ProblemError, match=words):
        load_problem(problem_with_hidden(tmp_path, hidden))


def test_the_scaffold_declares_and_reads_a_hidden_file(tmp_path):
    from evolve.problem.scaffold import write_skeleton

    spec = write_skeleton("ap_free", tmp_path)
    assert spec.config.problem.hidden == ["data/sizes.json"]
    # A candidate that looks for it finds nothing; the evaluator still got its sizes.
    peek = ("import os\n"
            f"print('SEEN' if os.path.exists({str(spec.root / 'data' / 'sizes.json')!r}) "
            "else 'GONE')\n" + spec.initial_code())
    result = evaluate(peek, spec, stages=["quick"])
    assert result.valid, result.reason
    from evaluators.isolation import available_levels
    if available_levels()[0] == "bwrap":
        assert "GONE" in result.stages[0].stdout

"""The README's "Your first problem in five minutes" works as written: its files, written where
their first line says, make a problem that `evolve problems check` accepts, and its run command
evolves it (with a smaller budget here)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from db import Archive
from tests.first_run.support import REPO, evolve

README = (REPO / "README.md").read_text()
SECTION = re.search(r"^## Your first problem in five minutes\n(.*?)^## ", README,
                    re.S | re.M).group(1)


def _files() -> dict[str, str]:
    """Fenced blocks whose first line is `# FOLDER/FILE` -> their text (copied whole, as a
    reader would)."""
    blocks = re.findall(r"^```(?:toml|python)\n(.*?)^```", SECTION, re.S | re.M)
    return {body.partition("\n")[0].removeprefix("# ").strip(): body for body in blocks}


def _commands() -> list[list[str]]:
    block = re.search(r"^```shell\n(.*?)^```", SECTION, re.S | re.M).group(1)
    return [shlex.split(line) for line in block.splitlines() if line.strip()]


def test_the_first_problem_checks_and_evolves(tmp_path: Path):
    files = _files()
    assert set(files) == {"sum_of_squares/problem.toml", "sum_of_squares/initial.py",
                          "sum_of_squares/evaluate.py"}
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    check, run = _commands()
    assert check[:3] == [".venv/bin/evolve", "problems", "check"]
    done = evolve(*check[1:], cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "score 2.25, valid" in done.stdout   # what the README says the initial scores
    assert run[:2] == [".venv/bin/evolve", "run"]
    args = [*run[1:run.index("--programs")], "--programs", "3", "--no-live",
            "--run-dir", str(tmp_path / "run")]
    done = evolve(*args, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    with Archive.open(tmp_path / "run" / "archive.sqlite", create=False) as archive:
        programs = archive.programs(archive.runs()[0].id)
    assert sum(p.status == "evaluated" for p in programs) == 4   # initial + 3
    assert max(p.score for p in programs if p.valid) >= 2.25

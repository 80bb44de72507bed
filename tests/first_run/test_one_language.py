"""Every command speaks the same language (issue 25, "One language for the commands"): one
program numbering, plain piped output, one way to name a run, the same short flags, examples in
every --help, a plot that lands in the run, the evaluator's real error, a completed run that
says so, what to do next, and the live view's words explained. Run as a user runs `evolve`: a
subprocess, piped or on a pseudo-terminal."""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import click
import pytest
import typer
from typer.testing import CliRunner

from db import Archive
from tests.first_run.support import REPO, TOY, evolve, evolve_on_terminal

# Scores a million times smaller than the toy's (rewards of about 1e-6: printed as plain
# decimals or not at all readable) and feedback far longer than 80 columns.
LONG_FEEDBACK = " ".join(f"note{i}" for i in range(40))
EVALUATE_EXTRA = f'''
    result = _original(program_path, stage)
    result["score"] = result["score"] * 1e-6
    result["feedback"] += " {LONG_FEEDBACK}"
    return result
'''
PROGRAMS = 6


def _tiny_problem(root: Path) -> Path:
    problem = root / "tiny_scores"
    shutil.copytree(TOY, problem, ignore=shutil.ignore_patterns("__pycache__"))
    source = (problem / "evaluate.py").read_text().replace("def evaluate(", "def _original(")
    (problem / "evaluate.py").write_text(source + "\n\ndef evaluate(program_path, stage):"
                                         + EVALUATE_EXTRA)
    return problem


@dataclass
class PipedRun:
    problem: Path
    run_dir: Path
    stdout: str


@pytest.fixture(scope="module")
def piped_run(tmp_path_factory: pytest.TempPathFactory) -> PipedRun:
    root = tmp_path_factory.mktemp("one-language")
    problem = _tiny_problem(root)
    run_dir = root / "runs" / "tiny"
    done = evolve("run", str(problem), "--programs", str(PROGRAMS), "--seed", "2",
                  "--run-dir", str(run_dir), cwd=root)
    assert done.returncode == 0, done.stdout + done.stderr
    return PipedRun(problem, run_dir, done.stdout)


def _archive_programs(run_dir: Path) -> list:
    with Archive.open(run_dir / "archive.sqlite", create=False) as archive:
        return archive.programs(archive.runs()[-1].id)


# ------------------------------------------------------------ one program numbering

def test_log_lines_name_the_program_show_shows_and_count_what_was_evaluated(piped_run):
    lines = [line for line in piped_run.stdout.splitlines() if line.startswith("program ")]
    by_id = {p.id: p for p in _archive_programs(piped_run.run_dir)}
    assert len(lines) == len(by_id) - 1                   # one per proposal, the initial apart
    evaluated, shown = 0, 0
    for line in lines:
        found = re.match(r"program (\d+): island (\d+) (\S+) by (\S+) -> (\S+) \| evaluated "
                         rf"(\d+)/{PROGRAMS} \|", line)
        assert found, line
        program = by_id[int(found.group(1))]              # the archive's own id
        assert (program.island, program.mutation_kind, program.operator) == (
            int(found.group(2)), found.group(3), found.group(4))
        if program.valid:
            assert found.group(5) == f"{program.score:.6g}"
        evaluated += program.status == "evaluated"
        # "evaluated" counts evaluated programs only (a line may count one committed just
        # before it, whose own line follows), never down
        assert evaluated <= int(found.group(6)) and int(found.group(6)) >= shown, line
        shown = int(found.group(6))
    assert shown == evaluated == PROGRAMS
    summary = next(line for line in piped_run.stdout.splitlines()
                   if line.startswith("run completed"))
    assert f"; {PROGRAMS} programs evaluated, best" in summary
    # The last program's line, as `evolve show` prints that id: the same program.
    last_id = int(re.match(r"program (\d+):", lines[-1]).group(1))
    shown = json.loads(evolve("show", str(last_id), "--run-dir", str(piped_run.run_dir), "--json",
                              cwd=piped_run.run_dir).stdout)
    assert shown["id"] == last_id and shown["operator"] == by_id[last_id].operator


def test_status_counts_programs_as_the_summary_does(piped_run, tmp_path):
    status = evolve("status", str(piped_run.run_dir), cwd=tmp_path).stdout
    head = status.splitlines()[0]
    stored = len(_archive_programs(piped_run.run_dir))
    assert f" · {PROGRAMS} evaluated ({stored - PROGRAMS} more stored" in head
    assert f"{stored} programs" not in status


def test_the_live_panel_counts_programs_as_the_summary_does(piped_run, tmp_path):
    code, text = evolve_on_terminal("run", str(piped_run.problem), "--programs", "3", "--seed",
                                    "2", "--run-dir", str(tmp_path / "live"),
                                    cwd=tmp_path)
    assert code == 0, text
    assert " · 3 evaluated · " in text                   # the panel's title
    assert re.search(r" · \d+ programs · ", text) is None
    assert "3 programs evaluated" in text[text.rindex("run completed"):]
    assert "next: `evolve best " in text[text.rindex("run completed"):]   # after the panel


# ------------------------------------------------------------ piped output is plain

BOX = set("╭╮╰╯│─━┃")


def test_piped_status_and_show_are_never_boxed_or_wrapped(piped_run, tmp_path):
    columns = {"COLUMNS": "80"}                           # what a pipe gets by default
    status = evolve("status", str(piped_run.run_dir), cwd=tmp_path, **columns).stdout
    assert not BOX & set(status), status
    assert any(line.startswith("arm ") and "pulls" in line for line in status.splitlines())

    best = next(p for p in _archive_programs(piped_run.run_dir) if p.valid and p.parent_id)
    show = evolve("show", str(best.id), "--run-dir", str(piped_run.run_dir), cwd=tmp_path,
                  **columns).stdout
    assert not BOX & set(show), show
    assert any(line.endswith(LONG_FEEDBACK) for line in show.splitlines())   # one line
    assert any(line.startswith("timings") and "total" in line for line in show.splitlines())


def test_piped_eval_and_problems_check_are_never_wrapped(piped_run, tmp_path):
    from evaluators.executors import LocalExecutor

    columns = {"COLUMNS": "80"}
    initial = piped_run.problem / "initial.py"
    evaluated = evolve("eval", str(piped_run.problem), str(initial), cwd=tmp_path, **columns)
    assert evaluated.returncode == 0, evaluated.stderr
    lines = evaluated.stdout.splitlines()
    executor = LocalExecutor(max_parallel=1)
    description = executor.isolation_description
    assert any(line.endswith(f"isolation: {description}") for line in lines), lines
    assert any(line.startswith("feedback: ") and line.endswith(LONG_FEEDBACK) for line in lines)

    checked = evolve("problems", "check", str(piped_run.problem), cwd=tmp_path, **columns)
    first = checked.stdout.splitlines()[0]
    assert first.startswith("checking problem") and first.endswith("1 stages)..."), first
    assert str(piped_run.problem) in first
    assert not BOX & set(checked.stdout)


# ------------------------------------------------------------ one way to name a run

def _leaf_commands() -> dict[str, click.Command]:
    from evolve.cli import app

    def walk(command: click.Command, path: str) -> dict[str, click.Command]:
        if hasattr(command, "commands"):                  # a group (typer's own click)
            found = {}
            for name, sub in command.commands.items():
                found.update(walk(sub, f"{path} {name}".strip()))
            return found
        return {path: command}

    return walk(typer.main.get_command(app), "")


RUN_COMMANDS = {"run", "resume", "status", "show", "lineage", "diff", "best", "plot",
                "dashboard", "doctor"}


def test_every_command_about_a_run_takes_run_dir_and_short_flags_mean_one_thing():
    commands = _leaf_commands()
    assert RUN_COMMANDS <= set(commands)
    meaning: dict[str, set[str]] = {}
    for name, command in commands.items():
        for param in command.params:
            if param.param_type_name != "option":
                continue
            longs = [o for o in param.opts if o.startswith("--")]
            for short in (o for o in param.opts + param.secondary_opts if re.fullmatch(r"-\w",
                                                                                       o)):
                meaning.setdefault(short, set()).update(longs)
        options = {o for p in command.params for o in getattr(p, "opts", [])}
        if name in RUN_COMMANDS:
            assert {"--run-dir", "-r"} <= options, name
    assert {short: longs for short, longs in meaning.items() if len(longs) > 1} == {}
    assert meaning["-s"] == {"--set"} and meaning["-r"] == {"--run-dir"}


def test_every_help_has_examples_with_real_run_directory_names():
    from evolve.cli import app

    for name in _leaf_commands():
        result = CliRunner().invoke(app, [*name.split(), "--help"], terminal_width=200)
        assert result.exit_code == 0, name
        assert "Examples:" in result.output, name
        for run_dir in re.findall(r"runs/\S+", result.output):
            # as `evolve run` names a run: runs/PROBLEM-YYYYMMDD-HHMMSS
            assert re.fullmatch(r"runs/\w+-\d{8}-\d{6}/?\S*", run_dir) or \
                "YYYYMMDD" in run_dir, (name, run_dir)


def test_the_run_is_named_the_same_way_by_position_and_by_option(piped_run, tmp_path):
    by_position = evolve("best", str(piped_run.run_dir), "--json", cwd=tmp_path)
    by_option = evolve("best", "-r", str(piped_run.run_dir), "--json", cwd=tmp_path)
    assert by_position.returncode == by_option.returncode == 0, by_option.stderr
    assert json.loads(by_position.stdout) == json.loads(by_option.stdout)
    both = evolve("status", str(piped_run.run_dir), "-r", str(tmp_path), cwd=tmp_path)
    assert both.returncode == 2 and "named twice" in both.stderr


# ------------------------------------------------------------ plot, warm start, resume

def test_plot_writes_into_the_run_directory_and_says_where(piped_run, tmp_path):
    done = evolve("plot", str(piped_run.run_dir), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    target = piped_run.run_dir / "plot.png"
    assert done.stdout.strip() == f"wrote {target}"
    assert target.read_bytes().startswith(b"\x89PNG")
    assert list(tmp_path.iterdir()) == []                  # nothing in the current folder


@pytest.mark.skipif(not hasattr(__import__("os"), "geteuid") or __import__("os").geteuid() != 0,
                    reason="the warm interpreter runs only as root")
def test_a_warm_interpreter_that_cannot_start_reports_the_evaluators_own_error(tmp_path):
    problem = tmp_path / "needs_a_module"
    shutil.copytree(TOY, problem, ignore=shutil.ignore_patterns("__pycache__"))
    (problem / "data").mkdir()
    (problem / "data" / "answers.txt").write_text("42\n")
    toml = (problem / "problem.toml").read_text()
    (problem / "problem.toml").write_text(toml.replace('[problem]\n',
                                                       '[problem]\nhidden = ["data/answers.txt"]\n'))
    source = (problem / "evaluate.py").read_text()
    (problem / "evaluate.py").write_text(source.replace("import math\n",
                                                        "import math\nimport not_installed_mod\n"))
    done = evolve("eval", str(problem), str(problem / "initial.py"), cwd=tmp_path)
    assert done.returncode == 1
    text = done.stdout + done.stderr
    [warm] = [line for line in text.splitlines() if "warm interpreter" in line]
    assert "ModuleNotFoundError: No module named 'not_installed_mod'" in warm, warm
    assert "hidden files" not in warm


def test_resume_of_a_completed_run_says_so_and_how_to_raise_the_budget(piped_run, tmp_path):
    before = len(_archive_programs(piped_run.run_dir))
    done = evolve("resume", str(piped_run.run_dir), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "is complete" in done.stdout and f"program budget {PROGRAMS} reached" in done.stdout
    assert f"`evolve resume {piped_run.run_dir} --programs " in done.stdout
    assert "run completed" not in done.stdout             # not run again
    assert len(_archive_programs(piped_run.run_dir)) == before


# ------------------------------------------------------------ what next, the README, config

def test_a_run_ends_with_what_to_do_next(piped_run):
    last = piped_run.stdout.strip().splitlines()[-1]
    assert f"`evolve best {piped_run.run_dir}`" in last
    assert f"`evolve dashboard {piped_run.run_dir}`" in last


def test_the_readme_table_lists_every_command_and_where_runs_go():
    readme = (REPO / "README.md").read_text()
    table = readme[readme.index("| command | what it does |"):readme.index("## Built-in")]
    for name in _leaf_commands():
        assert f"| `evolve {name}" in table, name
    assert "`runs/PROBLEM-YYYYMMDD-HHMMSS`" in readme[:readme.index("| command |")]
    for name in ("runs [FOLDER]", "diff A B", "show ID", "plot [RUN_DIR] [-o FILE.png]"):
        assert f"`evolve {name}" in table


def test_config_show_says_what_every_unset_key_means(tmp_path):
    shown = evolve("config", "show", cwd=tmp_path).stdout
    unset = [line for line in shown.splitlines() if "(unset: " in line]
    assert unset and all(not line.endswith("(unset: unset)") for line in unset), unset
    assert any(line.startswith("# max_calls =") for line in unset)


# ------------------------------------------------------------ the live view's words

def test_the_live_views_words_are_explained_and_rewards_read_as_decimals(piped_run, tmp_path):
    doc = (REPO / "docs" / "looking-at-runs.md").read_text()
    for word in ("**pulls**", "**mean reward**", "**island**", "**evaluated**", "**arm**"):
        assert word in doc, word
    status = evolve("status", str(piped_run.run_dir), cwd=tmp_path).stdout
    rewards = re.findall(r"mean reward (\S+),", status)
    assert rewards and all(re.fullmatch(r"-?[\d,]+(\.\d+)?", r) for r in rewards), rewards
    assert any(r.startswith("0.00000") for r in rewards), rewards   # ~1e-6, as decimals
    code, text = evolve_on_terminal("status", str(piped_run.run_dir), cwd=tmp_path)
    assert code == 0 and "mean reward" in text
    arm_rows = [line for line in text.splitlines() if "offline" in line and "$" in line]
    assert arm_rows and all(re.search(r"\de-0\d", row) is None for row in arm_rows), text
    assert any(" 0.00000" in row for row in arm_rows), text

"""`evolve status/show/lineage/diff/best/runs` on a run held in a real archive; expected values
come from querying the archive directly."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from db import Archive
from evolve.cli import app
from tests.support.archive_run import RunFacts

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def archive(toy_run: RunFacts):
    opened = Archive.open(toy_run.run_dir / "archive.sqlite", create=False)
    yield opened
    opened.close()


def test_status_prints_a_plain_summary(toy_run: RunFacts, archive: Archive) -> None:
    result = invoke("status", toy_run.run_dir)
    assert result.exit_code == 0, result.output
    best = archive.best(toy_run.run_id)[0]
    text = result.stdout
    assert "\x1b[" not in text                      # piped output carries no colour codes
    evaluated = archive.count_programs(toy_run.run_id, status="evaluated") - 1  # not the initial
    stored = archive.count_programs(toy_run.run_id)
    assert f" {evaluated} evaluated ({stored - evaluated} more stored" in text
    assert f"best: {best.score:.6g} (program {best.id})" in text
    assert f"failures: {len(toy_run.failed)}" in text
    for program in archive.programs(toy_run.run_id):       # every arm has a row
        if program.parent_id is not None:
            assert program.operator in text
    assert toy_run.scratchpad_tip in text


def test_status_json_matches_the_archive(toy_run: RunFacts, archive: Archive) -> None:
    result = invoke("status", toy_run.run_dir, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    programs = archive.programs(toy_run.run_id)
    assert data["programs"] == len(programs)
    assert data["best_program_id"] == archive.best(toy_run.run_id)[0].id
    assert data["failures"] == dict(Counter(p.error_kind or "invalid" for p in programs
                                            if not p.valid))
    # every program but the starting one was proposed by an arm
    assert sum(arm["pulls"] for arm in data["arms"]) == len(programs) - 1
    assert data["spent_usd"] == pytest.approx(archive.cost_so_far(toy_run.run_id))
    assert data["status"] == toy_run.status


def test_status_of_a_failed_run_exits_1(failed_run: RunFacts) -> None:
    result = invoke("status", failed_run.run_dir)
    assert result.exit_code == 1
    assert "failed" in result.stdout


def test_a_folder_without_a_run_is_a_usage_error(tmp_path: Path) -> None:
    result = invoke("status", tmp_path / "missing")
    assert result.exit_code == 2
    assert "does not exist" in result.stderr and "evolve runs" in result.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    result = invoke("best", empty)
    assert result.exit_code == 2
    assert "holds no run" in result.stderr
    result = invoke("dashboard", empty)          # refused before any terminal UI starts
    assert result.exit_code == 2 and "holds no run" in result.stderr


def test_show_json_has_code_metrics_and_llm_calls(toy_run: RunFacts, archive: Archive) -> None:
    program_id = toy_run.llm_program_ids[0]
    result = invoke("show", program_id, "--run-dir", toy_run.run_dir, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    stored = archive.program(program_id)
    assert data["code"] == stored.code
    assert data["parent_id"] == stored.parent_id
    assert data["metrics"] == stored.metrics
    calls = archive.llm_calls(program_id=program_id)
    assert [c["model"] for c in data["llm_calls"]] == [c.model for c in calls]
    assert data["cost_usd"] == pytest.approx(sum(c.cost_usd for c in calls))
    stages = archive.evaluations(program_id)
    assert [(s["stage"], s["score"]) for s in data["stages"]] == [(s.stage, s.score)
                                                                  for s in stages]


def first_lines(call) -> tuple[str, str]:
    """The first line of the last prompt message and of the reply of an LLM call."""
    prompt = json.loads(call.prompt)[-1]["content"].strip().splitlines()[0]
    return prompt, call.response.strip().splitlines()[0]


def test_show_prints_prompt_reply_and_code(toy_run: RunFacts, archive: Archive) -> None:
    program_id = toy_run.llm_program_ids[0]
    result = invoke("show", program_id, "-r", toy_run.run_dir, "--prompt")
    assert result.exit_code == 0, result.output
    prompt, reply = first_lines(archive.llm_calls(program_id=program_id)[0])
    assert prompt in result.stdout and reply in result.stdout
    assert "def solve():" in result.stdout


def test_show_of_a_failed_program_names_the_failure(toy_run: RunFacts, archive: Archive) -> None:
    # a program the sandbox failed (rejected proposals never reach an evaluation)
    program_id, kind = next((pid, kind) for pid, kind in toy_run.failed.items()
                            if archive.evaluations(pid))
    result = invoke("show", program_id, "-r", toy_run.run_dir, "--no-code")
    assert result.exit_code == 0, result.output
    assert kind in result.stdout
    reason = archive.evaluations(program_id)[-1].reason
    assert reason.split()[0] in result.stdout                      # the stage table's reason
    assert "def solve" not in result.stdout


def test_show_unknown_program_is_a_usage_error(toy_run: RunFacts) -> None:
    result = invoke("show", 999_999, "-r", toy_run.run_dir)
    assert result.exit_code == 2
    assert "999999 is not in run" in result.stderr


def test_lineage_json_walks_parents_and_children(toy_run: RunFacts, archive: Archive) -> None:
    # the program with the deepest ancestry, so the chain has more than one link
    target = max(toy_run.program_ids, key=lambda pid: len(archive.ancestors(pid)))
    result = invoke("lineage", target, "-r", toy_run.run_dir, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    chain = []
    current = archive.program(target)
    while current.parent_id is not None:
        current = archive.program(current.parent_id)
        chain.append(current.id)
    assert [a["id"] for a in data["ancestors"]] == list(reversed(chain))
    assert data["ancestors"][0]["id"] == toy_run.initial_id

    root = invoke("lineage", toy_run.initial_id, "-r", toy_run.run_dir, "--json")
    children = [c["id"] for c in json.loads(root.stdout)["children"]]
    assert children == [p.id for p in archive.children(toy_run.initial_id)]


def test_lineage_text_is_a_tree(toy_run: RunFacts) -> None:
    result = invoke("lineage", toy_run.initial_id, "-r", toy_run.run_dir)
    assert result.exit_code == 0, result.output
    for child in toy_run.children_of_initial:
        assert f"#{child} " in result.stdout
    assert "└──" in result.stdout


def test_diff_is_a_unified_diff(toy_run: RunFacts, archive: Archive) -> None:
    a, b = toy_run.initial_id, toy_run.best_id
    result = invoke("diff", a, b, "-r", toy_run.run_dir)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == f"--- program {a}" and lines[1] == f"+++ program {b}"
    best_a_line = next(line for line in archive.program(b).code.splitlines()
                       if line.startswith("A = "))
    assert f"+{best_a_line}" in lines
    same = invoke("diff", a, a, "-r", toy_run.run_dir)
    assert "same code" in same.stdout


def test_best_exports_the_best_code(toy_run: RunFacts, archive: Archive, tmp_path: Path) -> None:
    target = tmp_path / "out" / "best.py"
    result = invoke("best", toy_run.run_dir, "--export", target, "--json")
    assert result.exit_code == 0, result.output
    best = archive.best(toy_run.run_id)[0]
    assert target.read_text() == best.code
    data = json.loads(result.stdout)
    assert data["id"] == best.id and data["score"] == pytest.approx(best.score)

    top = json.loads(invoke("best", toy_run.run_dir, "-k", "3", "--json").stdout)
    assert [p["id"] for p in top] == [p.id for p in archive.best(toy_run.run_id, k=3)]


def test_runs_lists_every_run_folder(toy_run: RunFacts, failed_run: RunFacts) -> None:
    folder = toy_run.run_dir.parent
    result = invoke("runs", folder, "--json")
    assert result.exit_code == 0, result.output
    rows = {Path(r["folder"]).name: r for r in json.loads(result.stdout)}
    assert rows["toy-run"]["status"] == toy_run.status
    assert rows["toy-run"]["programs"] == len(toy_run.program_ids)
    assert rows["failed-run"]["status"] == "failed"
    text = invoke("runs", folder)
    assert "toy-run" in text.stdout and "failed-run" in text.stdout
    assert invoke("runs", folder / "nothing-here").exit_code == 2


def test_program_commands_find_the_run_from_the_current_folder(
        toy_run: RunFacts, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(toy_run.run_dir)
    result = invoke("show", toy_run.best_id, "--json", "--no-code")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["id"] == toy_run.best_id


def test_a_run_that_has_just_started(tmp_path: Path) -> None:
    run_dir = tmp_path / "fresh"
    from evolve.engine.run_files import run_lock

    with Archive.open(run_dir / "archive.sqlite") as archive:
        archive.create_run(problem="toy_objective", config_toml="", seed=0, isolation="rlimits")
    with run_lock(run_dir):  # as the live run holds it (without it the run shows as crashed)
        status = invoke("status", run_dir, "--json")
    assert status.exit_code == 0, status.output
    data = json.loads(status.stdout)
    assert data["programs"] == 0 and data["best_score"] is None and data["status"] == "running"
    assert "no arms pulled yet" in invoke("status", run_dir).stdout
    best = invoke("best", run_dir)
    assert best.exit_code == 1 and "no valid program yet" in best.stderr
    plot = invoke("plot", run_dir, "-o", tmp_path / "p.png")
    assert plot.exit_code == 1 and not (tmp_path / "p.png").exists()


@pytest.mark.parametrize("command", ["status", "show", "lineage", "diff", "best", "runs", "plot",
                                     "doctor", "dashboard"])
def test_every_command_has_help_with_examples(command: str) -> None:
    result = invoke(command, "--help")
    assert result.exit_code == 0
    assert "Examples" in result.stdout
    assert f"evolve {command}" in result.stdout

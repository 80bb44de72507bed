"""The live view of `evolve run`: snapshots read from the archive, the rich panel, log lines."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import re
from collections import Counter

import pytest
from rich.console import Console

from db import Archive
from evolve.cli.live import (
    BudgetProgress,
    LiveProgress,
    LogProgress,
    archive_progress,
    estimate_eta,
    live_reporter,
    make_progress_view,
    render_snapshot,
    snapshot_from_archive,
)
from evolve.engine.run_files import ProgressSnapshot
from evolve.select.bandit import reward
from tests.support.archive_run import RunFacts


@pytest.fixture(scope="module")
def facts(toy_run: RunFacts) -> RunFacts:
    return toy_run


@pytest.fixture(scope="module")
def snapshot(toy_run: RunFacts):
    with Archive.open(toy_run.run_dir / "archive.sqlite", create=False) as archive:
        snap = snapshot_from_archive(archive, toy_run.run_id)
        programs = archive.programs(toy_run.run_id)
        best = archive.best(toy_run.run_id)[0]
        spent = archive.cost_so_far(toy_run.run_id)
    return snap, programs, best, spent


def test_snapshot_from_archive_matches_the_archive(snapshot, facts: RunFacts) -> None:
    snap, programs, best, spent = snapshot
    assert snap.programs == len(programs)
    assert (snap.best_score, snap.best_program_id) == (best.score, best.id)
    assert snap.best_history[-1] == best.score
    assert snap.best_history == sorted(snap.best_history)          # best-so-far never drops
    assert snap.failures == dict(Counter(p.error_kind or "invalid" for p in programs
                                         if not p.valid))
    assert snap.spent_usd == pytest.approx(spent)
    assert sum(arm.pulls for arm in snap.arms) == len(programs) - 1
    by_id = {p.id: p for p in programs}
    initial = next(p.score for p in programs if p.parent_id is None)
    for arm in snap.arms:
        members = [p for p in programs if (p.operator, p.mutation_kind) == (arm.operator,
                                                                           arm.mutation)]
        rewards = [reward(p.score, by_id[p.parent_id].score if by_id[p.parent_id].valid else None,
                          initial, ok=p.valid) for p in members]
        assert arm.pulls == len(members)
        assert arm.mean_reward == pytest.approx(sum(rewards) / len(rewards))
    islands = {p.island for p in programs}
    assert set(snap.island_best) == islands
    for island, score in snap.island_best.items():
        valid = [p.score for p in programs if p.island == island and p.valid]
        assert score == (max(valid) if valid else None)
    budget = {b.name: b for b in snap.budgets}
    # Like the engine, the program budget counts evaluated children only (not the initial
    # program, duplicates or rejected replies).
    assert budget["programs"].used == sum(1 for p in programs if p.parent_id is not None
                                          and p.status == "evaluated")
    assert budget["programs"].limit == facts.max_programs
    assert budget["dollars"].limit == 0.5
    assert snap.status == facts.status and snap.eta_s is None


def test_rendered_panel_shows_every_part(snapshot, facts: RunFacts) -> None:
    assert snapshot[0].running is None and snapshot[0].queued is None   # unknown to the archive
    snap = dataclasses.replace(snapshot[0], running=1, queued=2)       # as the controller knows
    console = Console(width=80, record=True, file=io.StringIO())
    console.print(render_snapshot(snap, 80))
    text = console.export_text()
    assert f"best {snap.best_score:.6g} (#{snap.best_program_id})" in text
    used = next(b.used for b in snap.budgets if b.name == "programs")   # evaluated children
    assert "programs" in text and f"{used} / {facts.max_programs}" in text
    assert "$0.50" in text                                       # the dollar budget
    for arm in snap.arms:
        assert arm.operator in text
    assert "evaluations: 1 running, 2 queued" in text
    assert f"failures {snap.failure_total}" in text
    assert f"latest: {snap.latest_failure[:40]}" in text            # one line, cut to fit
    assert max(len(line) for line in text.splitlines()) <= 80


def test_the_panel_shows_evaluations_per_node_on_a_cluster(snapshot) -> None:
    snap = dataclasses.replace(snapshot[0], running=3, queued=0,
                               placement={"gpu-a/1f2e3d": 2, "gpu-b/9c8b7a": 1})
    console = Console(width=80, record=True, file=io.StringIO())
    console.print(render_snapshot(snap, 80))
    text = console.export_text()
    assert "evaluations: 3 running, 0 queued · on gpu-a/1f2e3d 2, gpu-b/9c8b7a 1" in text


def test_log_lines_only_when_something_changed(snapshot, facts: RunFacts) -> None:
    snap = snapshot[0]
    stream = io.StringIO()
    view = LogProgress(Console(file=stream, width=200), min_interval_s=0.0)
    with view:
        view.update(snap)
        view.update(snap)                      # nothing new: no second line
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    used = next(b.used for b in snap.budgets if b.name == "programs")   # evaluated children
    assert f"evaluated {used} / {facts.max_programs}" in lines[0]
    assert facts.status in lines[0]
    assert f"best {snap.best_score:.6g}" in lines[0]


def test_view_choice_follows_the_terminal() -> None:
    piped = Console(file=io.StringIO())
    terminal = Console(file=io.StringIO(), force_terminal=True)
    assert isinstance(make_progress_view(None, piped), LogProgress)
    assert isinstance(make_progress_view(None, terminal), LiveProgress)
    assert isinstance(make_progress_view(False, terminal), LogProgress)   # --no-live


def test_live_panel_draws_on_a_terminal(snapshot) -> None:
    stream = io.StringIO()
    view = LiveProgress(Console(file=stream, force_terminal=True, width=90))
    with view:
        view.update(snapshot[0])
    assert "best" in stream.getvalue() and "islands" in stream.getvalue()


def test_eta_is_the_first_budget_to_run_out() -> None:
    budgets = [BudgetProgress("programs", 10, 40), BudgetProgress("dollars", 1.0, 2.0, "$"),
               BudgetProgress("time", 5.0, 60.0, "min")]
    # programs: 30 more at 10 per 100 s = 300 s; dollars: 1 more at 1 per 100 s = 100 s
    assert estimate_eta(budgets, elapsed_s=100.0) == pytest.approx(100.0)
    assert estimate_eta([BudgetProgress("time", 59.0, 60.0, "min")], 3540.0) == \
        pytest.approx(60.0)
    assert estimate_eta([BudgetProgress("programs", 40, 40)], 10.0) == 0.0
    assert estimate_eta([], 10.0) is None


def test_controller_progress_reports_feed_the_view(toy_run: RunFacts) -> None:
    stream = io.StringIO()
    view = LogProgress(Console(file=stream, width=300), min_interval_s=0.0)
    common = dict(run_id=toy_run.run_id, run_dir=str(toy_run.run_dir), problem="toy_objective",
                  programs_done=3, programs_budget=toy_run.max_programs, best_score=1.0,
                  best_program_id=toy_run.initial_id, initial_score=-3.0, cost_usd=0.0)
    with Archive.open(toy_run.run_dir / "archive.sqlite", create=False) as archive:
        report = archive_progress(view, archive, min_interval_s=60.0)
        report(ProgressSnapshot(event="program", elapsed_s=12.0, proposing=2, evaluating=1,
                                **common))
        report(ProgressSnapshot(event="program", elapsed_s=12.5, proposing=0, evaluating=2,
                                **common))                   # within 60 s of the last: skipped
        report(ProgressSnapshot(event="stop", elapsed_s=13.0, proposing=0, evaluating=0,
                                status="completed", **common))
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    assert "running 1 queued 2" in lines[0] and "eta" in lines[0]
    assert lines[1].endswith("completed")
    assert f"best {toy_run.best_score:.6g}" in lines[1]        # built from the archive


@pytest.mark.parametrize("terminal", [True, False], ids=["live-panel", "log-lines"])
def test_live_reporter_during_a_real_run(tmp_path, terminal: bool) -> None:
    from evolve.config import load_config
    from evolve.engine.session import run_session
    from tests.support.archive_run import TOY_PROBLEM

    config = load_config(overrides=[f'problem="{TOY_PROBLEM}"', "budget.max_programs=5",
                                    "operators.use_offline=always", "concurrency.evaluations=2",
                                    "seed=3"])
    stream = io.StringIO()
    console = Console(file=stream, force_terminal=terminal, width=100)
    with live_reporter(console=console, min_interval_s=0.0) as on_progress:
        outcome = asyncio.run(run_session(config, tmp_path / "run", on_progress=on_progress,
                                          log=lambda _line: None, handle_signals=False))
    raw = stream.getvalue()
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", raw)            # without terminal codes
    assert outcome.status == "completed"
    assert f"best {outcome.best_score:.6g}" in text
    if terminal:
        assert raw != text and "islands" in text and "5 / 5" in text       # the live panel
    else:
        assert raw == text and text.splitlines()[-1].endswith("completed")

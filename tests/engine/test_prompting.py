"""Prompt building: contents, shown metrics only, token budget trimming inspirations first."""

from __future__ import annotations

from pathlib import Path

from evolve.config import PromptConfig, ScratchpadConfig
from evolve.engine.scratchpad import AttemptRow, Scratchpad
from evolve.problem.spec import load_problem
from evolve.prompting import PromptBuilder, estimate_tokens

ROOT = Path(__file__).resolve().parents[2]


def builder(**prompt) -> PromptBuilder:
    return PromptBuilder(load_problem(ROOT / "problems" / "circle_packing"),
                         PromptConfig(**prompt), max_code_chars=40_000)


def test_diff_prompt_carries_everything_the_model_needs():
    b = builder()
    parent = b.view("def pack_circles(n=26):\n    return []\n", score=1.25, valid=True,
                    label="program 3", metrics={"sum_radii": 1.25, "runtime_s": 0.5},
                    feedback="valid packing", stdout="debug line", stderr="warning line")
    insp = b.view("def pack_circles(n=26):\n    return [1]\n", score=2.0, valid=True,
                  label="program 9")
    system, user = (m["content"] for m in b.mutation_messages(
        "diff", parent, inspirations=[insp], scratchpad=["use a hexagonal lattice"]))
    assert "26 non-overlapping circles" in system and "def pack_circles(n: int = 26)" in system
    assert "Score: 1.25" in user and "sum_radii=1.25" in user
    assert "runtime_s" not in user  # not in [metrics].shown
    assert "valid packing" in user and "debug line" in user and "warning line" in user
    assert "Inspiration 1 (program 9)" in user and "Score: 2" in user
    assert "use a hexagonal lattice" in user and "<<<<<<< SEARCH" in user


def test_budget_drops_inspirations_first_and_keeps_the_parent():
    b = builder(token_budget=2_000)
    parent = b.view("x = 1\n" * 300, score=1.0, valid=True, feedback="f" * 3000)
    insps = [b.view(f"y = {i}\n" * 300, score=float(i), valid=True, label=f"insp{i}")
             for i in range(5)]
    user = b.mutation_messages("full", parent, inspirations=insps)[1]["content"]
    assert "x = 1\n" * 300 in user
    assert "insp4" not in user and estimate_tokens(user) < 2_000


def test_repair_prompt_shows_the_error_and_crossover_needs_two_parents():
    b = builder()
    broken = b.view("def pack_circles(n=26): oops", score=None, valid=False,
                    error="syntax: line 1: invalid syntax")
    user = b.mutation_messages("repair", broken)[1]["content"]
    assert "INVALID (syntax: line 1: invalid syntax)" in user
    other = b.view("z = 2\n", score=1.0, valid=True)
    cross = b.mutation_messages("crossover", other, second=other)[1]["content"]
    assert "Parent A" in cross and "Parent B" in cross


def test_scratchpad_parse_heuristic_and_prompt():
    pad = Scratchpad(ScratchpadConfig(interval=3, max_recommendations=2))
    assert pad.parse("- a\n* b\n3. c\n") == ["a", "b"]
    for seq in range(6):
        pad.record(AttemptRow(seq=seq, operator="m", mutation="diff", valid=seq % 2 == 0,
                              score=float(seq), delta=1.0 if seq % 2 == 0 else None,
                              error="" if seq % 2 == 0 else "timeout: too slow"))
    tips = pad.heuristic()
    assert tips and "diff (m)" in tips[0] and any("timeout" in t for t in tips)
    assert pad.due(3) and not pad.due(4)
    text = builder().scratchpad_messages(pad.prompt_rows(), ["old tip"], 5.0, 2)[0]["content"]
    assert "old tip" in text and "FAILED (timeout: too slow)" in text


def test_user_templates_override_and_a_broken_one_fails_at_start(tmp_path):
    import pytest

    from evolve.config import ConfigError

    (tmp_path / "diff.j2").write_text("CUSTOM {{ parent.code }}")
    b = builder(templates_dir=str(tmp_path))
    parent = b.view("x = 1\n", score=1.0, valid=True)
    assert b.mutation_messages("diff", parent)[1]["content"] == "CUSTOM x = 1\n"
    (tmp_path / "diff.j2").write_text("{% if %}")
    with pytest.raises(ConfigError, match="prompt template diff.j2"):
        builder(templates_dir=str(tmp_path))

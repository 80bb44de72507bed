"""Prompt building: contents, shown metrics only, token budget trimming inspirations first."""

from __future__ import annotations

from pathlib import Path

import pytest

from evolve.config import PromptConfig, ScratchpadConfig
from evolve.engine.scratchpad import AttemptRow, Scratchpad
from evolve.patch.mutation import child_from_reply
from evolve.problem.spec import load_problem
from evolve.prompting import AttemptView, PromptBuilder, estimate_tokens

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


def test_budget_drops_the_oldest_attempts_after_the_inspirations():
    b = builder(token_budget=1_400)
    parent = b.view("x = 1\n" * 300, score=1.0, valid=True)
    history = [AttemptView("diff", f"score {i}", f"attempt number {i} " + "y" * 300)
               for i in range(5)]
    insp = b.view("z = 2\n", score=0.5, valid=True, label="insp0")
    user = b.mutation_messages("diff", parent, inspirations=[insp], history=history)[1]["content"]
    assert "insp0" not in user
    assert "attempt number 4" in user and "attempt number 0" not in user
    assert "x = 1\n" * 300 in user


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

    from evolve.config import ConfigError

    (tmp_path / "diff.j2").write_text("CUSTOM {{ parent.code }}")
    b = builder(templates_dir=str(tmp_path))
    parent = b.view("x = 1\n", score=1.0, valid=True)
    assert b.mutation_messages("diff", parent)[1]["content"] == "CUSTOM x = 1\n"
    (tmp_path / "diff.j2").write_text("{% if %}")
    with pytest.raises(ConfigError, match="prompt template diff.j2"):
        builder(templates_dir=str(tmp_path))


# ---------------------------------------------------------------- issue 26: what prompts carry

def test_system_prompt_says_how_a_program_is_scored():
    system = PromptBuilder(load_problem(ROOT / "problems" / "moe_lbl"), PromptConfig(),
                           max_code_chars=40_000).system
    # The stages in order, with their time limits and the threshold of the gate.
    quick, full, seeds = (system.index(f"`{name}` (time limit") for name in
                          ("quick", "full", "seeds"))
    assert quick < full < seeds
    assert "`full` (time limit 600 s; a score below -3.05 stops the program here and it " \
           "counts as invalid)" in system
    assert "0.5 x the score of stage 'full' + 0.5 x the score of stage 'seeds'" in system
    # Each shown metric with its meaning and direction.
    assert "- `val_ce`: validation cross-entropy, nats per byte" in system
    assert "`val_ce`: validation cross-entropy, nats per byte (the main part of the score) " \
           "(lower is better)" in system
    assert "`specialisation_mi_bits`: mutual information between domain and chosen expert, " \
           "bits (how much experts specialise) (higher is better)" in system
    # One stage, no threshold: nothing about thresholds.
    one = builder().system
    assert "runs through one stage" in one and "threshold" not in one
    assert "`sum_radii`: sum of the 26 radii: the score itself (higher is better)" in one


def test_every_builtin_problem_describes_each_shown_metric():
    for toml in sorted((ROOT / "problems").glob("*/problem.toml")):
        metrics = load_problem(toml.parent).config.metrics
        assert set(metrics.about) == set(metrics.shown), toml.parent.name
        assert all(a.better in ("higher", "lower", "neither") for a in metrics.about.values())


def test_metrics_about_must_name_shown_metrics(tmp_path):
    import shutil

    from evolve.problem.spec import ProblemError

    folder = tmp_path / "p"
    shutil.copytree(ROOT / "problems" / "circle_packing", folder)
    toml = folder / "problem.toml"
    toml.write_text(toml.read_text().replace("min_radius = {", "min_radiuss = {"))
    with pytest.raises((ProblemError, ValueError), match="min_radiuss"):
        load_problem(folder)


DIFF_EXAMPLE_TARGET = """# EVOLVE-BLOCK-START
LIMIT = 10


def series(n):
    total = 0
    for k in range(1, n + 1):
        total += k
    return total
# EVOLVE-BLOCK-END
"""
FULL_EXAMPLE_TARGET = """import math

# EVOLVE-BLOCK-START
def closest_gap(values):
    return min(abs(a - b) for a in values for b in values if a is not b)
# EVOLVE-BLOCK-END


def main():
    print(closest_gap([3.0, 1.0, 4.5]))
"""


def example_of(user: str) -> str:
    """The worked example: the text after its introduction, to the end of the prompt."""
    return user.split("for another program", 1)[1].split(":\n\n", 1)[1]


@pytest.mark.parametrize("kind", ["diff", "repair"])
def test_the_worked_edit_example_is_a_reply_the_parser_accepts(kind):
    b = builder()
    parent = b.view("x = 1\n", score=1.0, valid=kind == "diff", error="boom")
    user = b.mutation_messages(kind, parent)[1]["content"]
    assert "Several edits are applied one after another, in the order given" in user
    example = example_of(user)
    assert example.count("<<<<<<< SEARCH") == 2
    child = child_from_reply(kind, DIFF_EXAMPLE_TARGET, example, 10_000)
    assert "LIMIT = 100" in child and "return n * (n + 1) // 2" in child
    assert "for k in range" not in child


@pytest.mark.parametrize("kind", ["full", "crossover"])
def test_the_worked_rewrite_example_is_a_reply_the_parser_accepts(kind):
    b = builder()
    parent = b.view("x = 1\n", score=1.0, valid=True)
    user = b.mutation_messages(kind, parent, second=parent)[1]["content"]
    example = example_of(user)
    assert "<<<<<<< SEARCH" not in user  # a rewrite is asked for, not edits
    child = child_from_reply(kind, FULL_EXAMPLE_TARGET, example, 10_000)
    assert "ordered = sorted(values)" in child
    assert child.split("# EVOLVE-BLOCK-END")[1] == FULL_EXAMPLE_TARGET.split(
        "# EVOLVE-BLOCK-END")[1]


def test_recent_attempts_are_listed_with_their_outcome():
    b = builder()
    parent = b.view("x = 1\n", score=1.0, valid=True)
    history = [AttemptView("diff", "score 1.5 (+0.5 vs its parent)", "Widen the lattice."),
               AttemptView("full", "invalid (runtime-error: ZeroDivisionError)", "Divide by n.",
                           same_parent=False)]
    user = b.mutation_messages("diff", parent, history=history)[1]["content"]
    section = user.split("## Recent attempts", 1)[1].split("## How to answer")[0]
    assert '- [diff] score 1.5 (+0.5 vs its parent): "Widen the lattice."' in section
    assert '- [full, another program] invalid (runtime-error: ZeroDivisionError): ' \
           '"Divide by n."' in section
    assert "Do not repeat an attempt that failed" in section
    assert "## Recent attempts" not in b.mutation_messages("diff", parent)[1]["content"]


def test_repair_prompt_states_the_error_once():
    b = builder()
    error = "the evaluator rejected the output: circle 3 leaves the square"
    broken = b.view("x = 1\n", score=None, valid=False, error=error,
                    feedback="circle 3 leaves the square\nradii sum 2.1 before the check",
                    stderr="Traceback (most recent call last):\n  line 9, in pack_circles")
    user = b.mutation_messages("repair", broken)[1]["content"]
    assert user.count("circle 3 leaves the square") == 1
    assert "radii sum 2.1 before the check" in user  # what the error does not say is kept
    assert "line 9, in pack_circles" in user  # and the traceback's location


def test_what_was_already_better_than_the_peers_stays():
    b = builder()
    parent = b.view("x = 1\n", score=1.0, valid=True, stdout="packed 26 circles",
                    stderr="warning: slow")
    system, user = (m["content"] for m in b.mutation_messages("diff", parent))
    assert "(xi - xj)^2 + (yi - yj)^2 >= (ri + rj)^2" in system  # the function's contract
    assert "packed 26 circles" in user and "warning: slow" in user  # output excerpts
    retry = b.retry_message("SEARCH block 2 matches nothing in the current program")
    assert "SEARCH block 2 matches nothing in the current program" in retry["content"]

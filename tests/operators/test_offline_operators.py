"""Offline operators: many random mutations of every built-in problem's initial program."""

from __future__ import annotations

import ast
import difflib
import random
from pathlib import Path

import pytest

from evolve.operators.offline import NoChange, Source, SwapOperator, TuneOperator
from evolve.problem.spec import EVOLVE_BLOCK_END, EVOLVE_BLOCK_START, load_problem

REPO = Path(__file__).resolve().parents[2]
FIXTURE = Path(__file__).parent / "fixtures" / "sample_program.py"
PERTURBATIONS = 1000


def initial_programs() -> list[tuple[str, str]]:
    """(name, code) of the fixture and of every problem in the repository at test time."""
    programs = [("fixture", FIXTURE.read_text())]
    for toml in sorted(REPO.glob("problems/*/problem.toml")):
        spec = load_problem(toml.parent)
        if spec.initial_path.suffix == ".py":
            programs.append((spec.name, spec.initial_code()))
    return programs


PROGRAMS = initial_programs()


def outside_block(code: str) -> list[str]:
    """The lines outside the EVOLVE-BLOCK(s), markers included."""
    kept, inside = [], False
    for line in code.split("\n"):
        if EVOLVE_BLOCK_START in line:
            inside = True
            kept.append(line)
        elif EVOLVE_BLOCK_END in line:
            inside = False
            kept.append(line)
        elif not inside:
            kept.append(line)
    return kept


@pytest.mark.parametrize("operator", [TuneOperator(), SwapOperator()], ids=["tune", "swap"])
@pytest.mark.parametrize("name,code", PROGRAMS, ids=[name for name, _ in PROGRAMS])
def test_random_mutations_parse_and_stay_inside_the_block(operator, name, code):
    rng = random.Random(f"{operator.name}-{name}")
    frozen = outside_block(code)
    distinct = set()
    for _ in range(PERTURBATIONS):
        try:
            child = operator.propose(code, rng)
        except NoChange:
            pytest.skip(f"{operator.name} finds nothing to change in {name}")
        ast.parse(child)
        assert child != code
        assert outside_block(child) == frozen
        assert child.count("\n") == code.count("\n")
        distinct.add(child)
    # Real variety, not one fixed edit.
    assert len(distinct) >= min(10, len(operator.candidates(Source(code))))


def changed_lines(before: str, after: str) -> list[tuple[str, str]]:
    pairs = []
    for old, new in zip(before.split("\n"), after.split("\n"), strict=True):
        if old != new:
            pairs.append((old, new))
    return pairs


def test_tune_changes_only_numbers_in_the_block():
    code = FIXTURE.read_text()
    rng = random.Random(0)
    seen_lines, changes = set(), set()
    for _ in range(300):
        child = TuneOperator().propose(code, rng)
        for old, new in changed_lines(code, child):
            seen_lines.add(old)
            changes.add((old, new))
            matcher = difflib.SequenceMatcher(a=old, b=new)
            for tag, i1, i2, j1, j2 in matcher.get_opcodes():
                if tag != "equal":
                    assert set(old[i1:i2] + new[j1:j2]) <= set("0123456789.e-+_xXabcdefABCDEF")
    assert "STEP = 0.125" in seen_lines and "ITERATIONS = 40" in seen_lines
    # Indices, f-string internals and text before the block are never touched.
    for old, new in changes:
        if "points[i % len(points)][0]" in old:
            assert "points[i % len(points)][0]" in new
    assert not any("label = f" in line for line in seen_lines)


def test_tune_keeps_signs_and_int_types():
    code = "# EVOLVE-BLOCK-START\nN = 5\nZ = 0\nR = 2.5\nS = -3.0\n# EVOLVE-BLOCK-END\n"
    rng = random.Random(1)
    for _ in range(300):
        values = {}
        exec(TuneOperator().propose(code, rng), {}, values)
        assert isinstance(values["N"], int) and values["N"] >= 1
        assert values["Z"] in (0, 1)
        assert isinstance(values["R"], float) and values["R"] > 0
        assert values["S"] < 0


def test_swap_covers_every_kind_of_swap():
    code = FIXTURE.read_text()
    rng = random.Random(2)
    changes = set()
    for _ in range(400):
        child = SwapOperator().propose(code, rng)
        changes.update(changed_lines(code, child))
    texts = {new for _, new in changes}
    assert any("if i > budget" in t for t in texts)  # >= -> >
    assert any("total >= 100" in t for t in texts)  # > -> >=
    assert any("best = min(points" in t for t in texts)
    assert any("radius = max(1.0" in t for t in texts)
    assert any("ordered.sort(reverse=True)" in t for t in texts)
    assert any("sorted(points, key=lambda p: p[1], reverse=True)" in t for t in texts)
    assert any("sorted(points, reverse=True)" in t for t in texts)  # trailing comma kept valid
    assert any("points.min()" in t for t in texts)


def test_nothing_to_change_raises_nochange():
    code = 'X = "a"\n# EVOLVE-BLOCK-START\ndef f(s):\n    return s.upper()\n# EVOLVE-BLOCK-END\n'
    for operator in (TuneOperator(), SwapOperator()):
        with pytest.raises(NoChange):
            operator.propose(code, random.Random(0))
    with pytest.raises(NoChange, match="does not parse"):
        TuneOperator().propose("def broken(:\n", random.Random(0))


def test_program_without_markers_is_evolvable_as_a_whole():
    assert Source("a = 1\nb = 2\n").blocks == [(1, 3)]
    child = TuneOperator().propose("a = 1.5\n", random.Random(0))
    assert child != "a = 1.5\n" and child.startswith("a = ")

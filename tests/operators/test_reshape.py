"""`reshape` (neutral scales/offsets on comparisons, guard clauses moved) and the dedupe that
`swap` and `reshape` share: no program the run already proposed is proposed again."""

from __future__ import annotations

import itertools
import random
from pathlib import Path
from types import SimpleNamespace

import pytest

from evolve.operators.offline import Source, SwapOperator
from evolve.operators.registry import NoChange, make_offline_operator
from evolve.operators.reshape import ReshapeOperator, StructureOperator
from evolve.operators.skeleton import skeleton_of
from evolve.patch.novelty import code_hash
from tests.engine.engine_support import engine_config, open_archive, run

REPO = Path(__file__).resolve().parents[2]

POLICY = '''ON, OFF = 1, 0
# EVOLVE-BLOCK-START
def decide(left, needed, cheap):
    if left <= 0:
        return OFF
    margin = left - needed
    if needed >= left:
        return ON
    if cheap and margin > 2:
        return OFF
    return ON if (needed - 1) * 2 < left else OFF
# EVOLVE-BLOCK-END
'''

NO_ORDERING = '''# EVOLVE-BLOCK-START
def decide(kind, items):
    if kind == "a":
        return max(items)
    if kind is None:
        return 0.5 * sum(items)
    return sorted(items)[0]
# EVOLVE-BLOCK-END
'''


def decide_of(code: str):
    namespace: dict = {}
    exec(compile(code, "<policy>", "exec"), namespace)
    return namespace["decide"]


GRID = list(itertools.product(range(-2, 9), range(-2, 9), (False, True)))


def behaviour(code: str) -> list:
    decide = decide_of(code)
    return [decide(*args) for args in GRID]


def record(code: str, operator: str = "x", status: str = "evaluated"):
    return SimpleNamespace(code=code, operator=operator, status=status, score=0.0, valid=True)


def test_scales_and_offsets_keep_the_behaviour_and_add_a_literal_to_tune():
    operator = ReshapeOperator()
    source = Source(POLICY)
    single = [edits for edits in operator.rewrites(POLICY) if len(edits) == 1]
    # 4 comparisons x 2 sides x (scale, offset), less the sides that are literals (0, 2) and
    # the side that already carries a scale ((needed - 1) * 2).
    assert len(single) == 4 * 2 * 2 - 2 * 2 - 1
    expected = behaviour(POLICY)
    literals = len(skeleton_of(POLICY).literals)
    for edits in single:
        child = source.apply(edits)
        assert behaviour(child) == expected, child
        skeleton = skeleton_of(child)
        assert len(skeleton.literals) == literals + 1
        # Away from the neutral value the new literal changes what the program decides.
        new = next(i for i, lit in enumerate(skeleton.literals)
                   if lit.edit.line == edits[0].line and lit.edit.col >= edits[0].col
                   and lit.value in (1.0, 0) and (lit.kind is float) == edits[0].text.endswith(
                       "1.0"))
        values = list(skeleton.values)
        values[new] = -1.0 if skeleton.literals[new].kind is float else 3
        assert behaviour(skeleton.render(values)) != expected, child
    children = [source.apply(e) for e in single]
    assert "if needed + 0 >= left:" in [c.split("\n")[6].strip() for c in children]
    # A compound side is parenthesised before it is offset.
    assert any("return ON if ((needed - 1) * 2) + 0 < left else OFF" in c for c in children)


def test_guard_moves_respect_what_the_test_reads_and_keep_the_final_return_last():
    moves = [edits for edits in ReshapeOperator().rewrites(POLICY) if len(edits) == 2]
    children = [Source(POLICY).apply(edits) for edits in moves]
    assert children
    for child in children:
        body = child.split("def decide(left, needed, cheap):\n")[1].split("# EVOLVE")[0]
        lines = [line.strip() for line in body.strip("\n").split("\n")]
        # `if cheap and margin > 2` reads `margin`: it never moves above its assignment.
        assert lines.index("margin = left - needed") < next(
            i for i, line in enumerate(lines) if line.startswith("if cheap and margin"))
        assert lines[-1].startswith("return ON if")
    # The on-demand-like guard can be checked after the `cheap` rule, alone or with an offset
    # (neutral: the same behaviour as the plain move).
    moved = [c for c in children if c.index("if cheap") < c.index("if needed")]
    assert {"if needed >= left:" in c for c in moved} == {True, False}
    plain = next(c for c in moved if "if needed >= left:" in c)
    for child in moved:
        assert behaviour(child) == behaviour(plain)
    # A move that lets another rule decide first changes the behaviour (left = needed = 0).
    assert any(c.index("if left") > c.index("if needed") and
               behaviour(c) != behaviour(POLICY) for c in children)
    # Moving a guard past assignments only would change nothing: not offered.
    assert not any(c.index("if left") > c.index("margin =") and
                   c.index("if left") < c.index("if needed") for c in children)


def test_a_program_without_an_ordering_comparison_is_never_changed():
    operator = ReshapeOperator()
    assert operator.rewrites(NO_ORDERING) == []
    for seed in range(50):
        with pytest.raises(NoChange, match="no ordering comparison"):
            operator.propose(NO_ORDERING, random.Random(seed))
    # Comparisons outside the EVOLVE-BLOCK are not its business either.
    outside = "def g(x):\n    return x < 1\n" + NO_ORDERING
    with pytest.raises(NoChange):
        operator.propose(outside, random.Random(0))


def test_reshape_is_deterministic_given_the_rng():
    for seed in range(20):
        first = ReshapeOperator().propose(POLICY, random.Random(seed))
        assert first == ReshapeOperator().propose(POLICY, random.Random(seed))
    assert len({ReshapeOperator().propose(POLICY, random.Random(s)) for s in range(40)}) > 5


@pytest.mark.parametrize("problem", ["spot_single", "spot_multi", "txn", "circle_packing",
                                     "cloudcast"])
def test_every_rewrite_of_a_builtin_initial_parses_and_stays_in_the_block(problem):
    code = (REPO / "problems" / problem / "initial.py").read_text()
    before, _, rest = code.partition("# EVOLVE-BLOCK-START")
    after = rest.partition("# EVOLVE-BLOCK-END")[2]
    for edits in ReshapeOperator().rewrites(code):
        child = Source(code).apply(edits)
        assert child.startswith(before) and child.endswith(after)


@pytest.mark.parametrize("name", ["swap", "reshape", "structure"])
def test_an_operator_never_repeats_a_program_the_run_proposed(name):
    operator = make_offline_operator(name)
    history = {-1: record(POLICY, "initial")}
    operator.attach_history(lambda: history, lambda: 3)
    rewrites = operator.rewrites(POLICY) if name != "swap" else [
        [edit] for edit in SwapOperator().candidates(Source(POLICY))]
    # Distinct programs (moving A below B and B above A are the same program).
    total = len({code_hash(Source(POLICY).apply(edits)) for edits in rewrites})
    assert total >= 4
    children = []
    for seq in range(total):
        child = operator.propose(POLICY, random.Random(seq), seq=seq)
        children.append(child)
        if seq >= 2:  # the controller ingests a proposal `window` seqs later
            history[seq - 2] = record(children[seq - 2], name)
    assert len({code_hash(c) for c in children}) == total
    with pytest.raises(NoChange, match="already proposed"):
        operator.propose(POLICY, random.Random(99), seq=total)


def test_the_programs_to_avoid_are_a_function_of_the_planning_window():
    swap = SwapOperator()
    children = [Source(POLICY).apply([edit]) for edit in swap.candidates(Source(POLICY))]
    history = {-1: record(POLICY, "initial"), 0: record(children[0], "reshape"),
               6: record(children[1], "reshape"), 7: record(children[2], "swap")}
    swap.attach_history(lambda: history, lambda: 3)
    avoid = swap.seen.hashes(8)
    # Ingested (seq <= 8 - 3): seen; in flight by another operator: not yet (it may not be
    # committed when an uninterrupted run plans seq 8); in flight by swap itself: seen.
    assert code_hash(POLICY) in avoid and code_hash(children[0]) in avoid
    assert code_hash(children[1]) not in avoid
    assert code_hash(children[2]) in avoid
    assert code_hash(children[2]) not in swap.seen.hashes(7)  # its own seq and later: no


def test_without_history_swap_and_reshape_behave_as_before():
    # No history attached (tests, tools): nothing is avoided beyond what the operator itself
    # proposed with a seq; swap picks the same first edit as it always did for a seed.
    swap = SwapOperator()
    source = Source(POLICY)
    edits = swap.candidates(source)
    for seed in range(10):
        rng = random.Random(seed)
        assert swap.propose(POLICY, random.Random(seed)) == source.apply(
            [rng.sample(list(edits), len(edits))[0]])


RULES = '''# EVOLVE-BLOCK-START
def solve():
    low, high = 3.0, 4.0
    if low < high:
        return low
    if high > 1:
        return high
    return max(low, high)
# EVOLVE-BLOCK-END
'''


def test_a_run_with_the_default_offline_set_proposes_few_duplicates(tmp_path):
    # A real run (archive, sandbox, controller): every program the operators propose is new to
    # the run, except when two different operators reach the same program while both are in
    # flight; once nothing new is left they decline (recorded, never evaluated).
    problem = tmp_path / "problem"
    fixture = REPO / "tests" / "engine" / "fixtures" / "target"
    problem.mkdir()
    for name in ("evaluate.py", "problem.toml"):
        (problem / name).write_text((fixture / name).read_text())
    (problem / "initial.py").write_text(RULES)
    config = engine_config(tmp_path / "run", None, problem=str(problem),
                           budget={"max_programs": 30},
                           operators={"models": [], "use_offline": "auto",
                                      "offline": ["optimise", "structure"]})
    outcome = run(config, tmp_path / "run")
    with open_archive(tmp_path / "run") as archive:
        children = [p for p in archive.programs(outcome.run_id) if p.proposal_key != "initial"]
    assert len(children) == 30
    evaluated = [p for p in children if p.status == "evaluated"]
    duplicates = [p for p in children if p.status == "duplicate"]
    assert len(evaluated) >= 20
    assert len(duplicates) <= 3, [(p.operator, p.code) for p in duplicates]
    assert len({code_hash(p.code) for p in evaluated}) == len(evaluated)
    # reshape gave optimise-ready skeletons: some evaluated program carries a neutral literal.
    assert any(p.operator == "structure" and (" * 1.0" in p.code or " + 0" in p.code)
               for p in evaluated)


def test_structure_pools_swaps_with_reshapes_below_max_literals():
    swaps = [[edit] for edit in SwapOperator().candidates(Source(POLICY))]
    assert StructureOperator().rewrites(POLICY) == swaps + ReshapeOperator().rewrites(POLICY)
    many = POLICY.replace("margin > 2", "margin > 2 + 3 + 4 + 5 + 6 + 7 + 8 + 9 + 10 + 11")
    assert len(skeleton_of(many).literals) == 13
    # Constants enough for optimise: only the swaps (as `swap` proposes them).
    only_swaps = [[edit] for edit in SwapOperator().candidates(Source(many))]
    assert StructureOperator(max_literals=12).rewrites(many) == only_swaps
    assert len(StructureOperator(max_literals=14).rewrites(many)) > len(only_swaps)
    # min/max and sort swaps without any ordering comparison: structure, never reshape.
    assert StructureOperator().propose(NO_ORDERING, random.Random(0)) != NO_ORDERING

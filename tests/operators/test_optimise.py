"""The `optimise` operator: skeletons and literals, ranges that widen, no literal means no
proposal, trials from the archive, and the bandit turning away from it when it stops paying."""

from __future__ import annotations

import random
from pathlib import Path
from types import SimpleNamespace

import pytest

from evolve.config import BanditConfig
from evolve.operators.optimise import OptimiseOperator, search_space, skeleton_trials
from evolve.operators.registry import NoChange, make_offline_operator
from evolve.operators.search_space import dimension
from evolve.operators.skeleton import skeleton_of
from evolve.select.bandit import Arm, Bandit
from tests.engine.engine_support import engine_config, open_archive, run

PROGRAM = '''import math
# EVOLVE-BLOCK-START
SCALE = 0.5
COUNT = 4
FLAG = True


def f(x, items):
    return -SCALE * x + COUNT * items[0] if FLAG else math.sqrt(x) * -2
# EVOLVE-BLOCK-END
LIMIT = 3
'''

NO_LITERAL = '''# EVOLVE-BLOCK-START
def solve():
    return VALUE
# EVOLVE-BLOCK-END
VALUE = 1.0
'''

ONE_LITERAL = "# EVOLVE-BLOCK-START\ndef solve():\n    return 1.0\n# EVOLVE-BLOCK-END\n"


def record(code: str, score: float | None, status: str = "evaluated", operator: str = "x"):
    return SimpleNamespace(code=code, score=score, valid=score is not None, status=status,
                           operator=operator)


def test_skeleton_abstracts_block_literals_only():
    skeleton = skeleton_of(PROGRAM)
    # items[0] is an index (structure), LIMIT is outside the block; -2 is one signed literal.
    assert [(lit.kind, lit.value) for lit in skeleton.literals] == [
        (float, 0.5), (int, 4), (bool, True), (int, -2)]
    changed = skeleton.render((0.25, 7, False, -3))
    assert "SCALE = 0.25" in changed and "COUNT = 7" in changed and "FLAG = False" in changed
    assert "math.sqrt(x) * -3" in changed
    assert changed.endswith("LIMIT = 3\n")
    assert skeleton_of(changed).key == skeleton.key
    assert skeleton_of(PROGRAM.replace("COUNT = 4", "COUNT = 4.0")).key != skeleton.key
    # An unchanged literal keeps its text.
    assert skeleton_of(PROGRAM.replace("0.5", "0.50")).render((0.50, 5, True, -2)).count(
        "0.50") == 1


def test_a_program_without_literals_is_never_optimised():
    operator = OptimiseOperator()
    assert operator.candidates(NO_LITERAL) is None
    with pytest.raises(NoChange, match="no numeric or boolean literal"):
        operator.propose(NO_LITERAL, random.Random(0))


def test_a_program_without_literals_is_never_offered_in_a_run(tmp_path):
    problem = tmp_path / "problem"
    fixture = Path(__file__).resolve().parents[1] / "engine" / "fixtures" / "target"
    problem.mkdir()
    for name in ("evaluate.py", "problem.toml"):
        (problem / name).write_text((fixture / name).read_text())
    (problem / "initial.py").write_text(NO_LITERAL)
    config = engine_config(tmp_path / "run", None, problem=str(problem),
                           budget={"max_programs": 8, "stall_after": 6},
                           operators={"models": [], "use_offline": "auto",
                                      "offline": ["optimise"]})
    outcome = run(config, tmp_path / "run")
    with open_archive(tmp_path / "run") as archive:
        children = [p for p in archive.programs(outcome.run_id) if p.proposal_key != "initial"]
        stop = archive.events(outcome.run_id, kind="stop")[-1]
    # Every proposal is declined and recorded; a declined one does not use the program budget,
    # so the run ends because nothing new can be proposed, with no child ever evaluated.
    assert len(children) >= 6 and outcome.programs == 0
    assert all(p.operator == "optimise" and p.status == "rejected"
               and "no numeric or boolean literal" in p.error_text for p in children)
    assert "nothing new can be proposed" in stop.message


def test_ranges_widen_when_the_best_is_on_a_bound():
    inside = dimension(float, [1.0, 1.2], best=1.2)
    assert (inside.low, inside.high, inside.log) == pytest.approx((1 / 1.5, 1.5, True))
    widened = dimension(float, [1.0, 1.49], best=1.49)
    assert widened.high == pytest.approx(1.5 * 1.5) and widened.low == pytest.approx(1 / 1.5)
    low_side = dimension(float, [1.0, 0.67], best=0.67)
    assert low_side.low == pytest.approx(1 / 1.5 / 1.5) and low_side.high == pytest.approx(1.5)
    negative = dimension(float, [-2.0, -2.99], best=-2.99)  # searched as a magnitude
    assert negative.sign == -1 and negative.high == pytest.approx(4.5)
    ints = dimension(int, [8, 10], best=10)
    assert (ints.low, ints.high) == (6, 14)
    assert dimension(int, [8, 10], best=9).high == 10


def test_the_optimiser_follows_a_best_beyond_the_first_range():
    # VALUE = 1.0 starts with the range [0.67, 1.5]; the optimum is 10: only widening reaches it.
    code = ONE_LITERAL
    operator = OptimiseOperator()
    history = {-1: record(code, -9.0)}
    operator.attach_history(lambda: history, lambda: 1)
    for seq in range(60):
        best = max((h for h in history.values() if h.score is not None),
                   key=lambda h: h.score)
        child = operator.propose(best.code, random.Random(seq), seq=seq)
        value = skeleton_of(child).values[0]
        history[seq] = record(child, -abs(value - 10.0), operator="optimise")
    values = [skeleton_of(h.code).values[0] for h in history.values()]
    assert max(values) > 5.0
    assert len(set(values)) == len(values), "the operator repeated a point it had tried"
    dims = search_space(skeleton_of(code), skeleton_trials(skeleton_of(code), history, None))
    assert dims[0].high > 10.0


def test_trials_come_from_the_history_up_to_the_planning_window():
    code = ONE_LITERAL
    skeleton = skeleton_of(code)
    other = "# EVOLVE-BLOCK-START\ndef solve():\n    return 2.0 + 1\n# EVOLVE-BLOCK-END\n"
    history = {-1: record(code, -9.0), 0: record(code.replace("1.0", "2.0"), -8.0),
               1: record(other, -7.0), 2: record(code.replace("1.0", "3.0"), None),
               3: record(code.replace("1.0", "4.0"), -6.0, status="duplicate"),
               4: record(code.replace("1.0", "5.0"), -5.0)}
    trials = skeleton_trials(skeleton, history, last_seq=3)
    assert [t.seq for t in trials] == [-1, 0, 2]  # other skeleton, duplicate, seq 4: not trials
    assert [t.score for t in trials] == [-9.0, -8.0, None]
    operator = OptimiseOperator()
    operator.attach_history(lambda: history, lambda: 2)
    assert [t.seq for t in operator.trials_for(skeleton, seq=5)] == [-1, 0, 2]


TWIN = """# EVOLVE-BLOCK-START
def solve(x):
    return 1.5 if x > 2.0 else 0.5
# EVOLVE-BLOCK-END
"""


def test_twin_skeletons_that_score_the_same_share_their_trials():
    """A swap that changes nothing measurable (`>` -> `>=`) pools the two skeletons' trials;
    one that scores differently at the same literals keeps them apart."""
    twin = TWIN.replace(">", ">=")
    apart = TWIN.replace(">", "<")
    history = {-1: record(TWIN, 1.0), 0: record(TWIN.replace("1.5", "1.7"), 1.2),
               1: record(twin, 1.0), 2: record(twin.replace("0.5", "0.6"), 1.3),
               3: record(apart, 0.1), 4: record(apart.replace("2.0", "3.0"), 0.2)}
    pooled = [-1, 0, 1, 2]
    assert [t.seq for t in skeleton_trials(skeleton_of(TWIN), history, None)] == pooled
    assert [t.seq for t in skeleton_trials(skeleton_of(twin), history, None)] == pooled
    assert [t.seq for t in skeleton_trials(skeleton_of(apart), history, None)] == [3, 4]
    # The twin's best point is where the optimiser starts from, whichever twin it renders.
    operator = OptimiseOperator()
    operator.attach_history(lambda: history, lambda: 0)
    child = skeleton_of(operator.propose(TWIN, random.Random(0), seq=5))
    assert child.key == skeleton_of(TWIN).key
    assert child.values not in {(1.5, 2.0, 0.5), (1.7, 2.0, 0.5), (1.5, 2.0, 0.6)}
    # Before the twin was evaluated (planning window), the skeletons were apart.
    assert [t.seq for t in skeleton_trials(skeleton_of(twin), history, 0)] == []


def test_a_converged_skeleton_is_declined():
    code = ONE_LITERAL
    operator = OptimiseOperator(patience=5, patience_per_literal=1)
    history = {-1: record(code, 0.0)}
    history.update({seq: record(code.replace("1.0", f"1.{seq + 1}"), -1.0 - seq)
                    for seq in range(5)})
    operator.attach_history(lambda: history, lambda: 1)
    with pytest.raises(NoChange, match="converged"):
        operator.propose(code, random.Random(0), seq=10)
    history[5] = record(code.replace("1.0", "0.9"), 1.0)  # a new best: it is live again
    operator.propose(code, random.Random(0), seq=10)


def test_optimise_tunes_the_best_skeleton_it_has_not_converged_on():
    """A share `focus` of proposals takes as parent the island's best program whose skeleton
    is still open: a skeleton that just paid off gets the turns, not one program's share."""
    other = ONE_LITERAL.replace("return 1.0", "return 1.0 + x")  # another skeleton
    history = {-1: record(ONE_LITERAL, 0.0), 0: record(ONE_LITERAL.replace("1.0", "1.1"), 3.0),
               1: record(ONE_LITERAL.replace("1.0", "1.2"), 1.0),
               2: record(ONE_LITERAL.replace("1.0", "1.3"), 1.0),
               3: record(other, 2.0), 4: record(NO_LITERAL, 5.0)}
    members = [SimpleNamespace(seq=seq) for seq in (4, 0, 3, 1, 2, -1)]  # best first
    operator = OptimiseOperator(patience=2, patience_per_literal=1, focus=1.0)
    operator.attach_history(lambda: history, lambda: 1)
    # Program 4 has no literal; program 0's skeleton has gone 2 trials without a better one
    # (converged, as proposal 9 sees it): the best open skeleton is program 3's.
    assert operator.choose_parent(members, random.Random(0), seq=9).seq == 3
    # Proposal 2 sees programs up to 1 only: program 0's skeleton is still open there.
    assert operator.choose_parent(members, random.Random(0), seq=2).seq == 0
    # Nothing open: the engine's own selection decides.
    assert operator.choose_parent(members[:1], random.Random(0), seq=9) is None
    # The share: about `focus` of the draws, from the proposal's RNG.
    operator.focus = 0.5
    picks = [operator.choose_parent(members, random.Random(seed), seq=9) for seed in range(200)]
    assert 70 < sum(p is not None for p in picks) < 130
    assert [p is None for p in picks] == [
        operator.choose_parent(members, random.Random(seed), seq=9) is None
        for seed in range(200)]


def test_registry_and_default_offline_set():
    assert make_offline_operator("optimise").name == "optimise"
    from evolve.config import OperatorsConfig

    assert OperatorsConfig().offline == ["optimise", "structure"]
    assert make_offline_operator("reshape").name == "reshape"


def test_the_bandit_picks_optimise_less_once_it_stops_paying():
    # A simulation with the real bandit: optimise pays for its first 60 pulls, then never;
    # swap pays a little, always.
    arms = [Arm("optimise", "offline"), Arm("swap", "offline")]
    bandit = Bandit(arms, BanditConfig())
    rng = random.Random(1)
    pulls = {"optimise": 0}
    picks: list[str] = []
    for _ in range(400):
        arm = bandit.select(rng)
        bandit.on_submit(arm)
        name = str(arm.operator)
        picks.append(name)
        if name == "optimise":
            pulls["optimise"] += 1
            reward = 1.0 if pulls["optimise"] <= 60 and rng.random() < 0.8 else 0.0
        else:
            reward = 0.2 if rng.random() < 0.5 else 0.0
        bandit.update(arm, reward)
    early = picks[:80].count("optimise") / 80
    late = picks[-100:].count("optimise") / 100
    assert early > 0.6 and late < 0.4, (early, late)

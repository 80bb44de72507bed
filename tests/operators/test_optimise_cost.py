"""`optimise` builds its study without Optuna's deep copies of the added trials, and proposes
exactly what the old rebuild (`create_trial` + `add_trial`, each trial deep-copied) proposed:
along a growing run, after a resume, and whatever order the archive hands the programs in."""

from __future__ import annotations

import random
from types import SimpleNamespace

import optuna
import pytest

from evolve.operators.optimise import (
    OptimiseOperator,
    Trial,
    objective_values,
    search_space,
    skeleton_trials,
)
from evolve.operators.registry import NoChange
from evolve.operators.skeleton import skeleton_of

PROGRAM = '''import math
# EVOLVE-BLOCK-START
SCALE = 0.5
COUNT = 4
FLAG = True
RATE = 0.01


def f(x, items):
    return -SCALE * x + COUNT * items[0] * RATE if FLAG else math.sqrt(x) * -2
# EVOLVE-BLOCK-END
'''


class RebuiltOperator(OptimiseOperator):
    """The study as it was built before: `create_trial` + `add_trial`, every trial copied."""

    def study_of(self, trials, scores, dims, active, distributions, seed):
        study = optuna.create_study(direction="maximize", sampler=self.make_sampler(seed))
        for trial, score in zip(trials, scores, strict=True):
            study.add_trial(optuna.trial.create_trial(
                params={f"p{i}": dims[i].to_param(trial.values[i]) for i in active},
                distributions=distributions, value=score))
        return study


def score_of(code: str) -> float | None:
    """A landscape over the literals, with failures (COUNT too high) and exact ties."""
    scale, count, flag, _minus, rate = skeleton_of(code).values
    if count > 9:
        return None
    return round(-(scale - 1.3) ** 2 - 0.05 * (count - 7) ** 2 + (0.2 if flag else 0.0)
                 - abs(rate - 0.05), 3)


def record(code: str, operator: str) -> SimpleNamespace:
    score = score_of(code)
    return SimpleNamespace(code=code, score=score, valid=score is not None, status="evaluated",
                           operator=operator)


def run(operator_type: type[OptimiseOperator], steps: int, window: int, seed: int,
        history: dict | None = None, start: int = 0) -> tuple[list[str], dict]:
    """A hill climb of `steps` proposals from seq `start`; the archive only shows programs
    `window` proposals old. Returns what each proposal gave and the history."""
    history = history if history is not None else {-1: record(PROGRAM, "initial")}
    operator = operator_type()
    operator.attach_history(lambda: history, lambda: window)
    outcomes = []
    for seq in range(start, start + steps):
        visible = [h for k, h in history.items() if k <= max(seq - window, -1)
                   and h.score is not None]
        parent = max(visible, key=lambda h: h.score).code
        try:
            child = operator.propose(parent, random.Random(seed * 100_003 + seq), seq=seq)
        except NoChange as exc:
            outcomes.append(f"NoChange: {exc}")
            continue
        outcomes.append(child)
        history[seq] = record(child, operator.name)
    return outcomes, history


@pytest.mark.parametrize("seed", [1, 2])
def test_a_growing_run_proposes_what_the_rebuild_proposed(seed):
    new, history = run(OptimiseOperator, 70, 4, seed)
    old, _ = run(RebuiltOperator, 70, 4, seed)
    assert new == old
    assert len({o for o in new if not o.startswith("NoChange")}) > 40  # it really explored


def test_a_resumed_run_with_a_shuffled_archive_proposes_the_same():
    _, history = run(OptimiseOperator, 40, 3, 7)
    keys = list(history)
    random.Random(0).shuffle(keys)
    shuffled = {k: history[k] for k in keys}  # what a resume may read back, in any order
    new, _ = run(OptimiseOperator, 25, 3, 7, history=dict(shuffled), start=40)
    old, _ = run(RebuiltOperator, 25, 3, 7, history=dict(history), start=40)
    assert new == old
    assert any(not o.startswith("NoChange") for o in new)


def test_the_study_holds_the_trials_the_rebuild_held():
    skeleton = skeleton_of(PROGRAM)
    rng = random.Random(3)
    trials = [Trial(seq, (rng.uniform(0.1, 2.0), rng.randint(1, 12), rng.random() < 0.5, -2,
                          rng.choice([0.01, 0.02, 0.05])),
                    None if rng.random() < 0.15 else round(rng.random(), 2))
              for seq in range(120)]
    dims = search_space(skeleton, trials)
    scores = objective_values(trials)
    active = [0, 1, 4]
    distributions = {f"p{i}": dims[i].distribution() for i in active}
    built = [OptimiseOperator().study_of(trials, scores, dims, active, distributions, 5),
             RebuiltOperator().study_of(trials, scores, dims, active, distributions, 5)]
    seen = [[(t.number, t.state, t.params, t.distributions, t.values) for t in study.trials]
            for study in built]
    assert seen[0] == seen[1] and len(seen[0]) == 120
    asked = [study.ask(distributions).params for study in built]
    assert asked[0] == asked[1]


def test_a_long_archive_is_parsed_once_and_read_as_before():
    # Beyond skeleton_of's cache (4096 programs) a scan in seq order would miss on every
    # program and parse the whole archive again on each proposal.
    small = "# EVOLVE-BLOCK-START\nSCALE = 0.5\nCOUNT = 4\n# EVOLVE-BLOCK-END\n"
    skeleton = skeleton_of(small)
    rng = random.Random(4)
    history = {}
    for seq in range(-1, 4300):
        code = small.replace("SCALE = 0.5", f"SCALE = {rng.uniform(0.1, 2.0)!r}")
        score = None if seq % 10 == 3 else round(rng.random(), 3)
        history[seq] = SimpleNamespace(code=code, score=score, valid=score is not None,
                                       status="evaluated", operator="optimise")
    operator = OptimiseOperator()
    operator.attach_history(lambda: history, lambda: 4)
    first = operator.trials_for(skeleton, 4300)
    misses = skeleton_of.cache_info().misses
    again = operator.trials_for(skeleton, 4300)
    assert skeleton_of.cache_info().misses == misses  # nothing parsed again
    assert again == first == skeleton_trials(skeleton, history, 4296)  # the uncached reading
    assert len(first) == 4298  # seq -1 to 4296
    # A program read back with other code (another run's archive) is read anew.
    history[7] = record(PROGRAM, "optimise")
    assert [t.seq for t in operator.trials_for(skeleton, 4300)] == \
        [t.seq for t in first if t.seq != 7]

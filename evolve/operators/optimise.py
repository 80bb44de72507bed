"""`optimise`: tune the literals of a program's skeleton with Optuna's TPE sampler.

The numbers and booleans inside the EVOLVE-BLOCK are the parameters of the code skeleton
(evolve/operators/skeleton.py). Every evaluated program of the run with the parent's skeleton
is a trial: its literal values and its score (an invalid program ranks below every valid one);
so is every program of a twin skeleton, one seen to score exactly the same at the same literal
values (`twin_keys`: a swap that changes nothing measurable does not split the trials).
Each proposal rebuilds an Optuna study from those trials (`add_trial`) and asks it for the next
point (`study.ask`), so the optimiser holds no state of its own: a resumed run, or a skeleton an
LLM wrote, is tuned from exactly the trials the archive holds. The rebuild is cheap: each trial
is built once for its study and handed over whole (`_HandedTrial`), not deep-copied by Optuna's
in-memory storage, which was most of a proposal's CPU (benchmarks/optimise_cost.py).

Determinism. The trials a proposal sees are the programs the controller had ingested when it
planned that proposal: seq <= seq - window (see evolve/engine/controller.py), plus the
initial program, never the ones still in flight. The sampler's seed comes from the proposal's
own RNG. So the same archive and seed give the same proposals, after a kill -9 and resume too.

Why TPE: it is a function of the completed trials alone, and handles int, float (log scale)
and categorical parameters natively. Optuna's CMA-ES keeps its state in attributes of the trials
it generated itself (`_get_solution_trials` keeps only trials tagged with its generation) and
ignores trials added from outside, so it cannot be rebuilt from an archive, nor tune a skeleton
an LLM wrote (nevergrad was not measured). TPE against Optuna's random sampler and the old
`tune`: `benchmarks/optimise_samplers.py` (figures in docs/results.md).

A skeleton has converged when its best trial is `patience` trials old, or when the sampler
only proposes points already tried: the operator then declines (NoChange) at once, so the
bandit learns that `optimise` stopped paying on it and structure-changing arms get the turns.

Which skeleton to tune (`choose_parent`). The engine's parent selection weighs programs, and
an island holds dozens of programs of dozens of skeletons at about the same score (each
structural rewrite is a new skeleton at its parent's score): a skeleton whose tuning just
paid off owns one or two of them and gets a few per cent of the picks (docs/results.md tells
the spot_multi run that showed it). So a share `focus` of `optimise`'s proposals tunes the island's best
skeleton that has not converged (its best program is the parent); the rest keep the engine's
selection, so every skeleton on the island can still be tuned. The choice reads the island's
members and the trials the proposal sees, and draws from the proposal's RNG: deterministic.
"""

from __future__ import annotations

import datetime
import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.trial import FrozenTrial, TrialState

from evolve.operators.offline import NoChange
from evolve.operators.search_space import Dimension, dimension
from evolve.operators.skeleton import Shape, Skeleton, Value, format_value, try_skeleton

optuna.logging.set_verbosity(optuna.logging.WARNING)

History = Callable[[], Mapping[int, Any]]  # seq -> committed record (code, status, score, valid)
Window = Callable[[], int]
Shapes = dict[int, tuple[str, Shape | None]]  # seq -> (its code, its shape): see _shape_at


@dataclass(frozen=True)
class Trial:
    seq: int
    values: tuple[Value, ...]
    score: float | None  # None: the program failed or was not valid


def skeleton_trials(skeleton: Skeleton, history: Mapping[int, Any], last_seq: int | None
                    ) -> list[Trial]:
    """Evaluated programs of `history` with this skeleton, or one that behaves the same
    (`twin_keys`), seq <= last_seq, in seq order."""
    seen = _visible(history, last_seq)
    return _trials_of(twin_keys(skeleton, seen), seen)


def _trials_of(keys: set[str], seen: list[tuple[int, Any, Shape]]) -> list[Trial]:
    return [Trial(seq, other.values, _score(item)) for seq, item, other in seen
            if other.key in keys]


def _trials_and_twins_in(skeleton: Shape, seen: list[tuple[int, Any, Shape]]
                         ) -> tuple[list[Trial], set[str]]:
    """The skeleton's trials among `seen` (its own and its twins'), and the twin keys."""
    keys = twin_keys(skeleton, seen)
    return _trials_of(keys, seen), keys


def _visible(history: Mapping[int, Any], last_seq: int | None, shapes: Shapes | None = None
             ) -> list[tuple[int, Any, Shape]]:
    """(seq, record, shape) of the evaluated programs seq <= last_seq (the initial is
    always seen), in seq order; `shapes` remembers them across calls."""
    found = []
    for seq in sorted(history):
        if last_seq is not None and seq > max(last_seq, -1):
            break
        item = history[seq]
        if getattr(item, "status", "evaluated") != "evaluated":
            continue
        other = _shape_at(seq, item.code, shapes)
        if other is not None:
            found.append((seq, item, other))
    return found


def _shape_at(seq: int, code: str, shapes: Shapes | None) -> Shape | None:
    """The shape of program `seq`, parsed once per run when `shapes` is kept.

    Every proposal reads every program of the archive: `skeleton_of`'s cache holds 4096
    programs, and a scan in seq order of a longer archive would miss on each one and parse
    the whole archive again (over a second per proposal at 4,500 programs). The shape keeps
    no syntax tree, so one per program is cheap; it is checked against the code it came from."""
    known = shapes.get(seq) if shapes is not None else None
    if known is not None and known[0] == code:
        return known[1]
    skeleton = try_skeleton(code)
    shape = None if skeleton is None else Shape(skeleton.key, skeleton.literals)
    if shapes is not None:
        shapes[seq] = (code, shape)
    return shape


def _score(item: Any) -> float | None:
    return item.score if item.valid and item.score is not None and \
        math.isfinite(item.score) else None


def twin_keys(skeleton: Shape, seen: list[tuple[int, Any, Shape]]) -> set[str]:
    """The skeleton's key and those of its twins: skeletons seen to behave the same, i.e.
    a program of each with the same literals (values and types) scored exactly the same
    (valid), linked transitively.

    A structural edit that changes nothing measurable (`a > d` -> `a >= d` on real numbers, a
    swap in a branch never taken) makes a new skeleton with the same literals as its parent;
    without pooling, the optimiser would start over on it and split its trials between two
    programs that are one. Twins share their trials (literals match by position); a twin
    that later scores differently at other values still feeds the model its true scores.
    Noisy scores rarely tie exactly, so there skeletons stay apart."""
    if not skeleton.literals:
        return {skeleton.key}
    parent: dict[str, str] = {}

    def find(key: str) -> str:
        while parent.get(key, key) != key:
            key = parent[key]
        return key

    first_at: dict[tuple, str] = {}
    for _seq, item, other in seen:
        score = _score(item)
        if score is None or len(other.literals) != len(skeleton.literals):
            continue
        point = (other.typed_values, score)
        known = first_at.setdefault(point, other.key)
        if known != other.key:
            a, b = find(known), find(other.key)
            if a != b:
                parent[max(a, b)] = min(a, b)
    root = find(skeleton.key)
    keys = {skeleton.key} | {key for key in parent if find(key) == root}
    return keys | {root}


def search_space(skeleton: Skeleton, trials: list[Trial]) -> list[Dimension]:
    best = best_trial(trials)
    dims = []
    for index, literal in enumerate(skeleton.literals):
        values = [t.values[index] for t in trials] or [literal.value]
        dims.append(dimension(literal.kind, values,
                              best.values[index] if best is not None else None))
    return dims


def best_trial(trials: list[Trial]) -> Trial | None:
    """The first trial with the highest score (ties go to the earliest)."""
    best = None
    for trial in trials:
        if trial.score is not None and (best is None or trial.score > best.score):  # type: ignore[operator]
            best = trial
    return best


def objective_values(trials: list[Trial]) -> list[float]:
    """Scores to tell the optimiser: failures rank below every valid trial."""
    valid = [t.score for t in trials if t.score is not None]
    floor = (min(valid) - 1.0 - (max(valid) - min(valid))) if valid else 0.0
    return [t.score if t.score is not None else floor for t in trials]


class OptimiseOperator:
    """Model-based constant optimiser over a program's skeleton (an offline operator)."""

    name = "optimise"

    def __init__(self, *, patience: int = 40, patience_per_literal: int = 4,
                 max_asks: int = 12, startup_trials: int = 1, max_active: int = 3,
                 sampler: str = "tpe", focus: float = 0.5) -> None:
        self.focus = focus  # share of proposals that tune the island's best open skeleton
        self.patience = patience
        self.patience_per_literal = patience_per_literal
        self.max_asks = max_asks  # asks per proposal before the skeleton counts as exhausted
        self.startup_trials = startup_trials
        self.sampler = sampler  # "tpe", or "random" as a measured baseline
        self.max_active = max_active  # literals moved at once in a skeleton with many
        self._history: History = dict
        self._window: Window = lambda: 0
        self._proposed: dict[int, tuple[str, tuple[Value, ...]]] = {}  # seq -> (skeleton, values)
        self._shapes: Shapes = {}  # every program's shape, parsed once (_shape_at)

    def attach_history(self, history: History, window: Window) -> None:
        """Where the run's programs are (seq -> record) and the controller's planning window."""
        self._history = history
        self._window = window

    def candidates(self, code: str) -> Skeleton | None:
        """The parent's skeleton, or None when it has no literal inside an EVOLVE-BLOCK."""
        skeleton = try_skeleton(code)
        return skeleton if skeleton is not None and skeleton.literals else None

    def converged(self, skeleton: Skeleton, trials: list[Trial]) -> bool:
        best = best_trial(trials)
        if best is None:
            return len(trials) >= self.patience
        patience = max(self.patience, self.patience_per_literal * len(skeleton.literals))
        since_best = sum(1 for t in trials if t.seq > best.seq)
        return since_best >= patience

    def choose_parent(self, members: Sequence[Any], rng: random.Random, *,
                      seq: int | None = None) -> Any | None:
        """With probability `focus`, the best of `members` (an island's valid programs, best
        first, each with its `seq`) whose skeleton has a literal and has not converged, as
        seen by proposal `seq`; None otherwise (the engine selects the parent as usual)."""
        if not members or rng.random() >= self.focus:
            return None
        history = self._history()
        seen = self._seen(history, seq)
        tried: set[str] = set()
        for member in members:
            item = history.get(member.seq)
            skeleton = None if item is None else self.candidates(item.code)
            if skeleton is None or skeleton.key in tried:
                continue
            tried.add(skeleton.key)
            if not self.converged(skeleton, _trials_and_twins_in(skeleton, seen)[0]):
                return member
        return None

    def trials_for(self, skeleton: Skeleton, seq: int | None) -> list[Trial]:
        return self._trials_and_twins(skeleton, seq)[0]

    def _trials_and_twins(self, skeleton: Skeleton, seq: int | None
                          ) -> tuple[list[Trial], set[str]]:
        """The trials proposal `seq` sees (seq <= seq - window) and the twin keys they give:
        one pass over the history serves both the trials and the in-flight check."""
        return _trials_and_twins_in(skeleton, self._seen(self._history(), seq))

    def _seen(self, history: Mapping[int, Any], seq: int | None
              ) -> list[tuple[int, Any, Shape]]:
        """The part of `history` proposal `seq` sees: programs up to seq - window."""
        return _visible(history, None if seq is None else seq - self._window(), self._shapes)

    def propose(self, code: str, rng: random.Random, *, seq: int | None = None) -> str:
        skeleton = self.candidates(code)
        if skeleton is None:
            raise NoChange("no numeric or boolean literal inside the EVOLVE-BLOCK")
        trials, twins = self._trials_and_twins(skeleton, seq)
        if self.converged(skeleton, trials):
            raise NoChange(f"this skeleton has converged ({len(trials)} trials, no improvement "
                           "in the recent ones)")
        parent = Trial(-2, skeleton.values, None)
        known = {t.values for t in trials} | {parent.values} | self.in_flight(twins, seq)
        values = self.ask(skeleton, trials or [parent], known, rng)
        if seq is not None:
            self._proposed[seq] = (skeleton.key, values)
            for old in [k for k in self._proposed if k <= seq - 2 * max(1, self._window())]:
                del self._proposed[old]
        try:
            return skeleton.render(values)
        except SyntaxError as exc:  # e.g. a sign where the grammar takes none: ask again
            raise NoChange(f"the new values do not parse ({exc.msg})") from exc

    def in_flight(self, keys: set[str], seq: int | None) -> set[tuple[Value, ...]]:
        """Values this operator proposed, for a skeleton of `keys` (it and its twins), for the
        proposals planned after the trials it sees (seq - window < k < seq), so it does not
        repeat one still being evaluated.

        They come from its own memory of this session, and from the archive for proposals
        committed before a resume (the controller replays those without asking the operator).
        Both give the same set as an uninterrupted run: proposals are asked in seq order."""
        if seq is None:
            return set()
        window = self._window()
        found = {values for k, (key, values) in self._proposed.items()
                 if seq - window < k < seq and key in keys}
        history = self._history()
        for k in range(max(0, seq - window + 1), seq):
            item = history.get(k)
            if item is None or getattr(item, "operator", None) != self.name:
                continue
            other = try_skeleton(item.code)
            if other is not None and other.key in keys:
                found.add(other.values)
        return found

    def ask(self, skeleton: Skeleton, trials: list[Trial], known: set[tuple[Value, ...]],
            rng: random.Random) -> tuple[Value, ...]:
        """New literal values from TPE, never a point already tried.

        A skeleton may have dozens of literals, most of them structural (`1 - x`, `2 * pi`):
        moving all at once almost always breaks the program. So each proposal searches a
        small random subset of them (all of them when there are few), the others stay at the
        best trial's values, and TPE models the subset over all the skeleton's trials: its
        "good" group is the best trials, so it samples near them and away from failures.
        """
        dims = search_space(skeleton, trials)
        best = best_trial(trials)
        base = list(best.values if best is not None else trials[-1].values)
        scores = objective_values(trials)
        by_values = {t.values: s for t, s in zip(trials, scores, strict=True)}
        asks_per_subset = max(1, self.max_asks // 3)
        weights = literal_weights(trials)
        for _ in range(3):  # a subset of small ints can be exhausted: then try another
            active = self.subset(len(dims), rng, weights)
            distributions: dict[str, BaseDistribution] = {
                f"p{i}": dims[i].distribution() for i in active}
            study = self.study_of(trials, scores, dims, active, distributions,
                                  rng.getrandbits(31))
            for _ in range(asks_per_subset):
                asked = study.ask(distributions)
                values = list(base)
                for i in active:
                    values[i] = _round(dims[i], dims[i].to_value(asked.params[f"p{i}"]))
                if tuple(values) not in known:
                    return tuple(values)
                # Already tried: tell the optimiser what it already knows, and ask again.
                study.tell(asked, by_values.get(tuple(values), min(scores)))
        raise NoChange(f"the optimiser only proposes points already tried ({len(trials)} "
                       "trials): this skeleton has converged")

    def study_of(self, trials: list[Trial], scores: list[float], dims: list[Dimension],
                 active: list[int], distributions: dict[str, BaseDistribution], seed: int
                 ) -> optuna.Study:
        """A fresh study holding `trials` (literals `active`, scored `scores`) as completed
        trials, in order, with the sampler seeded by `seed`."""
        study = optuna.create_study(direction="maximize", sampler=self.make_sampler(seed))
        added = datetime.datetime.now()  # the sampler never reads trial times
        for trial, score in zip(trials, scores, strict=True):
            study.add_trial(_HandedTrial(
                number=-1, trial_id=-1, state=TrialState.COMPLETE, value=score, values=None,
                datetime_start=added, datetime_complete=added,
                params={f"p{i}": dims[i].to_param(trial.values[i]) for i in active},
                distributions=distributions, user_attrs={}, system_attrs={},
                intermediate_values={}))
        return study

    def make_sampler(self, seed: int) -> optuna.samplers.BaseSampler:
        if self.sampler == "random":  # the baseline the model must beat (benchmarks)
            return optuna.samplers.RandomSampler(seed=seed)
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=self.startup_trials,
                                          multivariate=True)

    def subset(self, count: int, rng: random.Random,
               weights: list[float] | None = None) -> list[int]:
        """Which literals this proposal moves: all of up to `max_active`, else 1 to
        `max_active` of them (fewer more often), drawn by `weights`, in source order."""
        if count <= self.max_active:
            return list(range(count))
        size = 1
        while size < self.max_active and rng.random() < 0.5:
            size += 1
        pool, chosen = list(range(count)), []
        weight = list(weights) if weights is not None else [1.0] * count
        for _ in range(size):
            pick = rng.choices(range(len(pool)), weights=weight)[0]
            chosen.append(pool.pop(pick))
            weight.pop(pick)
        return sorted(chosen)


class _HandedTrial(FrozenTrial):
    """A completed trial built for one study and handed over to it whole.

    `Study.add_trial` validates it, then Optuna's in-memory storage deep-copies it so the
    caller cannot change the stored trial; this one belongs to nobody else (built fresh for
    each study, never kept), so the copy is the trial itself. The copies were most of a
    proposal's CPU: about 100 trials re-added per proposal in a 300-program run. Everything
    the sampler reads (params, distributions, value, state, order) is what `create_trial`
    gives, so the proposals are the same (tests/operators/test_optimise_cost.py)."""

    def __deepcopy__(self, memo: dict[int, Any]) -> _HandedTrial:
        return self


def literal_weights(trials: list[Trial]) -> list[float]:
    """How often moving each literal away from the best trial of its time changed the score
    without breaking the program (Laplace-smoothed; an improvement counts three times).

    `1 - x` or `range(n)` break when moved, a loop bound of 50 or a flag nobody reads change
    nothing, a named constant moves the score: a skeleton with many literals spends its
    proposals on the literals that matter (each proposal starts from the best trial)."""
    count = len(trials[0].values)
    moved, useful = [0] * count, [0] * count
    best = trials[0]
    for trial in trials[1:]:
        best_score = best.score if best.score is not None else -math.inf
        gain = 0
        if trial.score is not None and trial.score != best_score:
            gain = 3 if trial.score > best_score else 1
        for i in range(count):
            if trial.values[i] != best.values[i]:
                moved[i] += 1
                useful[i] += gain
        if trial.score is not None and trial.score > best_score:
            best = trial
    return [(u + 1) / (m + 2) for u, m in zip(useful, moved, strict=True)]


def _round(dim: Dimension, value: Value) -> Value:
    """The value as the program will hold it once written (6 significant digits)."""
    if dim.kind is float:
        return float(format_value(float, value))
    return value

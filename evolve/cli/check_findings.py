"""What `evolve problems check` finds wrong with a problem beyond an invalid program, and the
score spread of `--repeat K` (each program evaluated K times: how noisy the score is)."""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass

from evaluators.result import EvalResult
from evolve.problem.spec import ProblemSpec


def missing_metrics(spec: ProblemSpec, results: dict[str, EvalResult]) -> list[str]:
    """One line per program that reached the end of the cascade without a `[metrics]` name in
    its final metrics: a shown metric the LLM never sees, or a feature that leaves the
    MAP-Elites grid empty."""
    wanted = {"features": spec.config.metrics.features, "shown": spec.config.metrics.shown}
    final = spec.stages[-1].name
    problems = []
    for program, result in results.items():
        if not result.valid or result.stage_reached != final:
            continue
        metrics = result.metrics
        for section, names in wanted.items():
            absent = [name for name in names if name not in metrics]
            if absent:
                problems.append(f"{program}: [metrics].{section} names {', '.join(absent)}, "
                                f"absent from its final metrics (declare the stages they come "
                                f"from in [score].metrics_from, or fix the name)")
    return problems


def stopped_at_gate(spec: ProblemSpec, results: dict[str, EvalResult]) -> list[str]:
    """Programs whose cascade a threshold stopped before the last stage: a reference program
    stopped by a cheap stage means that stage does not judge programs as the full one does."""
    final = spec.stages[-1].name
    problems = []
    for program, result in results.items():
        last = result.last
        if result.valid and result.stage_reached != final and last is not None:
            problems.append(f"{program}: stopped by the gate of stage '{last.stage}' (score "
                            f"{last.score:.6g}, threshold {_threshold(spec, last.stage)}); it "
                            f"never reached stage '{final}'")
    return problems


def _threshold(spec: ProblemSpec, stage: str) -> str:
    found = next((s.threshold for s in spec.stages if s.name == stage), None)
    return "none" if found is None else f"{found:g}"


@dataclass(frozen=True)
class Spread:
    """The program score over repeated evaluations of the same code."""

    runs: int
    valid_runs: int
    mean: float | None
    std: float | None            # sample standard deviation (None under two valid runs)
    minimum: float | None
    maximum: float | None

    @property
    def range(self) -> float | None:
        return None if self.minimum is None else self.maximum - self.minimum

    @property
    def relative_std(self) -> float | None:
        if self.std is None or not self.mean:
            return None
        return self.std / abs(self.mean)

    def as_dict(self) -> dict:
        return {**asdict(self), "range": self.range, "relative_std": self.relative_std}

    def line(self, program: str) -> str:
        if self.mean is None:
            return f"{program}: no valid run of {self.runs}"
        text = (f"{program}: mean {self.mean:.6g}, std {_num(self.std)}, min {self.minimum:.6g}, "
                f"max {self.maximum:.6g}, range {_num(self.range)}")
        if self.relative_std is not None:
            text += f" ({self.relative_std:.2%} of the mean)"
        if self.valid_runs < self.runs:
            text += f"; only {self.valid_runs} of {self.runs} runs valid"
        return text


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"


def spread(results: list[EvalResult]) -> Spread:
    scores = [r.score for r in results if r.valid and r.score is not None]
    if not scores:
        return Spread(len(results), 0, None, None, None, None)
    return Spread(runs=len(results), valid_runs=len(scores), mean=statistics.fmean(scores),
                  std=statistics.stdev(scores) if len(scores) > 1 else None,
                  minimum=min(scores), maximum=max(scores))

"""The staged cascade: run a problem's stages in order, stop at the first that fails, is invalid
or scores below its threshold, and keep every stage's result."""

from __future__ import annotations

import os
import signal
from collections.abc import Awaitable, Callable, Sequence

from evaluators.oom import oom_note
from evaluators.result import EvalResult, FailureKind, StageResult
from evaluators.sandbox import SandboxOutcome
from evaluators.scrub import scrub, secrets_in
from evolve.problem.spec import ProblemSpec, ScoreSection, StageSpec


def select_stages(problem: ProblemSpec, names: Sequence[str] | None) -> list[StageSpec]:
    """The problem's stages (all, or the named ones) in problem.toml order."""
    stages = problem.stages
    if names is None:
        return stages
    known = {s.name for s in stages}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"problem '{problem.name}' has no stage {', '.join(unknown)}; "
                         f"its stages are {', '.join(s.name for s in stages)}")
    return [s for s in stages if s.name in set(names)]


def stops_cascade(stage: StageSpec, result: StageResult) -> bool:
    if not result.ok:
        return True
    return stage.threshold is not None and (result.score or 0.0) < stage.threshold


async def run_cascade(stages: Sequence[StageSpec],
                      run_stage: Callable[[StageSpec], Awaitable[StageResult]],
                      declared: ScoreSection | None = None) -> EvalResult:
    result = EvalResult()
    for stage in stages:
        stage_result = await run_stage(stage)
        result.stages.append(stage_result)
        if stops_cascade(stage, stage_result):
            break
    if declared is not None and stages:
        finalize(result, declared, stages[-1].name)
    return result


def finalize(result: EvalResult, declared: ScoreSection, final_stage: str) -> None:
    """Set the declared final score, metrics and feedback once the cascade reached its last
    stage with every stage valid. A declaration naming a stage that was not run (an evaluation
    of some stages only) leaves the last stage's own score, metrics or feedback in place."""
    if result.stage_reached != final_stage or not all(s.ok for s in result.stages):
        return
    by_name = {s.stage: s for s in result.stages}
    if declared.stage is not None and declared.stage in by_name:
        result.final_score = by_name[declared.stage].score
    elif declared.weights and all(name in by_name for name in declared.weights):
        result.final_score = sum(weight * (by_name[name].score or 0.0)
                                 for name, weight in declared.weights.items())
    sources = [by_name[name] for name in declared.metrics_from if name in by_name]
    if sources:
        metrics: dict = {}
        for stage in sources:
            metrics.update(stage.metrics)
        result.final_metrics = metrics
        result.final_feedback = "\n".join(s.feedback for s in sources if s.feedback)


def _busy_machine() -> str:
    """A wall-clock limit is reached sooner on a machine busy with other work: say so when
    more processes wanted a core than there are cores (the 1-minute load average)."""
    try:
        load = os.getloadavg()[0]
    except OSError:
        return ""
    cores = os.cpu_count() or 1
    if load <= cores:
        return ""
    return (f"; the machine was busy meanwhile (load average {load:.1f} on {cores} cores), "
            f"which slows every program: the limit may have been reached for that reason")


def _ending(outcome: SandboxOutcome) -> str:
    """How a sandbox that wrote no result ended: the harness always writes one unless it is
    killed (the program cannot signal it), so say by what, and what the channel held."""
    code = outcome.returncode
    # A cold run reports a signal as a negative code; bubblewrap and the warm path's fork
    # as 128 + the signal number.
    number = -code if code is not None and code < 0 else \
        code - 128 if code is not None and 128 < code < 128 + 65 else None
    if number is not None:
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = f"signal {number}"
        how = f"its process was killed by {name} from outside the sandbox's harness"
        if number == signal.SIGKILL:
            how += f" ({oom_note(outcome.oom_kills)})"
    else:
        how = f"its process exited with code {code} before the harness wrote one"
    channel = ("nothing arrived on the result channel" if not outcome.result_bytes else
               f"the result channel held {outcome.result_bytes} bytes that are not a complete "
               f"result")
    return f"{how}; {channel}"


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


def stage_result(stage: StageSpec, outcome: SandboxOutcome, timeout_s: float) -> StageResult:
    """A StageResult from what the sandbox produced, with the secrets of this process's
    environment scrubbed from every text the candidate could have influenced (it goes to the
    archive and to the LLM)."""
    result = _stage_result(stage, outcome, timeout_s)
    secrets = secrets_in()
    if not secrets:
        return result
    return result.model_copy(update={
        "stdout": scrub(result.stdout, secrets), "stderr": scrub(result.stderr, secrets),
        "reason": scrub(result.reason, secrets), "feedback": scrub(result.feedback, secrets),
        "metrics": scrub(result.metrics, secrets)})


def _stage_result(stage: StageSpec, outcome: SandboxOutcome, timeout_s: float) -> StageResult:
    common = dict(stage=stage.name, wall_s=outcome.wall_s, stdout=outcome.stdout,
                  stderr=outcome.stderr, isolation=outcome.isolation)
    if outcome.timed_out:
        return StageResult(**common, failure=FailureKind.TIMEOUT,
                           reason=f"wall-clock limit of {timeout_s:g} s exceeded in stage "
                                  f"'{stage.name}'; make the program faster (or it hung)"
                                  f"{_busy_machine()}")
    data = outcome.result
    if data is None:
        detail = _last_line(outcome.stderr)
        if detail.startswith(("bwrap:", "unshare:", "could not start")):
            return StageResult(**common, failure=FailureKind.EVALUATOR_ERROR,
                               reason=f"the sandbox could not run: {detail}")
        return StageResult(**common, failure=FailureKind.CRASH,
                           reason=f"the evaluation ended without a result: {_ending(outcome)}"
                                  f"{'; last output: ' + detail if detail else ''}")
    failure = data.get("failure")
    return StageResult(
        **common,
        score=data.get("score"),
        valid=bool(data.get("valid", False)) and failure is None,
        metrics=data.get("metrics") or {},
        feedback=data.get("feedback") or "",
        failure=FailureKind(failure) if failure else None,
        reason=data.get("reason", ""),
        cpu_s=float(data.get("cpu_s", 0.0)),
    )

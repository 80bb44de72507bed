"""Building prompts from the Jinja2 templates in `prompts/`, within a token budget.

The system prompt carries the problem statement, the function's signature and contract, and how
a program is scored: the stages in order with their time limits and thresholds, the rule that
makes the score, and each shown metric with its meaning and direction. A mutation prompt
carries the parent's code, score, shown metrics and feedback (the evaluator's text plus
stdout/stderr excerpts; an error is stated once), recent attempts from the same parent or island
(the change the model described, and its score or failure), inspirations with their scores, the
scratchpad's advice, and a worked example of the reply format asked for. When the estimate
exceeds the budget, inspirations are dropped first (last first), then the oldest attempts, then
output excerpts and feedback are shortened; the parent's code is never cut.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import jinja2

from evolve.config import ConfigError, PromptConfig
from evolve.problem.spec import ProblemSpec

Message = dict[str, str]
TEMPLATES = ("system.j2", "diff.j2", "full.j2", "crossover.j2", "repair.j2", "retry.j2",
             "novelty_judge.j2", "scratchpad.j2")
# Imported by the templates above: compiled with them (else at the first prompt, in the loop).
SHARED_TEMPLATES = ("_macros.j2",)


def builtin_templates_dir() -> Path:
    spec = importlib.util.find_spec("prompts")
    if spec is None or spec.origin is None:
        raise RuntimeError("the prompts package (templates) is not installed with evolve")
    return Path(spec.origin).parent


def estimate_tokens(text: str) -> int:
    """A fast estimate (about four characters per token for code and English)."""
    return len(text) // 4 + 1


def excerpt(text: str, limit: int) -> str:
    """The head and tail of a long text, with a marker in between."""
    if len(text) <= limit:
        return text
    if limit <= 0:
        return ""
    head = limit * 2 // 3
    tail = limit - head
    return f"{text[:head]}\n... [{len(text) - limit} characters cut] ...\n{text[-tail:]}"


@dataclass(frozen=True)
class AttemptView:
    """An earlier proposal as a prompt recalls it: what was tried and what came of it."""

    mutation: str                 # diff | full | crossover | repair | an offline operator's
    outcome: str                  # "score 1.5 (+0.2 vs its parent)", "rejected (diff-format: ...)"
    summary: str = ""             # the change as the model described it
    same_parent: bool = True      # False: another program of the same island


@dataclass(frozen=True)
class ProgramView:
    """A program as a prompt shows it."""

    code: str
    score: float | None = None
    valid: bool = True
    label: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    feedback: str = ""
    error: str = ""
    stdout: str = ""
    stderr: str = ""


class PromptBuilder:
    def __init__(self, problem: ProblemSpec, config: PromptConfig, max_code_chars: int):
        self.problem = problem
        self.config = config
        self.max_code_chars = max_code_chars
        folders = [builtin_templates_dir()]
        if config.templates_dir:
            folders.insert(0, Path(config.templates_dir))
        self.env = jinja2.Environment(loader=jinja2.FileSystemLoader([str(f) for f in folders]),
                                      undefined=jinja2.StrictUndefined, trim_blocks=True,
                                      lstrip_blocks=True, keep_trailing_newline=True,
                                      autoescape=False, auto_reload=False)
        self.shown_metrics = list(problem.config.metrics.shown)
        # Compiled once, at the start: a template edited during a run is not picked up, and
        # each prompt costs no file-system checks.
        self._templates: dict[str, jinja2.Template] = {}
        for name in TEMPLATES + SHARED_TEMPLATES:  # a broken (user) template fails the run
            try:                                      # at its start
                self._templates[name] = self.env.get_template(name)
            except jinja2.TemplateError as exc:
                raise ConfigError(f"prompt template {name}: {exc} (templates from "
                                  f"{', '.join(str(f) for f in folders)})") from exc
        self._system = self.render("system.j2", scoring=self.scoring())

    def render(self, name: str, **values: Any) -> str:
        base = {"problem": self.problem.config.problem, "function": self.problem.config.function,
                "language": self.problem.config.problem.language,
                "max_chars": self.max_code_chars}
        template = self._templates.get(name) or self.env.get_template(name)
        return template.render(**base, **values).strip() + "\n"

    def scoring(self) -> dict[str, Any]:
        """How a program is scored, for the system prompt: the stages in order (name, time
        limit, threshold, description), the rule that makes the score, the shown metrics with
        their meaning and direction."""
        config = self.problem.config
        stages = [{"name": s.name, "timeout_s": s.timeout_s, "threshold": s.threshold,
                   "description": s.description.strip()} for s in config.stages]
        if config.score.weights:
            rule = " + ".join(f"{w:g} x the score of stage '{name}'"
                              for name, w in config.score.weights.items())
        else:
            rule = f"the score of stage '{config.score.stage or config.stages[-1].name}'"
        about = config.metrics.about
        metrics = [{"name": name, "meaning": about[name].meaning.strip() if name in about else "",
                    "better": about[name].better if name in about else "neither"}
                   for name in self.shown_metrics]
        return {"stages": stages, "rule": rule, "metrics": metrics}

    def view(self, code: str, *, score: float | None, valid: bool, label: str = "",
             metrics: dict[str, Any] | None = None, feedback: str = "", error: str = "",
             stdout: str = "", stderr: str = "") -> ProgramView:
        """A ProgramView with only the metrics the problem shows and output excerpts; feedback
        lines that the error already says are left out (the error is stated once)."""
        limit = self.config.output_excerpt_chars
        feedback = _without_repeats(feedback, error)
        shown = {k: _fmt(v) for k, v in (metrics or {}).items() if k in self.shown_metrics}
        return ProgramView(code=code, score=score, valid=valid, label=label, metrics=shown,
                           feedback=excerpt(feedback, limit), error=excerpt(error, limit),
                           stdout=excerpt(stdout, limit), stderr=excerpt(stderr, limit))

    @property
    def system(self) -> str:
        return self._system

    def mutation_messages(self, kind: str, parent: ProgramView, *,
                          inspirations: list[ProgramView] = (),  # type: ignore[assignment]
                          scratchpad: list[str] = (),  # type: ignore[assignment]
                          second: ProgramView | None = None,
                          history: list[AttemptView] = (),  # type: ignore[assignment]
                          ) -> list[Message]:
        """System + user messages for a diff, full, crossover or repair proposal, within budget."""
        template = {"diff": "diff.j2", "full": "full.j2", "crossover": "crossover.j2",
                    "repair": "repair.j2"}[kind]
        if kind == "crossover" and second is None:
            raise ValueError("a crossover prompt needs a second parent")
        inspirations = list(inspirations)
        history = list(history)
        budget = self.config.token_budget
        limit = self.config.output_excerpt_chars
        while True:
            user = self.render(template, parent=parent, second=second,
                               inspirations=inspirations, scratchpad=list(scratchpad),
                               history=history)
            if estimate_tokens(self._system) + estimate_tokens(user) <= budget:
                break
            if inspirations:
                inspirations.pop()
                continue
            if history:
                history.pop(0)  # the oldest first
                continue
            if limit > 200:  # then shorten the output excerpts and feedback
                limit //= 2
                parent = _shrink(parent, limit)
                second = _shrink(second, limit) if second is not None else None
                continue
            break  # the parent's code alone exceeds the budget: send it anyway
        return [{"role": "system", "content": self._system}, {"role": "user", "content": user}]

    def retry_message(self, error: str) -> Message:
        return {"role": "user", "content": self.render("retry.j2", error=error)}

    def judge_messages(self, candidate: str, existing: str) -> list[Message]:
        return [{"role": "user", "content": self.render("novelty_judge.j2", candidate=candidate,
                                                        existing=existing)}]

    def scratchpad_messages(self, rows: list[dict[str, Any]], previous: list[str],
                            best_score: float | None, max_recommendations: int) -> list[Message]:
        text = self.render("scratchpad.j2", rows=rows, previous=previous, best_score=best_score,
                           max_recommendations=max_recommendations)
        return [{"role": "user", "content": text}]


def _without_repeats(feedback: str, error: str) -> str:
    """The feedback's lines that the error text does not already contain."""
    if not error or not feedback:
        return feedback
    kept = [line for line in feedback.splitlines() if not line.strip() or line.strip() not in error]
    return "\n".join(kept).strip()


def _shrink(view: ProgramView, limit: int) -> ProgramView:
    return replace(view, feedback=excerpt(view.feedback, limit), error=excerpt(view.error, limit),
                   stdout=excerpt(view.stdout, limit // 2), stderr=excerpt(view.stderr, limit // 2))


def _fmt(value: Any) -> Any:
    return f"{value:.6g}" if isinstance(value, float) else value

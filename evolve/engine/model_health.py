"""Models that cannot work: a run stops at once when a model fails from its first call, and
later benches a model that keeps failing.

Two counters per model, both of proposals whose LLM call itself failed (`llm-error`: no reply
after the client's retries; a reply the proposer could not use is not a model failure):
- `StartupWatch` counts in completion order from the start of a session. A model that has never
  answered and failed `llm.fail_fast_after` times in a row stops the run (`RunCannotWork`) with
  the model, its error and the fix.
- `BenchWatch` counts in sequence (ingest) order, so benching is the same in every repetition
  of a run and in a resume; `llm.bench_after` failures in a row bench the model's arms.
"""

from __future__ import annotations

from dataclasses import dataclass

from evolve.engine.errors import RunCannotWork
from evolve.operators.error_text import has_status, plain_error_text

LLM_ERROR = "llm-error"


def fix_for(model: str, error: str, api_base: str | None) -> str:
    """What the user can do about `error` (the last failed attempt's text)."""
    text = plain_error_text(error)
    if "missingapikey" in text or "noserver" in text:
        return "see the error above"
    if "authentication" in text or "permission" in text or has_status(text, "401", "403"):
        return ("check the API key (its environment variable, or api_key_env in the model's "
                "config) and `evolve models check --model " + model + "`")
    if "provider not provided" in text or "notfound" in text or has_status(text, "404") or \
            "does not exist" in text or "unknown model" in text:
        return ("check the model name: litellm's form is provider/model, e.g. "
                "openai/gpt-4.1-mini or anthropic/claude-haiku-4-5")
    if "connect" in text or "refused" in text or "timeout" in text:
        where = f"at {api_base}" if api_base else "of its provider"
        return (f"check that the server {where} is running and reachable "
                f"(`evolve models check --model {model}`)")
    return f"check the model with `evolve models check --model {model}`"


@dataclass
class _Streak:
    answered: bool = False
    failures: int = 0
    last_error: str = ""


class StartupWatch:
    """Stops the run when a model fails from its first call on."""

    def __init__(self, limit: int, api_bases: dict[str, str | None]):
        self.limit = limit
        self.api_bases = api_bases
        self._streaks: dict[str, _Streak] = {}

    def observe(self, model: str, error_kind: str | None, error_text: str | None,
                answered: bool) -> None:
        """Raise `RunCannotWork` when `model` never answered and failed `limit` times running.
        `answered`: some call of the proposal got a reply (even one that was not usable)."""
        streak = self._streaks.setdefault(model, _Streak())
        if streak.answered:
            return
        if answered or error_kind != LLM_ERROR:
            streak.answered = True
            return
        streak.failures += 1
        streak.last_error = error_text or "the call failed"
        if streak.failures >= self.limit:
            raise RunCannotWork(
                f"model {model} failed {streak.failures} times in a row and never answered: "
                f"{streak.last_error.splitlines()[0][:300]}. Fix: "
                f"{fix_for(model, streak.last_error, self.api_bases.get(model))}")


class BenchWatch:
    """Counts each model's failures in a row, in sequence order; says when to bench it."""

    def __init__(self, limit: int):
        self.limit = limit
        self._failures: dict[str, int] = {}
        self.benched: set[str] = set()

    def observe(self, model: str, error_kind: str | None) -> bool:
        """True exactly once: when `model` reaches the limit and must be benched."""
        if model in self.benched:
            return False
        if error_kind != LLM_ERROR:
            self._failures[model] = 0
            return False
        self._failures[model] = self._failures.get(model, 0) + 1
        if self._failures[model] >= self.limit:
            self.benched.add(model)
            return True
        return False

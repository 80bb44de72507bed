"""One proposal: what the sampler and bandit chose (a `Plan`), and turning it into a child program
by asking the operator, with bounded resampling when the reply cannot be used.

A rejected reply (no SEARCH match, an edit outside the EVOLVE-BLOCK, too long, no code, no
change) is sent back to the model with the precise error, up to `mutation.max_resample` more
times; the final failure is returned as a recorded outcome, never raised.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from evolve.config import MutationConfig
from evolve.operators.offline import NoChange
from evolve.patch.mutation import MutationError, check_evolve_blocks, child_from_reply
from evolve.patch.reply import answer_part
from evolve.prompting import AttemptView, ProgramView, PromptBuilder
from evolve.select.sampler import Member

# A budget refused the proposal's next LLM call: the proposal is dropped, not recorded, and a
# resume with a larger budget makes it again.
BUDGET = "budget"


class OfflineOperator(Protocol):
    name: str

    def propose(self, code: str, rng: random.Random) -> str: ...


@runtime_checkable
class HistoryOperator(Protocol):
    """An offline operator that learns from the run's programs (`optimise`): it is given the
    controller's committed programs once, and the proposal's seq with each call, so it can
    restrict itself to what was ingested when the proposal was planned (determinism)."""

    name: str

    def attach_history(self, history: Callable[[], Mapping[int, Any]],
                       window: Callable[[], int]) -> None: ...

    def propose(self, code: str, rng: random.Random, *, seq: int | None = None) -> str: ...


@dataclass
class Plan:
    """Every choice made for proposal `seq`, made synchronously from its own seeded RNG."""

    seq: int
    key: str
    island: int
    arm: Any                       # evolve.select.bandit.Arm
    kind: str                      # diff | full | crossover | repair | an offline mutation
    parent: Member
    parent_view: ProgramView
    rng: random.Random
    second: Member | None = None
    second_view: ProgramView | None = None
    inspirations: list[Member] = field(default_factory=list)
    inspiration_views: list[ProgramView] = field(default_factory=list)
    scratchpad: list[str] = field(default_factory=list)
    history: list[AttemptView] = field(default_factory=list)
    temperature: float | None = None
    credit: Any = None             # the arm the result is credited to (None: no arm, a repair)

    @property
    def operator(self) -> str:
        return str(self.arm.operator)


@dataclass
class ProposalOutcome:
    """A child program, or the reason there is none; plus every LLM call record it took."""

    code: str | None
    error_kind: str | None = None
    error_text: str | None = None
    calls: list[Any] = field(default_factory=list)
    attempts: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        """The model's first explanatory line (for the scratchpad), if any."""
        for call in reversed(self.calls):
            text = answer_part(getattr(call, "response", None) or "") or ""
            for line in text.splitlines():
                line = line.strip()
                if line and not line.startswith(("```", "<<<<<<<", "=======", ">>>>>>>")):
                    return line[:200]
        return ""


def calls_cost(calls: list[Any]) -> float:
    """Known USD of LLM call records (records or dicts); unknown prices count as 0 here."""
    total = 0.0
    for call in calls:
        value = call.get("cost_usd") if isinstance(call, dict) else getattr(call, "cost_usd", None)
        total += float(value or 0.0)
    return total


class Proposer:
    def __init__(self, prompts: PromptBuilder, mutation: MutationConfig, llm: Any | None,
                 offline: dict[str, OfflineOperator], max_tokens: dict[str, int] | None = None):
        self.prompts = prompts
        self.mutation = mutation
        self.llm = llm
        self.offline = offline
        self.max_tokens = max_tokens or {}
        # The problem's function: a reply that replaces the whole block must define it.
        self._entry = prompts.problem.config.function.name

    async def propose(self, plan: Plan) -> ProposalOutcome:
        """Never raises (cancellation aside): an operator's own bug is a recorded rejection."""
        start = time.perf_counter()
        try:
            if plan.operator in self.offline:
                outcome = self._offline(plan)
            else:
                outcome = await self._llm(plan)
        except Exception as exc:  # a failure is a result, not a crash
            outcome = ProposalOutcome(None, "operator-error",
                                      f"operator {plan.operator} failed: {type(exc).__name__}: "
                                      f"{exc}")
        outcome.seconds = time.perf_counter() - start
        return outcome

    def _check(self, parent: str, child: str) -> str:
        check_evolve_blocks(parent, child)
        if len(child) > self.mutation.max_code_chars:
            raise MutationError("too-long", f"the program has {len(child)} characters; the limit "
                                            f"is {self.mutation.max_code_chars}")
        if child.strip() == parent.strip():
            raise MutationError("no-change", "the operator left the program unchanged")
        return child

    def _offline(self, plan: Plan) -> ProposalOutcome:
        operator = self.offline[plan.operator]
        parent = plan.parent_view.code
        last = MutationError("no-change", "no attempt made")
        for attempt in range(1, self.mutation.max_resample + 2):
            try:
                child = operator.propose(parent, plan.rng, seq=plan.seq) if isinstance(
                    operator, HistoryOperator) else operator.propose(parent, plan.rng)
                return ProposalOutcome(self._check(parent, child), attempts=attempt)
            except NoChange as exc:
                last = MutationError("no-change", f"{operator.name}: {exc}")
            except MutationError as exc:
                last = exc
        return ProposalOutcome(None, last.kind, last.message,
                               attempts=self.mutation.max_resample + 1)

    async def _llm(self, plan: Plan) -> ProposalOutcome:
        if self.llm is None:
            return ProposalOutcome(None, "llm-error", f"no LLM client for operator {plan.operator}")
        messages = self.prompts.mutation_messages(
            plan.kind, plan.parent_view, inspirations=plan.inspiration_views,
            scratchpad=plan.scratchpad, second=plan.second_view, history=plan.history)
        calls: list[Any] = []
        last: MutationError | None = None
        attempts = 0
        for _ in range(self.mutation.max_resample + 1):
            attempts += 1
            reply = await self.llm.complete(plan.operator, messages, temperature=plan.temperature,
                                            max_tokens=self.max_tokens.get(plan.operator))
            calls.extend(reply.calls)
            if not reply.ok:  # the client already retried transient errors
                kind = BUDGET if getattr(reply, "refused", None) else "llm-error"
                return ProposalOutcome(None, kind, reply.error or "the LLM call failed",
                                       calls, attempts)
            try:
                child = child_from_reply(plan.kind, plan.parent_view.code, reply.text,
                                         self.mutation.max_code_chars,
                                         finish_reason=getattr(reply, "finish_reason", None),
                                         entry=self._entry)
                return ProposalOutcome(child, calls=calls, attempts=attempts)
            except MutationError as exc:
                last = exc
                messages = [*messages, {"role": "assistant", "content": reply.text},
                            self.prompts.retry_message(exc.message)]
        assert last is not None
        return ProposalOutcome(None, last.kind, f"after {attempts} tries: {last.message}", calls,
                               attempts)

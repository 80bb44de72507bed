"""Runs corpus replies through the path a real run takes: LLMClient (litellm over HTTP) ->
Proposer -> child_from_reply, against one scripted OpenAI-compatible server for all of them.

Each case is its own model (`openai/<case name>`), so the server answers by the model named in
the request: the case's replies in order, one per call. A case with n replies may be
resampled n - 1 times, so every reply it holds is asked for and no other.
"""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict
from typing import Any

from evolve.config import LLMConfig, ModelConfig, MutationConfig, PromptConfig
from evolve.engine.proposal import Plan, ProposalOutcome, Proposer
from evolve.operators.llm import LLMClient
from evolve.problem.discovery import find_problem
from evolve.prompting import ProgramView, PromptBuilder
from evolve.select.bandit import Arm
from evolve.select.sampler import Member
from tests.engine.reply_corpus import PARENTS, Case
from tests.support.llm_server import Reply, ScriptedLLMServer

MAX_CODE_CHARS = 40_000


class CorpusServer(ScriptedLLMServer):
    """The scripted server, answering each case's model with that case's replies in order."""

    def __init__(self, cases: list[Case]) -> None:
        self.by_name = {case.name: case for case in cases}
        self.calls: dict[str, int] = defaultdict(int)
        super().__init__(self._answer)

    def _answer(self, request: dict[str, Any]) -> Reply:
        name = str(request.get("model", "")).removeprefix("openai/")
        case = self.by_name[name]
        call = self.calls[name]
        self.calls[name] += 1
        return Reply(case.replies[min(call, len(case.replies) - 1)],
                     finish_reason=case.finish_reason(call))


def _plan(case: Case, seq: int, model: str) -> Plan:
    parent = Member(seq=-1, program_id=1, island=0, score=None if case.kind == "repair" else 1.0,
                    valid=case.kind != "repair")
    view = ProgramView(code=case.parent_code, score=parent.score, valid=parent.valid,
                       label="initial program",
                       error="NameError: name 'centers' is not defined"
                       if case.kind == "repair" else "")
    second = second_view = None
    if case.kind == "crossover":
        second = Member(seq=0, program_id=2, island=0, score=1.1, valid=True)
        second_view = ProgramView(code=PARENTS[case.problem], score=1.1, label="program 0")
    return Plan(seq=seq, key=f"corpus:{seq}", island=0, arm=Arm(model, case.kind),
                kind=case.kind, parent=parent, parent_view=view, rng=random.Random(seq),
                second=second, second_view=second_view, temperature=0.0)


async def propose_all(cases: list[Case], server: ScriptedLLMServer,
                      concurrency: int = 8) -> dict[str, ProposalOutcome]:
    """Every case's outcome, by case name."""
    models = [ModelConfig(name=f"openai/{case.name}", api_base=server.base_url,
                          temperatures=[0.0]) for case in cases]
    client = LLMClient(models, LLMConfig(retries=0, proposal_deadline_s=60.0))
    prompts = {name: PromptBuilder(find_problem(name), PromptConfig(), MAX_CODE_CHARS)
               for name in PARENTS}
    gate = asyncio.Semaphore(concurrency)

    async def one(seq: int, case: Case) -> tuple[str, ProposalOutcome]:
        proposer = Proposer(prompts[case.problem],
                            MutationConfig(max_resample=len(case.replies) - 1,
                                           max_code_chars=MAX_CODE_CHARS),
                            client, offline={})
        async with gate:
            return case.name, await proposer.propose(_plan(case, seq, f"openai/{case.name}"))

    return dict(await asyncio.gather(*(one(i, c) for i, c in enumerate(cases))))


def as_intended(case: Case, outcome: ProposalOutcome) -> bool:
    """The outcome is the labelled one: the intended program, or the intended rejection."""
    if case.should_accept:
        return outcome.code is not None and outcome.code.rstrip("\n") == \
            (case.intended or "").rstrip("\n")
    return outcome.code is None and outcome.error_kind == case.reject and \
        case.says in (outcome.error_text or "")

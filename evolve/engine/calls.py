"""Recording LLM call records in the archive, and the spend as the archive records it.

The budget itself is held by the LLM client's SpendLedger (before each call); what is counted
here is for progress reports and the loop's stop check.
"""

from __future__ import annotations

from typing import Any

from evolve.engine.archive_thread import ArchiveThread
from evolve.engine.collaborators import LLMCompleter
from evolve.engine.run_state import RunState
from evolve.prompting import PromptBuilder


class CallRecorder:
    def __init__(self, archive: ArchiveThread, run_id: int, state: RunState):
        self.archive = archive
        self.run_id = run_id
        self.state = state

    async def record(self, calls: list[Any], purpose: str) -> list[int]:
        """Store each call record (`archive_fields()`, or a dict of them); their archive ids."""
        ids = []
        for call in calls:
            fields = call.archive_fields() if hasattr(call, "archive_fields") else dict(call)
            fields.setdefault("purpose", purpose)
            fields.setdefault("finish_reason", getattr(call, "finish_reason", None))
            ids.append(await self.archive.record_llm_call(self.run_id, **fields))
            if fields.get("cost_usd") is not None:
                self.state.cost_usd += float(fields["cost_usd"])
            else:
                self.state.unknown_cost_calls += 1   # shown as unknown, never as $0
        return ids


class NoveltyJudge:
    """The LLM judge of the novelty filter: is `candidate` meaningfully different from
    `existing`? Its reply's first word decides (NOVEL or not)."""

    def __init__(self, llm: LLMCompleter, prompts: PromptBuilder, model: str):
        self.llm = llm
        self.prompts = prompts
        self.model = model

    async def __call__(self, candidate: str, existing: str) -> tuple[bool, list[Any]]:
        reply = await self.llm.complete(self.model,
                                        self.prompts.judge_messages(candidate, existing),
                                        temperature=0.0)
        first = reply.text.strip().split()[0].upper() if reply.ok and reply.text.strip() else ""
        return first.startswith("NOVEL"), reply.calls

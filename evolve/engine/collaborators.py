"""What the controller needs of each part it is given, as Protocols.

The controller is written against these, not against the concrete classes, so the archive can
be SQLite or PostgreSQL (`db.Archive` either way), the executor local or distributed, and
the LLM client the litellm one or another that speaks the same `complete`.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from evaluators.executors import Executor
from evolve.select.bandit import Arm

__all__ = ["ArchiveStore", "ArmChooser", "DescribesIsolation", "Executor", "LLMCompleter",
           "LLMReplyLike", "Placement", "Preflight"]


class ArchiveStore(Protocol):
    """The archive calls the controller makes (it is the archive's single writer), each run on
    its `ArchiveThread` (evolve/engine/archive_thread.py), never on the event loop."""

    @property
    def where(self) -> str: ...

    def create_run(self, *, problem: str, config_toml: str, seed: int, isolation: str,
                   name: str | None = None) -> int: ...

    def add_program(self, run_id: int, *, code: str, code_hash: str | None = None,
                    parent_id: int | None = None, inspiration_ids: Sequence[int] = (),
                    island: int = 0, generation: int = 0, operator: str | None = None,
                    mutation_kind: str | None = None, status: str = "evaluated",
                    stage_reached: str | None = None, score: float | None = None,
                    valid: bool = False, metrics: Mapping[str, Any] | None = None,
                    feedback: str = "", error_kind: str | None = None,
                    error_text: str | None = None, timings: Mapping[str, Any] | None = None,
                    diff: str | None = None, proposal_key: str | None = None,
                    evaluations: Iterable[Any] = (),
                    llm_call_ids: Sequence[int] = ()) -> int: ...

    def programs(self, run_id: int) -> list[Any]: ...

    def evaluations(self, program_id: int) -> list[Any]: ...

    def record_llm_call(self, run_id: int, *, model: str, prompt: str, response: str | None,
                        tokens_in: int | None, tokens_out: int | None, cost_usd: float | None,
                        latency_s: float | None, error: str | None, purpose: str,
                        program_id: int | None = None,
                        finish_reason: str | None = None) -> int: ...

    def cost_so_far(self, run_id: int) -> float: ...

    def cost_summary(self, run_id: int) -> Any: ...   # db.CostSummary: .calls, .unknown_calls

    def set_state(self, run_id: int, key: str, value: Any) -> None: ...

    def get_state(self, run_id: int, key: str, default: Any = None) -> Any: ...

    def add_event(self, run_id: int, kind: str, message: str,
                  data: Mapping[str, Any] | None = None) -> int: ...

    def events(self, run_id: int, *, kind: str | None = None) -> list[Any]: ...

    def set_run_status(self, run_id: int, status: str) -> None: ...

    def finish_run(self, run_id: int, status: str) -> None: ...


class LLMReplyLike(Protocol):
    text: str
    ok: bool
    calls: list[Any]   # call records with `archive_fields()` (evolve.operators.llm.LLMCallRecord)

    @property
    def error(self) -> str | None: ...


class LLMCompleter(Protocol):
    """An LLM client: `complete` never raises for provider errors (a failed reply has ok=False)."""

    async def complete(self, model: str, messages: list[dict[str, Any]], *,
                       temperature: float | None = None,
                       max_tokens: int | None = None) -> LLMReplyLike: ...


class ArmChooser(Protocol):
    """The bandit: chooses an arm from the proposal's own RNG and learns from rewards."""

    def select(self, rng: random.Random) -> Arm: ...

    def on_submit(self, arm: Arm) -> None: ...

    def update(self, arm: Arm, reward: float, cost_usd: float | None = 0.0,
               yielded: float = 1.0, attempts: int = 1) -> None: ...

    def bench(self, arm: Arm) -> None: ...

    @property
    def active(self) -> list[Arm]: ...

    def state_dict(self) -> dict[str, Any]: ...


# Optional capabilities of an executor, declared here and tested with isinstance (never probed
# by attribute name): the local executor has none of them, the Ray executor all three.
@runtime_checkable
class Preflight(Protocol):
    """Refuses a problem the executor cannot run (e.g. a GPU problem on a cluster without
    GPUs) before the run starts, with a ValueError that says why."""

    def preflight(self, problem: Any) -> None: ...


@runtime_checkable
class Placement(Protocol):
    """Where evaluations run now: running evaluations per node."""

    def placement(self) -> dict[str, int]: ...


@runtime_checkable
class DescribesIsolation(Protocol):
    """A sentence saying what a candidate can reach at this executor's isolation level."""

    isolation_description: str

"""Planning proposal `seq`: which island, which arm (operator and mutation), which parent, second
parent and inspirations, at which temperature, and the views of them its prompt shows.

Every choice comes from the proposal's own RNG, seeded by (run seed, seq), and from the programs
ingested before it was planned, so the same seed plans the same proposals however many run at
once. An offline operator may choose its own parent (`ParentChooser`, e.g. `optimise`).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from evolve.config import EvolveConfig
from evolve.engine.archive_thread import ArchiveThread
from evolve.engine.collaborators import ArmChooser
from evolve.engine.committed import proposal_key
from evolve.engine.history import recent_attempts
from evolve.engine.ingest import Ingestor
from evolve.engine.proposal import OfflineOperator, Plan
from evolve.engine.run_state import RunState
from evolve.engine.scratchpad import Scratchpad
from evolve.prompting import ProgramView, PromptBuilder
from evolve.select.bandit import Arm
from evolve.select.sampler import IslandSampler, Member


@runtime_checkable
class ParentChooser(Protocol):
    """An offline operator that picks its own parent among an island's valid programs (best
    first); None leaves the choice to the sampler. Uses only `rng` and what proposal `seq` may
    see, so the choice is as reproducible as the sampler's."""

    def choose_parent(self, members: Sequence[Member], rng: random.Random, *,
                      seq: int | None = None) -> Member | None: ...


class Planner:
    def __init__(self, config: EvolveConfig, state: RunState, archive: ArchiveThread, *,
                 sampler: IslandSampler, bandit: ArmChooser, arms: dict[str, Arm],
                 offline: dict[str, OfflineOperator], prompts: PromptBuilder,
                 scratchpad: Scratchpad, ingestor: Ingestor):
        self.config = config
        self.seed = config.seed
        self.state = state
        self.archive = archive
        self.sampler = sampler
        self.bandit = bandit
        self.arms = arms
        self.offline = offline
        self.prompts = prompts
        self.scratchpad = scratchpad
        self.ingestor = ingestor

    async def plan(self, seq: int) -> Plan:
        rng = random.Random(f"{self.seed}:{seq}")
        island = self.sampler.island_for(seq)
        arm = self.bandit.select(rng)
        operator = str(arm.operator)
        is_llm = operator not in self.offline
        parent, kind = self._parent(island, arm, is_llm, rng, seq)
        second = None
        if kind == "crossover":
            second = self.sampler.second_parent(island, parent, rng)
            if second is None:
                kind = "full"
        # The bandit learns about the mutation actually made: a crossover without a second
        # parent is a full rewrite; a repair has no arm of its own and teaches no arm.
        credit = arm if kind == arm.mutation else self.arms.get(Arm(operator, kind).label)
        if credit is not None:
            self.bandit.on_submit(credit)
        inspirations = self.sampler.inspirations(island, parent, rng, second) if is_llm else []
        temperature = None
        for model in self.config.operators.models:
            if model.name == operator:
                temperature = rng.choice(model.temperatures)
        if is_llm:
            await self._load_output(parent)
            parent_view = self._view(parent, "parent")
        else:
            parent_view = ProgramView(code=self.state.committed[parent.seq].code)
        return Plan(seq=seq, key=proposal_key(self.seed, seq), island=island, arm=arm, kind=kind,
                    credit=credit, parent=parent, parent_view=parent_view, rng=rng,
                    second=second, second_view=self._view(second) if second else None,
                    inspirations=inspirations,
                    inspiration_views=[self._view(m) for m in inspirations],
                    scratchpad=list(self.scratchpad.recommendations), temperature=temperature,
                    history=recent_attempts(self.state.committed, self.ingestor.ingested,
                                            parent.seq, island, self.config.prompts.history)
                    if is_llm else [])

    def _parent(self, island: int, arm: Arm, is_llm: bool, rng: random.Random,
                seq: int) -> tuple[Member, str]:
        """The parent and the mutation kind (a repair when the parent is invalid)."""
        kind = str(arm.mutation)
        mutation = self.config.mutation
        parent: Member | None = None
        if is_llm and mutation.repair_invalid_parents and rng.random() < mutation.repair_rate:
            parent = self.sampler.select_repair_target(island, rng)
            if parent is not None:
                parent.repaired = True
                kind = "repair"
        if parent is None and not is_llm:
            operator = self.offline[str(arm.operator)]
            if isinstance(operator, ParentChooser):
                parent = operator.choose_parent(self.sampler.valid_members(island), rng, seq=seq)
        if parent is None:
            parent = self.sampler.select_parent(island, rng)
            if not parent.valid and is_llm:
                kind = "repair"
        return parent, kind

    async def _load_output(self, member: Member) -> None:
        """A resumed parent's output, loaded once from the archive for its prompt."""
        item = self.state.committed[member.seq]
        if self.config.prompts.output_excerpt_chars and (item.stdout is None or item.stderr is None):
            evaluations = await self.archive.evaluations(item.program_id)
            item.stdout = evaluations[-1].stdout if evaluations else ""
            item.stderr = evaluations[-1].stderr if evaluations else ""

    def _view(self, member: Member, role: str = "") -> ProgramView:
        item = self.state.committed[member.seq]
        stdout = stderr = ""
        if role == "parent" and self.config.prompts.output_excerpt_chars:
            stdout, stderr = item.stdout or "", item.stderr or ""
        label = "initial program" if member.seq < 0 else f"program {member.seq}"
        return self.prompts.view(item.code, score=item.score, valid=item.valid, label=label,
                                 metrics=item.metrics, feedback=item.feedback,
                                 error=item.error_text or "", stdout=stdout, stderr=stderr)

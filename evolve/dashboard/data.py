"""Plain views of what the archive holds, for the dashboard, the live view and the CLI.

The archive (db/) is the only source. These views copy what a screen needs out of the archive's
records once, so widgets never touch the database and a refresh is a single reload.
"""

from __future__ import annotations

import dataclasses
import re
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from evolve.dashboard.cost_text import cost_text
from evolve.dashboard.fields import as_json, as_time, attr, finite
from evolve.engine.in_flight import IN_FLIGHT_STATE
from evolve.engine.run_files import shown_status


@dataclass(frozen=True)
class RunInfo:
    id: int
    name: str
    problem: str
    status: str
    seed: int | None
    isolation: str
    started: datetime | None
    finished: datetime | None
    config_toml: str

    @classmethod
    def from_record(cls, record: Any) -> RunInfo:
        return cls(
            id=int(attr(record, "id")),
            name=str(attr(record, "name", "")),
            problem=str(attr(record, "problem", "")),
            status=str(attr(record, "status", "unknown")),
            seed=attr(record, "seed"),
            isolation=str(attr(record, "isolation", "")),
            started=as_time(attr(record, "created_at") or attr(record, "started_at")),
            finished=as_time(attr(record, "finished_at")),
            config_toml=str(attr(record, "config_toml", "")),
        )

    @property
    def label(self) -> str:
        return self.name or f"run {self.id}"


@dataclass(frozen=True)
class LLMCallView:
    id: int
    program_id: int | None
    model: str
    purpose: str
    prompt: str
    response: str
    tokens_in: int
    tokens_out: int
    cost_usd: float | None
    latency_s: float
    error: str | None
    created: datetime | None

    @classmethod
    def from_record(cls, record: Any) -> LLMCallView:
        return cls(
            id=int(attr(record, "id", 0)),
            program_id=attr(record, "program_id"),
            model=str(attr(record, "model", "")),
            purpose=str(attr(record, "purpose", "")),
            prompt=str(attr(record, "prompt", "")),
            response=str(attr(record, "response", "")),
            tokens_in=int(attr(record, "tokens_in", 0)),
            tokens_out=int(attr(record, "tokens_out", 0)),
            cost_usd=finite(attr(record, "cost_usd")),
            latency_s=float(attr(record, "latency_s", 0.0)),
            error=attr(record, "error") or None,
            created=as_time(attr(record, "created_at")),
        )

    def messages(self) -> list[tuple[str, str]]:
        """The prompt as (role, content) pairs; a prompt that is not a message list is one pair."""
        data = as_json(self.prompt, None)
        if isinstance(data, list) and all(isinstance(m, Mapping) for m in data):
            return [(str(m.get("role", "?")), str(m.get("content", ""))) for m in data]
        return [("prompt", self.prompt)]


@dataclass(frozen=True)
class ProgramView:
    id: int
    run_id: int
    parent_id: int | None
    inspiration_ids: tuple[int, ...]
    island: int | None
    generation: int
    operator: str
    mutation_kind: str
    status: str
    stage_reached: str
    score: float | None
    valid: bool
    metrics: dict[str, Any]
    feedback: str
    error_kind: str
    error_text: str
    timings: dict[str, Any]
    diff: str
    code: str
    created: datetime | None
    cost_usd: float = 0.0           # the LLM calls that produced it (0 for offline operators)
    unknown_cost_calls: int = 0     # of those calls, the ones whose price is unknown
    proposal_key: str = ""          # "initial" or "SEED:SEQ"

    @classmethod
    def from_record(cls, record: Any, cost_usd: float = 0.0,
                    unknown_cost_calls: int = 0) -> ProgramView:
        return cls(
            id=int(attr(record, "id")),
            run_id=int(attr(record, "run_id", 0)),
            parent_id=attr(record, "parent_id"),
            inspiration_ids=tuple(as_json(attr(record, "inspiration_ids"), [])),
            island=attr(record, "island"),
            generation=int(attr(record, "generation", 0)),
            operator=str(attr(record, "operator", "")),
            mutation_kind=str(attr(record, "mutation_kind", "")),
            status=str(attr(record, "status", "")),
            stage_reached=str(attr(record, "stage_reached", "")),
            score=finite(attr(record, "score")),
            valid=bool(attr(record, "valid", False)),
            metrics=dict(as_json(attr(record, "metrics"), {})),
            feedback=str(attr(record, "feedback", "")),
            error_kind=str(attr(record, "error_kind", "")),
            error_text=str(attr(record, "error_text", "")),
            timings=dict(as_json(attr(record, "timings"), {})),
            diff=str(attr(record, "diff", "")),
            code=str(attr(record, "code", "")),
            created=as_time(attr(record, "created_at")),
            cost_usd=cost_usd,
            unknown_cost_calls=unknown_cost_calls,
            proposal_key=str(attr(record, "proposal_key", "") or ""),
        )

    @property
    def failed(self) -> bool:
        return bool(self.error_kind) or not self.valid

    @property
    def arm(self) -> str:
        return f"{self.operator}:{self.mutation_kind}" if self.mutation_kind else self.operator

    def timing_text(self) -> tuple[str, str]:
        """(the timings, e.g. "eval 0.24s, propose 0.0002s"; other stored details such as
        attempts or the operator's summary)."""
        times, details = [], []
        for key, value in self.timings.items():
            if key == "cost_usd":   # the cost row says it, with unknown prices as unknown
                continue
            if key.endswith("_s") and isinstance(value, (int, float)):
                times.append(f"{key[:-2]} {value:.3g}s")
            elif value not in ("", None):
                details.append(f"{key} {value:.6g}" if isinstance(value, float)
                               else f"{key} {value}")
        return ", ".join(times) or "-", ", ".join(details)

    def cost_text(self) -> str:
        return cost_text(self.cost_usd, self.unknown_cost_calls)

    def score_text(self) -> str:
        return "-" if self.score is None else f"{self.score:.6g}"

    def summary(self) -> dict[str, Any]:
        """The fields a script wants (for --json), without code and diff."""
        return {
            "id": self.id, "run_id": self.run_id, "parent_id": self.parent_id,
            "inspiration_ids": list(self.inspiration_ids), "island": self.island,
            "generation": self.generation, "operator": self.operator,
            "mutation_kind": self.mutation_kind, "status": self.status,
            "stage_reached": self.stage_reached, "score": self.score, "valid": self.valid,
            "metrics": self.metrics, "feedback": self.feedback, "error_kind": self.error_kind,
            "error_text": self.error_text, "timings": self.timings,
            # null when every call's price was unknown: a script must not read it as $0
            "cost_usd": None if self.unknown_cost_calls and not self.cost_usd else self.cost_usd,
            "unknown_cost_calls": self.unknown_cost_calls,
            "created": self.created.isoformat() if self.created else None,
        }


@dataclass(frozen=True)
class EventView:
    kind: str
    message: str
    data: Any
    created: datetime | None

    @classmethod
    def from_record(cls, record: Any) -> EventView:
        return cls(kind=str(attr(record, "kind", "")), message=str(attr(record, "message", "")),
                   data=as_json(attr(record, "data"), None),
                   created=as_time(attr(record, "created_at")))


@dataclass
class RunData:
    """Everything the dashboard shows about one run, read in one go."""

    run: RunInfo
    programs: list[ProgramView]
    calls: list[LLMCallView]                  # the calls that produced programs
    events: list[EventView]
    state: dict[str, Any] = field(default_factory=dict)
    spent_usd: float = 0.0                    # all LLM calls of the run with a known price
    unknown_cost_calls: int = 0               # calls whose price is unknown

    def spent_text(self) -> str:
        return cost_text(self.spent_usd, self.unknown_cost_calls)

    @property
    def evaluated(self) -> int:
        """Evaluated candidates, as the engine, the program budget and a run's summary count
        them: not the initial program, duplicates or rejected replies (the archive keeps those
        too)."""
        return sum(1 for p in self.programs if p.parent_id is not None and p.status == "evaluated")

    def __post_init__(self) -> None:
        self.by_id = {p.id: p for p in self.programs}
        self.children: dict[int, list[int]] = defaultdict(list)
        for program in self.programs:
            if program.parent_id is not None:
                self.children[program.parent_id].append(program.id)
        self.calls_by_program: dict[int, list[LLMCallView]] = defaultdict(list)
        for call in self.calls:
            if call.program_id is not None:
                self.calls_by_program[call.program_id].append(call)

    def ancestors(self, program_id: int) -> list[ProgramView]:
        """The chain from the root down to (not including) the program."""
        chain: list[ProgramView] = []
        seen = {program_id}
        current = self.by_id.get(program_id)
        while current is not None and current.parent_id is not None:
            parent = self.by_id.get(current.parent_id)
            if parent is None or parent.id in seen:
                break
            chain.append(parent)
            seen.add(parent.id)
            current = parent
        return list(reversed(chain))

    def best(self) -> ProgramView | None:
        scored = [p for p in self.programs if p.valid and p.score is not None]
        return max(scored, key=lambda p: (p.score, -p.id)) if scored else None

    def in_flight(self) -> dict[str, int]:
        """Evaluations running now per node, as the live run publishes them (empty once it
        stopped; a crashed run's last counts are stale, so they are not shown)."""
        if self.run.status != "running":
            return {}
        nodes = (self.state.get(IN_FLIGHT_STATE) or {}).get("nodes") or {}
        return {str(node): int(count) for node, count in nodes.items() if int(count) > 0}

    def scratchpad(self) -> str | None:
        """The newest scratchpad text the engine stored (state key or event), if any."""
        for key in ("scratchpad", "scratchpad_text"):
            value = self.state.get(key)
            text = _scratchpad_text(value)
            if text:
                return text
        for event in reversed(self.events):
            if "scratchpad" in event.kind:
                text = _scratchpad_text(event.data) or event.message
                if text:
                    return text
        return None


def _scratchpad_text(value: Any) -> str | None:
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, Mapping):
        for key in ("text", "summary", "content"):
            if isinstance(value.get(key), str) and value[key].strip():
                return value[key].strip()
        for key in ("tips", "recommendations"):     # the controller stores {"version", "tips"}
            items = value.get(key)
            if isinstance(items, list) and items:
                return "\n".join(f"- {item}" for item in items)
    if isinstance(value, list) and value:
        return "\n".join(f"- {item}" for item in value)
    return None


_PROPOSAL_REF = re.compile(r"\bproposal (initial|-?\d+:\d+)\b")


def cite_program_ids(programs: list[ProgramView]) -> list[ProgramView]:
    """Stored duplicate reasons name the program they repeat by proposal key (so the stored
    text does not depend on commit order); shown, they name its program id, the id
    `evolve show` takes. A reference to a program not stored yet stays as it is."""
    id_by_key = {p.proposal_key: p.id for p in programs if p.proposal_key}

    def cite(found: re.Match[str]) -> str:
        program_id = id_by_key.get(found.group(1))
        return found.group(0) if program_id is None else f"program {program_id}"

    out = []
    for p in programs:
        if "proposal " in p.error_text:
            text = _PROPOSAL_REF.sub(cite, p.error_text)
            if text != p.error_text:
                p = dataclasses.replace(p, error_text=text)
        out.append(p)
    return out


STATE_KEYS = ("scratchpad", "scratchpad_text", "progress", "engine", IN_FLIGHT_STATE)


def archive_folder(archive: Any) -> Path | None:
    """The run folder of a SQLite archive file (its lock tells a crashed run from a live
    one); None for a database server, where no folder is known."""
    url = str(getattr(archive, "url", ""))
    prefix = "sqlite:///"
    return Path(url[len(prefix):]).parent if url.startswith(prefix) else None


def load_run(archive: Any, run_id: int, previous: RunData | None = None) -> RunData:
    """Read one run out of an open archive. With `previous` (an earlier read of the same run)
    only programs stored since are fetched: programs never change once written, so a refresh
    of a long run costs what is new, not the whole archive."""
    run = RunInfo.from_record(archive.get_run(run_id))
    run = replace(run, status=shown_status(run.status, archive_folder(archive)))
    if previous is None or previous.run.id != run_id:
        records = archive.programs(run_id)
        calls = [LLMCallView.from_record(c) for c in archive.llm_calls(run_id)
                 if attr(c, "program_id") is not None]
        kept: list[ProgramView] = []
    else:
        after = previous.programs[-1].id if previous.programs else None
        records = archive.programs(run_id, after_id=after) if after is not None \
            else archive.programs(run_id)
        calls = list(previous.calls)
        for record in records:   # a program's calls are linked in the write that stores it
            calls += [LLMCallView.from_record(c)
                      for c in archive.llm_calls(program_id=int(attr(record, "id")))]
        kept = previous.programs
    cost: dict[int, float] = defaultdict(float)
    unpriced: dict[int, int] = defaultdict(int)
    for call in calls:
        if call.program_id is not None:
            cost[call.program_id] += call.cost_usd or 0.0
            unpriced[call.program_id] += call.cost_usd is None
    programs = kept + sorted((ProgramView.from_record(r, cost.get(int(attr(r, "id")), 0.0),
                                                      unpriced.get(int(attr(r, "id")), 0))
                              for r in records), key=lambda p: p.id)
    programs = cite_program_ids(programs)
    events = [EventView.from_record(e) for e in archive.events(run_id)]
    state = {key: archive.get_state(run_id, key) for key in STATE_KEYS}
    summary = archive.cost_summary(run_id)
    return RunData(run=run, programs=programs, calls=calls, events=events,
                   state={k: v for k, v in state.items() if v is not None},
                   spent_usd=float(attr(summary, "known_usd", 0.0)),
                   unknown_cost_calls=int(attr(summary, "unknown_calls", 0)))

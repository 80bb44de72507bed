"""Runs written through the real archive API (db.Archive) where a test needs a run in a state
`evolve run` does not leave behind: one recorded as failed, or one still running that the test
extends as the controller would. Every candidate is evaluated by the real sandboxed executor on
a toy problem (tests/support/toy_problem: tune two constants; the objective peaks at 10.0).
The ordinary finished run comes from `evolve run` itself (tests/support/engine_run.py).

Some candidates are broken on purpose (a syntax error, a crash, an endless loop that hits the
stage timeout) so the failure views have something real to show. Proposals by the "LLM" arm store
a prompt and a reply through `record_llm_call`, linked to the program as the controller links
them. Candidates are evaluated in batches, several sandboxes at once, to keep the fixture quick.
"""

from __future__ import annotations

import asyncio
import difflib
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from db import Archive, code_hash_of
from evaluators.executors import LocalExecutor
from evaluators.result import EvalResult
from evolve.config import load_config, to_toml
from evolve.problem.discovery import find_problem

TOY_PROBLEM = Path(__file__).resolve().parent / "toy_problem"
LLM_MODEL = "openai/gpt-4.1-mini"
PROMPT_MARKER = "Improve the objective of this program"
REPLY_MARKER = "I moved A closer to its optimum"
SCRATCHPAD_TEXT = "Constants near A=2.5 score best"      # the first tip, as the dashboard shows it
BATCH = 4

TEMPLATE = """# toy objective: maximise 10 - (a - 2.5)^2 - (b - 4)^2
# EVOLVE-BLOCK-START
A = {a!r}
B = {b!r}


def solve():
{body}
# EVOLVE-BLOCK-END
"""
GOOD_BODY = "    return A, B"
# Candidate number -> a body that fails the way the name says.
BROKEN_BODIES = {
    4: ("syntax", "    return (A, B"),
    8: ("crash", "    return A, undefined_name"),
    11: ("timeout", "    while True:\n        pass"),
}


@dataclass
class RunFacts:
    """What the tests may check against: ids and values that the run really holds."""

    run_dir: Path
    run_id: int
    initial_id: int
    best_id: int
    best_score: float
    program_ids: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)       # id -> failure kind
    llm_program_ids: list[int] = field(default_factory=list)
    children_of_initial: list[int] = field(default_factory=list)
    spent_usd: float = 0.0
    status: str = "finished"            # the run's final status as the archive holds it
    max_programs: int = 0               # the program budget (candidates, not the start)
    scratchpad_tip: str = ""            # a recommendation the scratchpad must show


@dataclass
class _Candidate:
    number: int
    parent_id: int
    code: str
    a: float
    b: float
    generation: int
    operator: str
    mutation: str
    call_ids: list[int]


def _diff(old: str, new: str, old_id: int) -> str:
    return "".join(difflib.unified_diff(old.splitlines(keepends=True),
                                        new.splitlines(keepends=True),
                                        fromfile=f"program {old_id}", tofile="candidate"))


def _store(archive: Archive, run_id: int, cand: _Candidate | None, code: str,
           result: EvalResult, parent_code: str = "") -> int:
    last = result.last
    failure = str(result.failure) if result.failure else None
    return archive.add_program(
        run_id, code=code, code_hash=code_hash_of(code),
        parent_id=cand.parent_id if cand else None,
        inspiration_ids=[] if cand is None or cand.number % 5 else [1],
        island=0 if cand is None else cand.number % 2,
        generation=0 if cand is None else cand.generation,
        operator=cand.operator if cand else None, mutation_kind=cand.mutation if cand else None,
        status="evaluated" if result.valid else "failed", stage_reached=result.stage_reached,
        score=result.score, valid=result.valid, metrics=result.metrics,
        feedback=result.feedback, error_kind=failure,
        error_text=(last.reason or None) if last and failure else None,
        timings={"eval_s": round(result.wall_s, 4),
                 "propose_s": 0.8 if cand and cand.call_ids else 0.0},
        diff=_diff(parent_code, code, cand.parent_id) if cand else None,
        evaluations=list(result.stages), llm_call_ids=cand.call_ids if cand else ())


async def build_run_async(run_dir: Path, programs: int = 14, seed: int = 7,
                          status: str = "finished") -> RunFacts:
    """`build_run` for callers already inside an event loop."""
    run_dir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    problem = find_problem(TOY_PROBLEM)
    executor = LocalExecutor(max_parallel=BATCH)
    # The program budget counts candidates: every program but the starting one.
    config = load_config(overrides=[f"budget.max_programs={programs - 1}", "budget.max_usd=0.5",
                                    f"seed={seed}", f"problem={TOY_PROBLEM}"])
    (run_dir / "config.toml").write_text(to_toml(config))
    archive = Archive.open(run_dir / "archive.sqlite")
    try:
        run_id = archive.create_run(problem=problem.name, config_toml=to_toml(config),
                                    seed=seed, isolation=executor.isolation, name="toy-run")
        code = problem.initial_code()
        result = await executor.evaluate(problem, code)
        initial_id = _store(archive, run_id, None, code, result)
        facts = RunFacts(run_dir=run_dir, run_id=run_id, initial_id=initial_id,
                         best_id=initial_id, best_score=float(result.score or 0.0),
                         program_ids=[initial_id], status=status, max_programs=programs - 1,
                         scratchpad_tip=SCRATCHPAD_TEXT)
        valid = {initial_id: (0.5, 1.0, 0)}   # id -> (A, B, generation) of valid programs
        codes = {initial_id: code}
        numbers = list(range(1, programs))
        for start in range(0, len(numbers), BATCH):
            batch = []
            for number in numbers[start:start + BATCH]:
                parent_id = rng.choice(sorted(valid))
                a, b, generation = valid[parent_id]
                new_a = round(a + rng.uniform(-0.4, 1.0), 3)
                new_b = round(b + rng.uniform(-0.4, 1.2), 3)
                body = BROKEN_BODIES[number][1] if number in BROKEN_BODIES else GOOD_BODY
                cand = _Candidate(number, parent_id, TEMPLATE.format(a=new_a, b=new_b, body=body),
                                  new_a, new_b, generation + 1, [LLM_MODEL, "tune", "swap"][
                                      number % 3], "diff" if number % 4 else "full", [])
                if cand.operator == LLM_MODEL:
                    messages = [{"role": "system", "content": "You evolve Python programs."},
                                {"role": "user", "content": f"{PROMPT_MARKER} (program "
                                                            f"{parent_id}):\n{codes[parent_id]}"}]
                    cand.call_ids.append(archive.record_llm_call(
                        run_id, model=LLM_MODEL, prompt=json.dumps(messages),
                        response=f"{REPLY_MARKER}.\n<<<<<<< SEARCH\nA = {a!r}\n=======\n"
                                 f"A = {new_a!r}\n>>>>>>> REPLACE",
                        tokens_in=420 + number, tokens_out=64, cost_usd=0.0015, latency_s=0.8,
                        error=None, purpose="proposal"))
                    facts.spent_usd += 0.0015
                batch.append(cand)
            results = await asyncio.gather(*(executor.evaluate(problem, c.code) for c in batch))
            for cand, result in zip(batch, results, strict=True):
                program_id = _store(archive, run_id, cand, cand.code, result,
                                    codes[cand.parent_id])
                codes[program_id] = cand.code
                facts.program_ids.append(program_id)
                if cand.parent_id == initial_id:
                    facts.children_of_initial.append(program_id)
                if cand.operator == LLM_MODEL and result.valid:
                    facts.llm_program_ids.append(program_id)
                if result.valid:
                    valid[program_id] = (cand.a, cand.b, cand.generation)
                    if result.score is not None and result.score > facts.best_score:
                        facts.best_id, facts.best_score = program_id, result.score
                else:
                    facts.failed[program_id] = str(result.failure)
        # Stored the way the controller stores its scratchpad (state + event).
        tips = [SCRATCHPAD_TEXT, "Avoid loops in solve()"]
        archive.set_state(run_id, "scratchpad", {"version": 1, "tips": tips})
        archive.add_event(run_id, "scratchpad", f"scratchpad v1: {tips[0]}")
        if status != "running":
            archive.finish_run(run_id, status)
        return facts
    finally:
        archive.close()
        await executor.aclose()


def build_run(run_dir: Path, *, programs: int = 14, seed: int = 7,
              status: str = "finished") -> RunFacts:
    """Write one run of `programs` evaluated candidates into RUN_DIR/archive.sqlite."""
    run_dir.mkdir(parents=True, exist_ok=True)
    return asyncio.run(build_run_async(run_dir, programs, seed, status))


def cached_run(base: Path, name: str, builder: Callable[..., RunFacts] | None = None,
               **kwargs: object) -> RunFacts:
    """`builder(run_dir, **kwargs)` (default `build_run`) once per test session: the CLI and
    dashboard suites share the run folder (pass pytest's `tmp_path_factory.getbasetemp()`)."""
    run_dir = base / "runs" / name
    facts_file = run_dir.parent / f"{name}.facts.json"
    if facts_file.is_file():
        data = json.loads(facts_file.read_text())
        data["run_dir"] = Path(data["run_dir"])
        data["failed"] = {int(k): v for k, v in data["failed"].items()}
        return RunFacts(**data)
    facts = (builder or build_run)(run_dir, **kwargs)
    facts_file.write_text(json.dumps({**facts.__dict__, "run_dir": str(facts.run_dir)}))
    return facts

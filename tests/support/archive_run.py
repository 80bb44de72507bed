"""A small finished run written through the real archive API (db.Archive), for the CLI and
dashboard tests, with every candidate really executed in a Python subprocess.

The programs evolve two constants of a toy objective (maximum 10.0 at A=2.5, B=4.0). Some
candidates are broken on purpose (a syntax error, a crash, an endless loop that hits the timeout)
so the failure views have something real to show. Proposals by the "LLM" arm store a prompt and a
reply through `record_llm_call`, linked to the program as the controller links them.
"""

from __future__ import annotations

import difflib
import json
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from db import Archive, code_hash_of
from evaluators.result import FailureKind, StageResult
from evolve.config import load_config, to_toml

LLM_MODEL = "openai/gpt-4.1-mini"
PROMPT_MARKER = "Improve the objective of this program"
REPLY_MARKER = "I moved A closer to its optimum"
SCRATCHPAD_TEXT = "Constants near A=2.5 score best; avoid loops in solve()."

TEMPLATE = """# toy objective: maximise solve()
# EVOLVE-BLOCK-START
A = {a!r}
B = {b!r}


def solve():
{body}
# EVOLVE-BLOCK-END
"""
GOOD_BODY = "    return 10.0 - (A - 2.5) ** 2 - (B - 4.0) ** 2"
BROKEN_BODIES = {
    FailureKind.SYNTAX: "    return 10.0 - (A - 2.5 ** 2",
    FailureKind.CRASH: "    return 10.0 - undefined_name",
    FailureKind.TIMEOUT: "    while True:\n        pass",
}
TIMEOUT_S = 1.0


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


def evaluate(code: str) -> StageResult:
    """Run the candidate in a fresh Python process and read its objective."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "candidate.py"
        path.write_text(code)
        runner = ("import runpy, json; ns = runpy.run_path('candidate.py'); "
                  "print(json.dumps({'value': float(ns['solve']())}))")
        start = time.perf_counter()
        try:
            done = subprocess.run([sys.executable, "-c", runner], cwd=folder, capture_output=True,
                                  text=True, timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            return StageResult(stage="full", failure=FailureKind.TIMEOUT,
                               reason=f"solve() ran past the {TIMEOUT_S:g} s limit",
                               wall_s=time.perf_counter() - start, isolation="rlimits")
        wall = time.perf_counter() - start
    if done.returncode != 0:
        kind = FailureKind.SYNTAX if "SyntaxError" in done.stderr else FailureKind.CRASH
        last = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "no output"
        return StageResult(stage="full", failure=kind, reason=last, stderr=done.stderr[-2000:],
                           wall_s=wall, isolation="rlimits")
    value = json.loads(done.stdout.strip().splitlines()[-1])["value"]
    return StageResult(stage="full", score=value, valid=True, metrics={"objective": value},
                       feedback=f"objective {value:.4f} (maximum 10.0)", wall_s=wall,
                       isolation="rlimits")


def _diff(old: str, new: str, old_id: int) -> str:
    return "".join(difflib.unified_diff(old.splitlines(keepends=True),
                                        new.splitlines(keepends=True),
                                        fromfile=f"program {old_id}", tofile="candidate"))


def build_run(run_dir: Path, *, programs: int = 14, seed: int = 7,
              status: str = "finished") -> RunFacts:
    """Write one run of `programs` evaluated candidates into RUN_DIR/archive.sqlite."""
    rng = random.Random(seed)
    run_dir.mkdir(parents=True, exist_ok=True)
    config = load_config(overrides=[f"budget.max_programs={programs}", "budget.max_usd=0.5",
                                    f"seed={seed}", "problem=toy_objective"])
    (run_dir / "config.toml").write_text(to_toml(config))
    archive = Archive.open(run_dir / "archive.sqlite")
    run_id = archive.create_run(problem="toy_objective", config_toml=to_toml(config), seed=seed,
                                isolation="rlimits", name="toy-run")
    code = TEMPLATE.format(a=0.5, b=1.0, body=GOOD_BODY)
    result = evaluate(code)
    initial_id = archive.add_program(
        run_id, code=code, code_hash=code_hash_of(code), parent_id=None, island=0, generation=0,
        operator=None, mutation_kind=None, status="evaluated", stage_reached="full",
        score=result.score, valid=result.valid, metrics=result.metrics, feedback=result.feedback,
        timings={"eval_s": result.wall_s}, evaluations=[result])
    facts = RunFacts(run_dir=run_dir, run_id=run_id, initial_id=initial_id, best_id=initial_id,
                     best_score=float(result.score or 0.0), program_ids=[initial_id])
    params = {initial_id: (0.5, 1.0, 0)}          # id -> (A, B, generation) of valid programs
    broken = {4: FailureKind.SYNTAX, 8: FailureKind.CRASH, 11: FailureKind.TIMEOUT}
    for number in range(1, programs):
        parent_id = rng.choice(sorted(params))
        a, b, generation = params[parent_id]
        operator = [LLM_MODEL, "tune", "swap"][number % 3]
        mutation = "diff" if number % 4 else "full"
        new_a = round(a + rng.uniform(-0.4, 1.0), 3)
        new_b = round(b + rng.uniform(-0.4, 1.2), 3)
        kind = broken.get(number)
        code = TEMPLATE.format(a=new_a, b=new_b,
                               body=BROKEN_BODIES[kind] if kind else GOOD_BODY)
        parent_code = archive.program(parent_id).code
        call_ids = []
        if operator == LLM_MODEL:
            messages = [{"role": "system", "content": "You evolve Python programs."},
                        {"role": "user", "content": f"{PROMPT_MARKER} (program {parent_id}):\n"
                                                    f"{parent_code}"}]
            call_ids.append(archive.record_llm_call(
                run_id, model=LLM_MODEL, prompt=json.dumps(messages),
                response=f"{REPLY_MARKER}.\n<<<<<<< SEARCH\nA = {a!r}\n=======\nA = {new_a!r}\n"
                         ">>>>>>> REPLACE",
                tokens_in=420 + number, tokens_out=64, cost_usd=0.0015, latency_s=0.8,
                error=None, purpose="proposal"))
            facts.spent_usd += 0.0015
        result = evaluate(code)
        program_id = archive.add_program(
            run_id, code=code, code_hash=code_hash_of(code), parent_id=parent_id,
            inspiration_ids=[initial_id] if number % 5 == 0 else [], island=number % 2,
            generation=generation + 1, operator=operator, mutation_kind=mutation,
            status="evaluated" if result.ok else "failed", stage_reached="full",
            score=result.score if result.ok else None, valid=result.ok, metrics=result.metrics,
            feedback=result.feedback, error_kind=str(result.failure) if result.failure else None,
            error_text=result.reason or None, timings={"eval_s": result.wall_s, "propose_s": 0.8
                                                       if call_ids else 0.0},
            diff=_diff(parent_code, code, parent_id), evaluations=[result],
            llm_call_ids=call_ids)
        facts.program_ids.append(program_id)
        if parent_id == initial_id:
            facts.children_of_initial.append(program_id)
        if operator == LLM_MODEL:
            facts.llm_program_ids.append(program_id)
        if result.ok:
            params[program_id] = (new_a, new_b, generation + 1)
            if result.score is not None and result.score > facts.best_score:
                facts.best_id, facts.best_score = program_id, result.score
        else:
            facts.failed[program_id] = str(result.failure)
    archive.add_event(run_id, "scratchpad", "scratchpad updated",
                      {"text": SCRATCHPAD_TEXT})
    archive.finish_run(run_id, status)
    archive.close()
    return facts


def cached_run(base: Path, name: str, **kwargs: object) -> RunFacts:
    """`build_run` once per test session: the CLI and dashboard suites share the run folder
    (pass pytest's `tmp_path_factory.getbasetemp()` as `base`)."""
    run_dir = base / "runs" / name
    facts_file = run_dir / "facts.json"
    if facts_file.is_file():
        data = json.loads(facts_file.read_text())
        data["run_dir"] = Path(data["run_dir"])
        data["failed"] = {int(k): v for k, v in data["failed"].items()}
        return RunFacts(**data)
    facts = build_run(run_dir, **kwargs)  # type: ignore[arg-type]
    facts_file.write_text(json.dumps({**facts.__dict__, "run_dir": str(facts.run_dir)}))
    return facts

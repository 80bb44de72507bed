"""A real short `evolve run` on the toy problem, for the CLI and dashboard tests.

The LLM operator is the scripted OpenAI-compatible server (tests/support/llm_server.py) on
127.0.0.1: it reads the current program out of each prompt and answers the way the prompt asks
(SEARCH/REPLACE edits for diff and repair prompts, a fenced program for full rewrites and
crossover, bullet tips for the scratchpad). Every fourth edit is broken on purpose (a crash or a
syntax error) so failures exist; offline operators run alongside (`use_offline = "always"`).
Prices are configured so the run has a dollar spend. Everything else is the real engine: the
controller, the sandboxed executor, the archive.
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from tests.support.archive_run import TOY_PROBLEM, RunFacts, cached_run
from tests.support.llm_server import Reply, ScriptedLLMServer

MODEL = "openai/scripted-coder"
REPLY_MARKER = "Moving A and B toward the optimum"
SCRATCHPAD_TIP = "Push A toward 2.5 and B toward 4"
PROGRAMS = 14

# The program to change: the current program (diff, full, repair) or parent A (crossover).
_CODE = re.compile(r"### (?:Current program|Parent A).*?```python\n(.*?)```", re.S)
_NUMBER = re.compile(r"^(A|B) = (.+)$", re.M)


def _user_text(request: dict[str, Any]) -> str:
    return "\n".join(str(m.get("content", "")) for m in request.get("messages", [])
                     if m.get("role") == "user")


def scripted_coder() -> Any:
    """The server's answer function: a deterministic 'model' for the toy problem."""
    counter = itertools.count(1)

    def answer(request: dict[str, Any]) -> Reply:
        text = _user_text(request)
        if "recommendations" in text and "Recent attempts" in text:
            return Reply(f"- {SCRATCHPAD_TIP}\n- Avoid names that are not defined")
        number = next(counter)
        found = _CODE.search(text)
        parent = found.group(1) if found else ""
        values = dict(_NUMBER.findall(parent))
        if not values:
            return Reply("I cannot find the program to change.")
        a, b = float(values.get("A", 0.5)), float(values.get("B", 1.0))
        # Halfway to the optimum, nudged by the request number so that two proposals from the
        # same parent differ (identical ones would be rejected as duplicates).
        new_a = round(a + (2.5 - a) * 0.5 + 0.001 * number, 6)
        new_b = round(b + (4.0 - b) * 0.4 - 0.001 * number, 6)
        body = "    return A, B"
        if number % 4 == 0:            # a broken proposal: fails in the sandbox
            body = "    return A, undefined_name" if number % 8 else "    return (A, B"
        if "<<<<<<< SEARCH" in text:   # diff and repair prompts ask for edits
            edits = (f"<<<<<<< SEARCH\nA = {values['A']}\n=======\nA = {new_a!r}\n>>>>>>> REPLACE\n"
                     f"<<<<<<< SEARCH\nB = {values['B']}\n=======\nB = {new_b!r}\n>>>>>>> REPLACE\n")
            if body != "    return A, B":
                edits += (f"<<<<<<< SEARCH\n    return A, B\n=======\n{body}\n"
                          f">>>>>>> REPLACE\n")
            return Reply(f"{REPLY_MARKER}.\n{edits}", prompt_tokens=900, completion_tokens=120)
        program = _NUMBER.sub(lambda m: f"{m.group(1)} = {new_a if m.group(1) == 'A' else new_b!r}",
                              parent).replace("    return A, B", body)
        return Reply(f"{REPLY_MARKER}, rewritten.\n```python\n{program}```",
                     prompt_tokens=900, completion_tokens=300)

    return answer


def config_toml(api_base: str, programs: int = PROGRAMS) -> str:
    return f"""seed = 7

[operators]
use_offline = "always"

[[operators.models]]
name = "{MODEL}"
api_base = "{api_base}"

[llm.prices."{MODEL}"]
input_per_mtok = 2.0
output_per_mtok = 8.0

[budget]
max_programs = {programs}
max_usd = 0.5

[concurrency]
proposals = 2
evaluations = 2

[islands]
count = 2

[scratchpad]
interval = 5
model = "{MODEL}"
"""


def engine_run(run_dir: Path, programs: int = PROGRAMS) -> RunFacts:
    """`evolve run` the toy problem into `run_dir` through typer's CliRunner; facts from the
    archive it wrote."""
    from db import Archive
    from evolve.cli import app

    with ScriptedLLMServer(scripted_coder()) as server:
        config = run_dir.parent / f"{run_dir.name}.toml"
        run_dir.parent.mkdir(parents=True, exist_ok=True)
        config.write_text(config_toml(server.base_url, programs))
        result = CliRunner().invoke(app, ["run", str(TOY_PROBLEM), "--config", str(config),
                                          "--run-dir", str(run_dir), "--no-live"])
    if result.exit_code != 0:
        raise RuntimeError(f"evolve run failed ({result.exit_code}):\n{result.output}")
    with Archive.open(run_dir / "archive.sqlite", create=False) as archive:
        run_id = archive.runs()[-1].id
        stored = archive.programs(run_id)
        initial = next(p for p in stored if p.parent_id is None)
        best = archive.best(run_id)[0]
        llm_ids = [p.id for p in stored if p.valid and p.parent_id is not None
                   and archive.llm_calls(program_id=p.id)]
        return RunFacts(
            run_dir=run_dir, run_id=run_id, initial_id=initial.id, best_id=best.id,
            best_score=float(best.score), program_ids=[p.id for p in stored],
            failed={p.id: p.error_kind or "invalid" for p in stored if not p.valid},
            llm_program_ids=llm_ids,
            children_of_initial=[p.id for p in archive.children(initial.id)],
            spent_usd=archive.cost_so_far(run_id), status=archive.get_run(run_id).status,
            max_programs=programs, scratchpad_tip=SCRATCHPAD_TIP)


def shared_toy_run(base: Path) -> RunFacts:
    """The session's toy run (one real `evolve run`, shared by the CLI and dashboard tests)."""
    return cached_run(base, "toy-run", engine_run)

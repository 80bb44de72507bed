"""A real run whose texts try to style and hide things, whose model has no known price, and whose
model repeats itself (duplicates): the toy problem copied with an evaluator that reports metric
names in brackets and feedback holding rich markup, driven by the scripted LLM server."""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.first_run.support import TOY
from tests.support.llm_server import Reply, ScriptedLLMServer

MODEL = "openai/unpriced-coder"          # no price in the config nor in litellm's data
STYLED = "[bold red]STYLED[/bold red]"
HIDDEN = "[conceal]HIDDEN-TEXT[/conceal]"
LLM_MARKUP = "[blink]LLM-SAYS[/blink]"
METRIC = "cost[us-west-2a_k80_1]"

EVALUATE_EXTRA = f'''
    result = _original(program_path, stage)
    if result["valid"]:
        result["metrics"]["{METRIC}"] = result["metrics"]["a"]
        result["feedback"] += " {STYLED} {HIDDEN}"
    return result
'''


@dataclass
class HostileRun:
    run_dir: Path
    output: str                 # the progress lines `evolve run` printed


def _hostile_problem(root: Path) -> Path:
    problem = root / "hostile_toy"
    shutil.copytree(TOY, problem)
    source = (problem / "evaluate.py").read_text().replace("def evaluate(", "def _original(")
    (problem / "evaluate.py").write_text(source + "\n\ndef evaluate(program_path, stage):"
                                         + EVALUATE_EXTRA)
    return problem


def _same_program_every_time(request: dict[str, Any]) -> Reply:
    text = "\n".join(str(m.get("content", "")) for m in request.get("messages", []))
    if "recommendations" in text and "Recent attempts" in text:
        return Reply("- keep going")
    found = re.search(r"```python\n(.*?)```", text, re.S)
    program = (found.group(1) if found else "").replace("A = 0.5", "A = 2.0")
    return Reply(f"{LLM_MARKUP} rewritten.\n```python\n{program}```",
                 prompt_tokens=500, completion_tokens=100)


@pytest.fixture(scope="session")
def hostile_run(tmp_path_factory: pytest.TempPathFactory) -> HostileRun:
    from evolve.cli import app

    root = tmp_path_factory.mktemp("hostile")
    problem = _hostile_problem(root)
    run_dir = root / "run"
    with ScriptedLLMServer(_same_program_every_time) as server:
        config = root / "run.toml"
        config.write_text(f"""seed = 3
[[operators.models]]
name = "{MODEL}"
api_base = "{server.base_url}"

[mutation.mix]
diff = 0.0
full = 1.0
crossover = 0.0

[budget]
max_programs = 4

[concurrency]
proposals = 1
evaluations = 1

[islands]
count = 1
""")
        result = CliRunner().invoke(app, ["run", str(problem), "--config", str(config),
                                          "--run-dir", str(run_dir), "--no-live"])
    assert result.exit_code == 0, result.output
    return HostileRun(run_dir, result.output)

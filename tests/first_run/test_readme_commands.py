"""Every command in the README's bash blocks runs and exits 0 (see readme_commands for how)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.first_run.readme_commands import adjust, bash_blocks, commands, skip_reason
from tests.first_run.support import REPO, evolve_env
from tests.support.llm_server import Reply, ScriptedLLMServer

README = (REPO / "README.md").read_text()
COMMANDS = commands(README)


def _unchanged_program(request: dict[str, Any]) -> Reply:
    """A scripted model: "ok" to a check, otherwise the current program back (the run records
    a no-change rejection; what is tested is that the command works end to end)."""
    text = "\n".join(str(m.get("content", "")) for m in request.get("messages", []))
    found = re.search(r"```python\n(.*?)```", text, re.S)
    return Reply(f"```python\n{found.group(1)}```" if found else "ok",
                 prompt_tokens=50, completion_tokens=5)


def test_the_readme_has_commands_to_run():
    assert len(bash_blocks(README)) >= 3
    runnable = [c for c in COMMANDS if skip_reason(c) is None]
    assert any(" run circle_packing" in c for c in runnable)
    assert any("config show" in c for c in runnable)


@pytest.fixture(scope="module")
def server():
    with ScriptedLLMServer(_unchanged_program) as running:
        yield running


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """A folder that sees the repository's top-level entries (so `problems/...`,
    `benchmarks/...` resolve) but keeps what commands write."""
    for entry in REPO.iterdir():
        if entry.name not in (".git", "runs", ".venv"):
            (tmp_path / entry.name).symlink_to(entry)
    return tmp_path


@pytest.mark.parametrize("text", COMMANDS)
def test_readme_command_exits_0(text: str, work: Path, server: ScriptedLLMServer):
    reason = skip_reason(text)
    if reason:
        pytest.skip(reason)
    command = adjust(text, work, server.base_url)
    done = subprocess.run(command.argv, cwd=work, env=evolve_env(**command.env),
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, (f"{text}\n  ran as {command.argv}\n  exit {done.returncode}\n"
                                  f"{done.stdout[-2000:]}\n{done.stderr[-2000:]}")


def test_the_readme_config_example_is_valid(work: Path):
    """The README's run.toml, through `evolve config show --config`."""
    blocks = re.findall(r"^```toml\n(# run\.toml\n.*?)^```", README, re.S | re.M)
    assert blocks
    for block in blocks:
        (work / "run.toml").write_text(block)
        done = subprocess.run([sys.executable, "-m", "evolve", "config", "show", "--config",
                               "run.toml"], cwd=work, env=evolve_env(), capture_output=True,
                              text=True, timeout=60, check=False)
        assert done.returncode == 0, done.stderr

"""Helpers for the engine's end-to-end tests: a fast fixture problem, configs with small budgets,
replies of a scripted OpenAI-compatible server that are SEARCH/REPLACE diffs."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from db import Archive
from db.errors import ArchiveError
from evolve.config import EvolveConfig, load_config
from evolve.engine.session import RunOutcome, run_session
from tests.support.llm_server import Reply, ScriptedLLMServer

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "target"
MODEL = "openai/scripted"
_VALUE = re.compile(r"^VALUE = (.+)$", re.MULTILINE)


def engine_config(run_dir: Path, server: ScriptedLLMServer | None = None,
                  **sections: Any) -> EvolveConfig:
    """A small, fast configuration on the fixture problem; keyword args are whole sections."""
    base: dict[str, Any] = {
        "problem": str(FIXTURE), "seed": 7, "run_dir": str(run_dir),
        "islands": {"count": 2, "migration_interval": 3, "migration_rate": 0.5},
        "concurrency": {"proposals": 2, "evaluations": 2},
        "mutation": {"mix": {"diff": 1.0}, "repair_rate": 0.0, "max_resample": 1},
        "budget": {"max_programs": 6},
        "scratchpad": {"enabled": False},
        "llm": {"retries": 1, "backoff_base_s": 0.05, "backoff_max_s": 0.1},
    }
    if server is not None:
        base["operators"] = {"models": [{"name": MODEL, "api_base": server.base_url}]}
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            base[key] = {**base[key], **value}
        else:
            base[key] = value
    return load_config(None, [], base=base)


def run(config: EvolveConfig, run_dir: Path, *, resume: bool = False,
        snapshots: list | None = None) -> RunOutcome:
    return asyncio.run(run_session(config, run_dir, resume=resume, handle_signals=False,
                                   log=lambda _m: None,
                                   on_progress=snapshots.append if snapshots is not None else None))


def open_archive(run_dir: Path) -> Archive:
    return Archive.open(run_dir / "archive.sqlite", create=False)


def parent_value(request: dict[str, Any]) -> float:
    """VALUE of the program the prompt asks to change (the first program in the user message)."""
    user = next(m["content"] for m in request["messages"] if m["role"] == "user")
    match = _VALUE.search(user)
    assert match, "the prompt carries no parent program"
    return float(match.group(1))


def set_value_diff(old: float, new: str, note: str = "Move VALUE.") -> str:
    return (f"{note}\n<<<<<<< SEARCH\nVALUE = {old!r}\n=======\nVALUE = {new}\n"
            f">>>>>>> REPLACE\n")


def bump(step: float = 1.0):
    """A responder: every reply moves the parent's VALUE up by `step` (depends on the prompt only)."""

    def respond(request: dict[str, Any]) -> Reply:
        if "recommendations" in request["messages"][-1]["content"]:  # a scratchpad summary
            return Reply("- keep moving VALUE towards 10\n- avoid values that are not numbers")
        old = parent_value(request)
        return Reply(set_value_diff(old, repr(old + step)))

    return respond


def prompt_hashed():
    """A responder whose edit is a function of the whole prompt (the parent, the inspirations,
    the scratchpad): proposals from one parent with different context differ, so few replies
    repeat a program, while the same prompt always gets the same reply (as determinism tests
    need)."""

    def respond(request: dict[str, Any]) -> Reply:
        user = "\n".join(m["content"] for m in request["messages"] if m["role"] == "user")
        old = parent_value(request)
        step = int(hashlib.sha256(user.encode()).hexdigest()[:8], 16) % 2000 / 1000 - 0.5
        return Reply(set_value_diff(old, repr(round(old + step, 3))))

    return respond


def evolve_process(*args: str) -> subprocess.Popen:
    """`evolve ARGS` in its own process group (so a test can kill -9 it whole), from the
    repository, without any provider key of the environment; stdout and stderr merged."""
    root = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env["PYTHONPATH"] = str(root)
    return subprocess.Popen([sys.executable, "-m", "evolve", *args], cwd=root, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)


def stored_count(run_dir: Path) -> int:
    """Programs stored so far; 0 while the archive is still being created."""
    try:
        with Archive.open(run_dir / "archive.sqlite", create=False) as archive:
            return len(archive.programs(1)) if archive.runs() else 0
    except ArchiveError:
        return 0

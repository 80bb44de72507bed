"""The commands of the README's fenced bash blocks, and how a test runs each one.

Parsing is by fence, not by position, so sections can move and grow: every ```bash block is read,
backslash continuations joined, comments dropped, and `a && b` split into commands. A command
runs as written, with three adjustments a test needs (stated in `adjust`): `.venv/bin/evolve`
and `.venv/bin/python` become this interpreter; an `evolve run` without `--programs` stops after
1 program and writes its run directory under the test's folder; an LLM the README names
(`openai/...`, or `--api-base http://127.0.0.1:8000/v1`) is answered by the scripted server.

A command that cannot run in the test suite is listed in SKIP with the reason; add to it when
a README command needs a GPU, a cluster or a real API key.
"""

from __future__ import annotations

import re
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

# (regular expression searched in the command, why it is not run here)
SKIP: list[tuple[str, str]] = [
    (r"^bash scripts/setup\.sh( --dev)?$", "installs into .venv; .ci/run runs it before the tests"),
    (r"^bash scripts/setup\.sh --local$",
     "compiles llama.cpp; .ci/run runs it (and the local-model command after it)"),
    (r"-m pytest", "the test suite itself"),
    (r"--model local/", "needs the local extra and minutes of CPU; .ci/run installs the "
                        "extra and runs this exact command once"),
    (r"--executor ray|--ray-address", "needs a Ray cluster"),
    (r"<[A-Za-z_]+>", "a placeholder to fill in"),
    (r"python benchmarks/", "a benchmark (minutes to hours of CPU): run by hand, not in the suite"),
]

FAKE_KEY = "sk-test-readme"
FIXED_SERVER = "http://127.0.0.1:8000/v1"


@dataclass
class Command:
    text: str                               # as the README writes it
    argv: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)


def bash_blocks(markdown: str) -> list[str]:
    return re.findall(r"^```bash\n(.*?)^```", markdown, re.S | re.M)


def commands(markdown: str) -> list[str]:
    found = []
    for block in bash_blocks(markdown):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            tokens = shlex.split(line, comments=True)
            if not tokens:
                continue
            current: list[str] = []
            for token in [*tokens, "&&"]:
                if token in ("&&", ";"):
                    if current:
                        found.append(shlex.join(current))
                    current = []
                else:
                    current.append(token)
    return found


def skip_reason(text: str) -> str | None:
    for pattern, reason in SKIP:
        if re.search(pattern, text):
            return reason
    return None


def adjust(text: str, work: Path, server_url: str) -> Command:
    """The command as the test runs it (see the module's docstring)."""
    tokens = shlex.split(text)
    env: dict[str, str] = {}
    while tokens and re.match(r"^[A-Z_][A-Z0-9_]*=", tokens[0]):
        name, _, value = tokens.pop(0).partition("=")
        env[name] = FAKE_KEY if value in ("", "...") else value
    program, *args = tokens
    if program in (".venv/bin/evolve", "evolve"):
        argv = [sys.executable, "-m", "evolve", *args]
    elif program in (".venv/bin/python", "python", "python3"):
        argv = [sys.executable, *args]
    else:
        argv = [program, *args]
    argv = [server_url if arg == FIXED_SERVER else arg for arg in argv]
    if argv[1:4] == ["-m", "evolve", "run"]:
        if "--programs" not in argv:
            argv += ["--programs", "1"]
        if "--run-dir" not in argv:
            argv += ["--run-dir", str(work / f"run-{len(list(work.glob('run-*')))}")]
    if any(arg.startswith("openai/") for arg in argv) and "--api-base" not in argv:
        env.setdefault("OPENAI_API_KEY", FAKE_KEY)
        env["OPENAI_API_BASE"] = env["OPENAI_BASE_URL"] = server_url
    return Command(text, argv, env)

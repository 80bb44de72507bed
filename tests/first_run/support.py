"""Running `evolve` the way a new user does: a subprocess in a fresh folder, piped or on a
pseudo-terminal."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TOY = REPO / "tests" / "support" / "toy_problem"


def evolve_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.endswith(("_API_KEY", "_API_BASE", "_BASE_URL")) and k != "OLLAMA_HOST"}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


def evolve(*args: str, cwd: Path, timeout: float = 240, **env: str) -> subprocess.CompletedProcess:
    """`evolve ARGS` piped (stdout and stderr captured), as a script would run it."""
    return subprocess.run([sys.executable, "-m", "evolve", *args], cwd=cwd, env=evolve_env(**env),
                          capture_output=True, text=True, timeout=timeout, check=False)


def evolve_on_terminal(*args: str, cwd: Path, columns: int = 100,
                       timeout: float = 240) -> tuple[int, str]:
    """`evolve ARGS` on a pseudo-terminal (what a user at a terminal sees): exit code, output."""
    import pty

    master, slave = pty.openpty()
    os.set_inheritable(slave, True)
    proc = subprocess.Popen([sys.executable, "-m", "evolve", *args], cwd=cwd,
                            env=evolve_env(TERM="xterm-256color", COLUMNS=str(columns),
                                           LINES="40"),
                            stdin=slave, stdout=slave, stderr=slave, close_fds=True)
    os.close(slave)
    chunks = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            try:
                data = os.read(master, 65536)
            except OSError:          # EIO: the terminal closed (the child exited)
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
    return proc.returncode, b"".join(chunks).decode(errors="replace")

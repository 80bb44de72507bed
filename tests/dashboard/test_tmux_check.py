"""scripts/tmux_check.sh drives the real dashboard in tmux (slow: ~15 s of key presses)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.archive_run import RunFacts

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "tmux_check.sh"


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_tmux_check_passes_on_a_finished_run(toy_run: RunFacts) -> None:
    done = subprocess.run([str(SCRIPT), str(toy_run.run_dir)], capture_output=True, text=True,
                          timeout=180, env={**os.environ, "PYTHON": sys.executable})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "q quit the dashboard" in done.stdout

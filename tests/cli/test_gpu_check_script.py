"""scripts/gpu_check.sh without a GPU: it runs nothing, says so in one line and exits non-zero."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "gpu_check.sh"


def _run(**env: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **env}, cwd=REPO)


def test_no_gpu_exits_non_zero_with_a_clear_line():
    pytest.importorskip("torch")
    done = _run(PYTHON=sys.executable, CUDA_VISIBLE_DEVICES="-1")
    assert done.returncode == 3, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "no CUDA GPU is visible" in lines[0], done.stderr
    assert "== eplb" not in done.stdout           # nothing ran


def test_an_interpreter_without_torch_is_named(tmp_path: Path):
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\nexit 1\n")
    fake.chmod(0o755)
    done = _run(PYTHON=str(fake))
    assert done.returncode == 3 and "torch cannot be imported" in done.stderr

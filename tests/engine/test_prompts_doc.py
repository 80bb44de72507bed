"""docs/prompts.md is what the prompt builder renders now (scripts/render_prompts.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_committed_prompts_doc_is_current():
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "render_prompts.py"),
                           "--check"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_the_doc_shows_every_mutation_kind_and_the_retry():
    text = (ROOT / "docs" / "prompts.md").read_text()
    for heading in ("## System message", "## User message: diff", "## User message: full",
                    "## User message: crossover", "## User message: repair",
                    "## Retry after an unusable reply", "## Compared with OpenEvolve"):
        assert heading in text, heading
    crossover = text.split("## User message: crossover")[1].split("## User message: repair")[0]
    assert "### Parent B (program 3)" in crossover and "Inspiration 1 (program 0)" in crossover
    inspirations = crossover.split("## Other programs for inspiration")[1].split("## How to")[0]
    assert "program 3" not in inspirations  # parent B is not shown again as an inspiration

"""`evolve plot` writes a PNG that really shows the run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib import image
from typer.testing import CliRunner

from evolve.cli import app
from tests.support.archive_run import RunFacts

runner = CliRunner()


def test_plot_writes_a_png_with_content(toy_run: RunFacts, tmp_path: Path) -> None:
    target = tmp_path / "plots" / "progress.png"
    result = runner.invoke(app, ["plot", str(toy_run.run_dir), "-o", str(target)])
    assert result.exit_code == 0, result.output
    assert f"wrote {target}" in result.stdout
    pixels = image.imread(target)
    assert pixels.shape[:2] == (450, 1100)           # 11 x 4.5 inches at 100 dpi
    rgb = pixels[..., :3]
    non_white = np.any(rgb < 0.95, axis=-1).mean()
    assert 0.02 < non_white < 0.6                  # axes, lines and labels, not a blank page
    colours = {tuple(c) for c in (rgb.reshape(-1, 3) * 255).astype(int)[::7]}
    assert len(colours) > 20                       # several coloured operator lines, not one ink


def test_plot_wants_a_png_name(toy_run: RunFacts, tmp_path: Path) -> None:
    result = runner.invoke(app, ["plot", str(toy_run.run_dir), "-o", str(tmp_path / "x.jpg")])
    assert result.exit_code == 2
    assert ".png" in result.stderr
    assert not (tmp_path / "x.jpg").exists()

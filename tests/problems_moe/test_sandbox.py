"""The problem through the real sandboxed executor, as `evolve` runs it (quick stage only)."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")

from evaluators.executors import LocalExecutor  # noqa: E402
from evolve.problem.spec import load_problem  # noqa: E402
from tests.problems_moe.helpers import PROBLEM  # noqa: E402


async def test_quick_stage_runs_in_the_sandbox():
    spec = load_problem(PROBLEM)
    executor = LocalExecutor(max_parallel=2)
    try:
        good = await executor.evaluate(spec, spec.initial_code(), stages=["quick"])
        bad = await executor.evaluate(
            spec, "import torch\n\ndef balancing_loss(ctx):\n    return ctx.router_probs\n",
            stages=["quick"])
    finally:
        await executor.aclose()
    assert good.valid, good.reason
    assert good.metrics["steps"] == 3 and good.score < 0
    assert not bad.valid
    assert "0-dim" in bad.feedback

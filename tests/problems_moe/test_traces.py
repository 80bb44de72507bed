"""The vendored expert-load traces (CPU runs, seed 0) have the shape of the CPU configuration."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")

from problems.moe_lbl.load_trace import read_load_history  # noqa: E402
from problems.moe_lbl.trainer import CONFIGS  # noqa: E402
from tests.problems_moe.helpers import PROBLEM  # noqa: E402

CPU = CONFIGS["cpu"]


@pytest.mark.parametrize("name", ["no_balancing", "micro_batch", "global_batch", "aux_free_bias"])
def test_vendored_trace_has_the_cpu_run_shape(name):
    history = read_load_history(PROBLEM / "traces" / f"{name}_seed0.json")
    assert len(history) == CPU.steps
    per_step = CPU.micro_batch * CPU.model.seq_len * CPU.num_micro * CPU.model.top_k
    for loads in history:
        assert len(loads) == CPU.model.n_layers
        assert all(len(row) == CPU.model.num_experts and sum(row) == per_step for row in loads)


def test_the_expert_placement_problem_reads_the_traces():
    workloads = pytest.importorskip("problems.eplb.workloads")
    steps = workloads.load_history_file(PROBLEM / "traces" / "global_batch_seed0.json")
    assert steps.shape == (CPU.steps, CPU.model.n_layers, CPU.model.num_experts)

"""The DeepSeek EPLB baseline reproduces the published example; every baseline is valid."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from evaluators.harness_api import load_candidate  # noqa: E402
from evolve.problem.spec import EVOLVE_BLOCK_END, EVOLVE_BLOCK_START, load_problem  # noqa: E402
from problems.eplb.placement import EplbConfig, config_for, validate_placement  # noqa: E402

WEIGHT = torch.tensor([[90, 132, 40, 61, 104, 165, 39, 4, 73, 56, 183, 86],
                       [20, 107, 104, 64, 19, 197, 187, 157, 172, 86, 16, 27]])
# Published output of DeepSeek's EPLB (hierarchical policy) on this input.
PUBLISHED_PHY2LOG = torch.tensor([[5, 6, 5, 7, 8, 4, 3, 4, 10, 9, 10, 2, 0, 1, 11, 1],
                                  [7, 10, 6, 8, 6, 11, 8, 9, 2, 4, 5, 1, 5, 0, 3, 1]])


def test_reproduces_the_published_example(deepseek):
    phy2log, log2phy, logcnt = deepseek(WEIGHT.clone(), 16, 4, 2, 8)
    assert torch.equal(phy2log, PUBLISHED_PHY2LOG)
    assert torch.equal(logcnt, torch.tensor([[1, 2, 1, 1, 2, 2, 1, 1, 1, 1, 2, 1],
                                             [1, 2, 1, 1, 1, 2, 2, 1, 2, 1, 1, 1]]))
    assert log2phy.shape == (2, 12, 5) and log2phy.dtype == torch.int64
    validate_placement((phy2log, log2phy, logcnt), 2, 12,
                       EplbConfig(16, 4, 2, 8), WEIGHT.numpy())


def test_groups_are_kept_whole_on_nodes(deepseek):
    phy2log = deepseek(WEIGHT.clone(), 16, 4, 2, 8)[0]
    # Groups of 3 experts; node n owns GPUs 4n..4n+3 = slots 8n..8n+7.
    for layer in range(2):
        for node in range(2):
            groups = {int(e) // 3 for e in phy2log[layer, 8 * node: 8 * node + 8]}
            assert len(groups) == 2


def test_global_policy_when_groups_do_not_divide_by_nodes(deepseek):
    # 3 groups on 2 nodes: everything is packed as one group on one node.
    cfg = EplbConfig(num_replicas=16, num_groups=3, num_nodes=2, num_gpus=8)
    result = deepseek(WEIGHT.clone(), 16, 3, 2, 8)
    validate_placement(result, 2, 12, cfg)
    assert torch.equal(result[0], deepseek(WEIGHT.clone(), 16, 1, 1, 8)[0])


def test_heaviest_experts_get_the_replicas(deepseek):
    weight = torch.tensor([[1000, 1, 1, 1, 1, 1, 1, 1]])
    logcnt = deepseek(weight, 12, 1, 1, 4)[2]
    assert logcnt.tolist() == [[5, 1, 1, 1, 1, 1, 1, 1]]


@pytest.mark.parametrize("experts", [8, 16, 64, 256])
def test_every_baseline_gives_a_valid_placement(problem_dir, experts):
    spec = load_problem(problem_dir)
    cfg = config_for(experts)
    load = np.random.default_rng(experts).integers(0, 1000, size=(3, experts))
    programs = {"initial": spec.initial_path, **spec.baselines()}
    assert set(programs) == {"initial", "deepseek_eplb", "round_robin"}
    for name, path in programs.items():
        fn = load_candidate(path).rebalance_experts
        result = fn(torch.from_numpy(load), cfg.num_replicas, cfg.num_groups, cfg.num_nodes,
                    cfg.num_gpus)
        assert validate_placement(result, 3, experts, cfg).shape == (3, cfg.num_replicas), name


def test_initial_program_is_the_deepseek_baseline_with_an_evolve_block(problem_dir):
    text = (problem_dir / "initial.py").read_text()
    start, end = text.index(EVOLVE_BLOCK_START), text.index(EVOLVE_BLOCK_END)
    assert "def rebalance_experts" in text[start:end]
    baseline = load_candidate(problem_dir / "baselines" / "deepseek_eplb.py").rebalance_experts
    initial = load_candidate(problem_dir / "initial.py").rebalance_experts
    load = torch.randint(0, 5000, (4, 256))
    for mine, theirs in zip(initial(load, 288, 8, 4, 32), baseline(load, 288, 8, 4, 32),
                            strict=True):
        assert torch.equal(mine, theirs)

"""Balance and specialisation measures on tables whose answers are known."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from problems.moe_lbl.metrics import (  # noqa: E402
    imbalance_l1,
    max_over_mean,
    max_vio,
    mutual_information_bits,
)


def test_imbalance_bounds():
    assert float(imbalance_l1(torch.tensor([5.0, 5.0, 5.0, 5.0]))) == 0.0
    assert float(imbalance_l1(torch.tensor([8.0, 0.0, 0.0, 0.0]))) == pytest.approx(1.5)
    assert float(imbalance_l1(torch.tensor([3.0, 1.0, 0.0, 0.0]))) == pytest.approx(1.0)
    assert float(max_over_mean(torch.tensor([3.0, 1.0, 0.0, 0.0]))) == pytest.approx(3.0)
    # MaxVio (Wang et al., 2024) = max load / mean load - 1: 0 when even.
    assert float(max_vio(torch.tensor([3.0, 1.0, 0.0, 0.0]))) == pytest.approx(2.0)
    assert float(max_vio(torch.tensor([2.0, 2.0, 2.0, 2.0]))) == 0.0


def test_mutual_information_of_known_tables():
    assert mutual_information_bits(torch.eye(4) * 10) == pytest.approx(2.0)
    assert mutual_information_bits(torch.ones(4, 8)) == pytest.approx(0.0, abs=1e-12)
    # two domains, each split 3:1 over two experts in opposite directions
    table = torch.tensor([[3.0, 1.0], [1.0, 3.0]])
    h = -(0.75 * math.log2(0.75) + 0.25 * math.log2(0.25))
    assert mutual_information_bits(table) == pytest.approx(1 - h)

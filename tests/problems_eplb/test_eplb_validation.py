"""Every kind of broken placement is rejected with a reason that names what is wrong."""

from __future__ import annotations

import json
import textwrap

import pytest

torch = pytest.importorskip("torch")

from problems.eplb.placement import EplbConfig, InvalidPlacement, validate_placement  # noqa: E402

CFG = EplbConfig(num_replicas=16, num_groups=4, num_nodes=2, num_gpus=8)
WEIGHT = torch.tensor([[90, 132, 40, 61, 104, 165, 39, 4, 73, 56, 183, 86],
                       [20, 107, 104, 64, 19, 197, 187, 157, 172, 86, 16, 27]])


@pytest.fixture()
def good(deepseek):
    phy2log, log2phy, logcnt = deepseek(WEIGHT.clone(), 16, 4, 2, 8)
    return phy2log.clone(), log2phy.clone(), logcnt.clone()


def check(result):
    return validate_placement(result, 2, 12, CFG, WEIGHT.numpy())


def test_the_reference_output_is_valid(good):
    assert torch.equal(check(good), good[0])


def test_narrower_log2phy_int32_and_strided_views_are_accepted(good):
    phy2log, log2phy, logcnt = good
    width = int(logcnt.max())
    check((phy2log.int(), log2phy[:, :, :width].int(), logcnt.int()))
    strided = phy2log.t().contiguous().t()
    assert not strided.is_contiguous() and not log2phy[:, :, :width].is_contiguous()
    assert torch.equal(check((strided, log2phy[:, :, :width], logcnt)), phy2log)


def broken_cases(good):
    phy2log, log2phy, logcnt = good
    slot_of_0 = int(log2phy[0, 0, 0])

    def edited(index, fn):
        parts = [phy2log.clone(), log2phy.clone(), logcnt.clone()]
        fn(parts[index])
        return tuple(parts)

    unknown = edited(0, lambda t: t.__setitem__((0, 3), 12))
    negative = edited(0, lambda t: t.__setitem__((1, 0), -1))
    # Expert 0 of layer 0 loses its only slot to expert 1: logcnt no longer agrees.
    stolen = edited(0, lambda t: t.__setitem__((0, slot_of_0), 1))
    # ... and with logcnt and log2phy made consistent, expert 0 has no replica at all.
    no_replica = list(stolen)
    no_replica[2] = no_replica[2].clone()
    no_replica[2][0, 0], no_replica[2][0, 1] = 0, int(logcnt[0, 1]) + 1
    no_replica[1] = no_replica[1].clone()
    no_replica[1][0, 0, :] = -1
    no_replica[1][0, 1, int(logcnt[0, 1])] = slot_of_0
    return {
        "not a tuple": ([phy2log, log2phy, logcnt, None], "must return a tuple"),
        "not tensors": ((phy2log.tolist(), log2phy, logcnt), "must be a torch.Tensor"),
        "tensor subclass": ((phy2log.as_subclass(torch.nn.Parameter), log2phy, logcnt),
                            "must be a torch.Tensor, got Parameter"),
        "float dtype": ((phy2log.float(), log2phy, logcnt), "dtype torch.float32"),
        "NaN": ((phy2log.double().index_fill(1, torch.tensor([0]), float("nan")), log2phy, logcnt),
                "contains NaN"),
        "bool dtype": ((phy2log, log2phy, logcnt.bool()), "dtype torch.bool"),
        "slots per GPU": ((phy2log[:, :15], log2phy, logcnt), "shape (2, 15), expected (2, 16)"),
        "logcnt shape": ((phy2log, log2phy, logcnt[:, :11]), "logcnt has shape"),
        "log2phy shape": ((phy2log, log2phy[0], logcnt), "log2phy has shape"),
        "unknown expert": (unknown, "not a real expert"),
        "negative expert": (negative, "not a real expert"),
        "counts disagree": (stolen, "logcnt[0] = 1 but phy2log puts expert 0 in 0 slot(s)"),
        "no replica": (tuple(no_replica), "expert 0 has no replica (it had load 90"),
        "log2phy too narrow": ((phy2log, log2phy[:, :, :1], logcnt), "room for 1 replicas"),
        "log2phy too wide": ((phy2log, torch.full((2, 12, 17), -1), logcnt), "more than the 16 slots"),
        "padding": (edited(1, lambda t: t.__setitem__((0, 2, 3), 5)), "pad with -1"),
        "slot out of range": (edited(1, lambda t: t.__setitem__((0, 0, 0), 99)), "is not a slot"),
        "wrong slot": (edited(1, lambda t: t.__setitem__((0, 0, 0), (slot_of_0 + 1) % 16)),
                       "phy2log["),
        "missing log2phy entry": (edited(1, lambda t: t.__setitem__((0, 0, 0), -1)),
                                  "is not a slot"),
    }


CASES = ["not a tuple", "not tensors", "tensor subclass", "float dtype", "NaN", "bool dtype", "slots per GPU",
         "logcnt shape", "log2phy shape", "unknown expert", "negative expert", "counts disagree",
         "no replica", "log2phy too narrow", "log2phy too wide", "padding", "slot out of range", "wrong slot",
         "missing log2phy entry"]


@pytest.mark.parametrize("case", CASES)
def test_each_broken_output_is_rejected(good, case):
    result, expected = broken_cases(good)[case]
    with pytest.raises(InvalidPlacement) as info:
        check(result)
    assert expected in str(info.value)


def test_a_slot_listed_twice_is_rejected(good):
    phy2log, log2phy, logcnt = good
    expert = int((logcnt[0] == 2).nonzero()[0])
    twice = log2phy.clone()
    twice[0, expert, 1] = twice[0, expert, 0]
    with pytest.raises(InvalidPlacement, match="listed 2 times"):
        check((phy2log, twice, logcnt))


def write(tmp_path, body: str):
    path = tmp_path / "candidate.py"
    path.write_text(textwrap.dedent(body))
    return str(path)


def test_evaluate_scores_a_broken_candidate_zero_with_the_reason(tmp_path):
    from problems.eplb.evaluate import evaluate
    path = write(tmp_path, """
        import torch
        def rebalance_experts(weight, num_replicas, num_groups, num_nodes, num_gpus):
            layers, experts = weight.shape
            phy2log = (torch.arange(num_replicas) % experts).repeat(layers, 1)
            logcnt = torch.ones(layers, experts, dtype=torch.int64)   # wrong: some have 2
            log2phy = torch.full((layers, experts, 2), -1, dtype=torch.int64)
            return phy2log, log2phy, logcnt
    """)
    result = evaluate(path, "quick")
    assert result["valid"] is False and result["score"] == 0.0
    assert "logcnt[0] = 1 but phy2log puts expert 0 in 2 slot(s)" in result["feedback"]
    json.dumps(result)


def test_evaluate_reports_a_raising_candidate(tmp_path):
    from problems.eplb.evaluate import evaluate
    path = write(tmp_path, """
        def rebalance_experts(weight, num_replicas, num_groups, num_nodes, num_gpus):
            raise RuntimeError("out of ideas")
    """)
    result = evaluate(path, "balance")
    assert result["valid"] is False and result["score"] == 0.0
    assert "rebalance_experts() raised: RuntimeError: out of ideas" in result["feedback"]


def test_a_candidate_that_mutates_its_input_is_still_scored_on_the_true_load(tmp_path):
    from problems.eplb.evaluate import evaluate
    honest = evaluate(str(__import__("pathlib").Path(__file__).resolve().parents[2]
                          / "problems" / "eplb" / "baselines" / "round_robin.py"), "quick")
    path = write(tmp_path, """
        import torch
        def rebalance_experts(weight, num_replicas, num_groups, num_nodes, num_gpus):
            layers, experts = weight.shape
            weight.fill_(1)           # tries to make the load look even
            slots = torch.arange(num_replicas)
            phy2log = (slots % experts).repeat(layers, 1)
            logcnt = torch.bincount(slots % experts, minlength=experts).repeat(layers, 1)
            log2phy = torch.full((layers, experts, 2), -1, dtype=torch.int64)
            log2phy[:, slots % experts, slots // experts] = slots
            return phy2log, log2phy, logcnt
    """)
    cheat = evaluate(path, "quick")
    assert cheat["valid"] is True
    assert cheat["metrics"]["balancedness_gpu"] == pytest.approx(
        honest["metrics"]["balancedness_gpu"])

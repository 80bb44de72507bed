"""The iteration cost model against the published points it is calibrated on (README, "Cost
model"), and the derived sizes of the default instance."""

from __future__ import annotations

import pytest

from problems.serving.costmodel import (
    COST,
    GPU,
    INSTANCE,
    LLAMA_3_1_8B,
    MODEL,
    PUBLISHED_SWEEP,
    SINGLE_REQUEST_BANDWIDTH_SHARE,
    calibrate,
    kv_blocks,
)


@pytest.mark.parametrize("point", PUBLISHED_SWEEP, ids=["batch1", "batch8"])
def test_calibrated_model_reproduces_the_published_vllm_sweep(point):
    batch, prompt, output, tokens_per_s = point
    cost = calibrate(LLAMA_3_1_8B, GPU)
    step = cost.decode_time(batch, batch * (prompt + output // 2))
    assert batch / step == pytest.approx(tokens_per_s, rel=0.05)


def test_single_request_decode_runs_near_the_published_bandwidth_share():
    # One request's step reads the weights once: the sweep reports 77% of the HBM ceiling.
    cost = calibrate(LLAMA_3_1_8B, GPU)
    share = LLAMA_3_1_8B.weight_bytes / cost.decode_time(1, 1088) / GPU.hbm_bytes_per_s
    assert share == pytest.approx(SINGLE_REQUEST_BANDWIDTH_SHARE, rel=0.05)


def test_batching_gains_throughput_and_prefill_grows_with_length():
    # Throughput grows with the batch; per-token latency grows too (the published knee).
    steps = [COST.decode_time(b, b * 1100) for b in (1, 8, 64)]
    assert steps[0] < steps[1] < steps[2]
    assert 1 / steps[0] < 8 / steps[1] < 64 / steps[2]
    assert COST.prefill_time(4096, 4096 ** 2) > 3 * COST.prefill_time(1024, 1024 ** 2)


def test_default_instance_is_llama2_7b_on_a100_40gb():
    assert MODEL.kv_bytes_per_token == 512 * 1024
    assert INSTANCE.total_blocks == kv_blocks(MODEL, GPU)
    # 90% of 40 GiB less 12.6 GiB of weights and 2 GiB of activations: about 44k tokens.
    assert 40_000 < INSTANCE.total_blocks * INSTANCE.block_tokens < 48_000

"""The hardware and model of one serving instance, and the iteration cost model.

One instance is vLLM serving Llama-2-7B (FP16, the LLaMA-7B of the Llumnix paper) on one
NVIDIA A100-40GB. The constants are calibrated on published vLLM measurements of
Llama-3.1-8B on that GPU and carried over to Llama-2-7B's shapes (weight bytes, KV bytes per
token, FLOPs). An iteration either
prefills a batch of prompts or decodes one token for every running request (vLLM's default
scheduler without chunked prefill):

    prefill:  t = a + b * prefill_tokens + b2 * sum(prompt_len ** 2)
    decode:   t = a + c * batch + d * context_tokens_in_batch

Where each constant comes from (see README "Cost model"):
- a: one decode step reads every weight once; the published vLLM sweep on an A100-40GB
  (Llama-3.1-8B-Instruct, vLLM 0.23) measures about 75 tokens/s for one request, "about 77% of
  the memory-bandwidth ceiling": weight bytes / (1555 GB/s * 0.77).
- d: attention reads each cached token's K and V once per step: KV bytes per token over the
  same effective bandwidth.
- c: per-sequence cost of a decode step (sampling, scheduling, small kernels), fitted to the
  same sweep's second point: batching 8 requests gives 6.6x the throughput of one.
- b, b2: prefill is compute-bound: 2 * parameters FLOPs per token, plus 2 * layers * d_model
  FLOPs per (query, key) pair of causal attention, at 50% of the A100's 312 TFLOPS BF16 peak.
  This is the one figure derived from the FLOP count and an assumed utilisation rather than a
  published vLLM measurement.
"""

from __future__ import annotations

from dataclasses import dataclass

GIB = 2 ** 30


@dataclass(frozen=True)
class ModelSpec:
    name: str = "Llama-2-7B (FP16)"
    parameters: float = 6.74e9
    layers: int = 32
    d_model: int = 4096
    kv_heads: int = 32              # multi-head attention: 512 KiB of KV per token
    head_dim: int = 128
    bytes_per_value: int = 2
    context_tokens: int = 4096      # max_model_len: prompt + output are clipped to this

    @property
    def weight_bytes(self) -> float:
        return self.parameters * self.bytes_per_value

    @property
    def kv_bytes_per_token(self) -> int:
        return 2 * self.layers * self.kv_heads * self.head_dim * self.bytes_per_value


@dataclass(frozen=True)
class GpuSpec:
    name: str = "NVIDIA A100-40GB SXM"
    memory_gib: float = 40.0
    hbm_bytes_per_s: float = 1555e9      # datasheet
    bandwidth_efficiency: float = 0.77   # the published sweep's single-request figure
    peak_flops: float = 312e12           # BF16 dense, datasheet
    prefill_mfu: float = 0.5             # assumed (see module docstring)


@dataclass(frozen=True)
class CostModel:
    a: float    # s per iteration
    b: float    # s per prefill token
    b2: float   # s per squared prompt token (causal attention in prefill)
    c: float    # s per sequence in a decode step
    d: float    # s per cached token read in a decode step

    def prefill_time(self, tokens: int, squares: int) -> float:
        return self.a + self.b * tokens + self.b2 * squares

    def decode_time(self, batch: int, context_tokens: int) -> float:
        return self.a + self.c * batch + self.d * context_tokens

    def scaled(self, factor: float) -> CostModel:
        """Every term divided by `factor`: a GPU `factor` times as fast (the pooled bound)."""
        return CostModel(self.a / factor, self.b / factor, self.b2 / factor, self.c / factor,
                         self.d / factor)


@dataclass(frozen=True)
class InstanceSpec:
    total_blocks: int
    block_tokens: int = 16
    max_num_seqs: int = 256             # vLLM default
    max_batched_tokens: int = 4096      # vLLM v0 default: max(max_model_len, 2048)
    watermark_blocks: int = 27          # vLLM's 1% admission watermark


# Published points the model is calibrated to (README, "Cost model"): (batch, prompt tokens,
# output tokens, output tokens/s of the whole batch).
PUBLISHED_SWEEP = ((1, 1024, 128, 75.0), (8, 1024, 128, 6.6 * 75.0))
SINGLE_REQUEST_BANDWIDTH_SHARE = 0.77


def kv_blocks(model: ModelSpec, gpu: GpuSpec, block_tokens: int = 16,
              memory_utilization: float = 0.9, activation_gib: float = 2.0) -> int:
    """KV blocks vLLM would allocate: 90% of GPU memory, less weights and activations."""
    free = gpu.memory_gib * GIB * memory_utilization - model.weight_bytes - activation_gib * GIB
    return int(free // (model.kv_bytes_per_token * block_tokens))


# The model the published sweep measured (grouped-query attention: 128 KiB of KV per token).
LLAMA_3_1_8B = ModelSpec(name="Llama-3.1-8B (BF16)", parameters=8.03e9, kv_heads=8,
                         context_tokens=8192)


def calibrate(model: ModelSpec, gpu: GpuSpec, measured: ModelSpec = LLAMA_3_1_8B) -> CostModel:
    """Constants for `model` on `gpu`; c is fitted on the sweep of `measured`."""
    effective_bw = gpu.hbm_bytes_per_s * gpu.bandwidth_efficiency
    a = model.weight_bytes / effective_bw
    d = model.kv_bytes_per_token / effective_bw
    # c from the batch-8 point: 8 sequences, each with its prompt plus half its output cached.
    batch, prompt, output, tokens_per_s = PUBLISHED_SWEEP[1]
    step = batch / tokens_per_s
    context = batch * (prompt + output // 2)
    c = (step - measured.weight_bytes / effective_bw
         - measured.kv_bytes_per_token / effective_bw * context) / batch
    flops = gpu.peak_flops * gpu.prefill_mfu
    b = 2 * model.parameters / flops
    b2 = 2 * model.layers * model.d_model / flops
    return CostModel(a=a, b=b, b2=b2, c=c, d=d)


MODEL = ModelSpec()
GPU = GpuSpec()
COST = calibrate(MODEL, GPU)
INSTANCE = InstanceSpec(total_blocks=kv_blocks(MODEL, GPU))
# Llumnix's live migration copies KV blocks between instances; 100 Gbit/s between GPU servers,
# plus a fixed handshake per stage (a 1,000-token request: 512 MiB, about 43 ms).
MIGRATION_BYTES_PER_S = 12.5e9
MIGRATION_STAGE_OVERHEAD_S = 0.001

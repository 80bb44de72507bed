"""A real MoE layer (SwiGLU experts) run under a placement, rank by rank, with timed kernels.

Tokens are routed top-k so that each expert receives the number of tokens the scoring window
says it gets; each (token, expert) choice goes to one of the expert's replicas (taken in turn,
so tokens split evenly over replicas, as vLLM does); the choices are grouped by the GPU rank that
holds the slot; each rank then runs its experts' GEMMs as one grouped GEMM
(`torch.nn.functional.grouped_mm`, or `torch._grouped_mm` in older torch; one matmul per expert
where neither runs) and is timed on its own: CUDA events on a GPU, the calling thread's CPU time
on the CPU (torch runs on one thread there). The step time of an expert-parallel layer is that of
its slowest rank; the reference is the same tokens split evenly over the ranks.

All ranks run one after another on the one device here, each with the whole device: the timing
measures each rank's own work, which is what decides the slowest rank in a real deployment.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

# The calling thread's CPU time, bound when the evaluator imports this module (before any
# candidate). Not the process's: inside the sandbox RLIMIT_CPU arms a process-wide CPU timer, and
# the kernel then reports process CPU time in scheduler ticks (4 ms), longer than a rank's work.
thread_cpu_clock = time.thread_time


@dataclass(frozen=True)
class KernelDims:
    hidden: int
    intermediate: int
    tokens: int           # tokens in one step (over all ranks)
    top_k: int
    dtype: torch.dtype
    device: str
    weight_pool: int      # distinct expert weight sets; slots share them by expert id modulo
    repeats: int          # timed runs per rank (the fastest is kept), after one warm-up run
    layers: int           # MoE layers of the workload that the kernel stage runs


# CPU: small enough that the whole stage stays well under 30 s on one thread.
CPU_DIMS = KernelDims(hidden=256, intermediate=128, tokens=4096, top_k=8, dtype=torch.float32,
                      device="cpu", weight_pool=16, repeats=3, layers=4)
# GPU: DeepSeek-V3 expert dimensions (hidden 7168, expert intermediate 2048, top-8) in bf16.
GPU_DIMS = KernelDims(hidden=7168, intermediate=2048, tokens=8192, top_k=8, dtype=torch.bfloat16,
                      device="cuda", weight_pool=32, repeats=5, layers=8)


def default_dims() -> KernelDims:
    return GPU_DIMS if torch.cuda.is_available() else CPU_DIMS


def expert_token_counts(load: np.ndarray, tokens: int, top_k: int) -> np.ndarray:
    """Split tokens*top_k choices over experts in proportion to `load` (largest remainder),
    with no expert chosen by more than `tokens` tokens (a token picks distinct experts)."""
    total = tokens * top_k
    if load.sum() <= 0:
        share = np.full(load.shape, 1.0 / load.size)
    else:
        share = load / load.sum()
    counts = np.zeros(load.size, dtype=np.int64)
    remaining, free = total, np.ones(load.size, dtype=bool)
    while remaining > 0:
        want = share * free
        if want.sum() <= 0:              # only zero-load experts have room left
            want = free.astype(np.float64)
        want = want / want.sum() * remaining
        part = np.floor(want).astype(np.int64)
        leftover = remaining - part.sum()
        part[np.argsort(-(want - part), kind="stable")[:leftover]] += 1
        counts += part
        over = counts > tokens
        remaining = int((counts[over] - tokens).sum())
        counts[over] = tokens
        free &= counts < tokens
    return counts


def route_tokens(load: np.ndarray, tokens: int, top_k: int, seed: int) -> torch.Tensor:
    """[tokens, top_k] distinct expert ids per token whose per-expert totals follow `load`."""
    counts = expert_token_counts(load, tokens, top_k)
    choices = np.repeat(np.arange(load.size), counts)
    # Choice j goes to token j % tokens: an expert's (<= tokens) choices land on distinct tokens.
    topk = choices.reshape(top_k, tokens).T
    order = np.random.Generator(np.random.PCG64(seed)).permutation(tokens)
    return torch.from_numpy(np.ascontiguousarray(topk[order]))


def slots_for_choices(topk: torch.Tensor, phy2log_row: torch.Tensor) -> torch.Tensor:
    """The physical slot serving each (token, expert) choice: replicas taken in turn."""
    num_experts = int(topk.max()) + 1 if topk.numel() else 0
    num_experts = max(num_experts, int(phy2log_row.max()) + 1)
    flat = topk.reshape(-1)
    slot_order = torch.argsort(phy2log_row, stable=True)            # slots grouped by expert
    replicas = torch.bincount(phy2log_row, minlength=num_experts)
    first_slot = torch.cumsum(replicas, 0) - replicas
    choice_order = torch.argsort(flat, stable=True)
    per_expert = torch.bincount(flat, minlength=num_experts)
    start = torch.cumsum(per_expert, 0) - per_expert
    occurrence = torch.empty_like(flat)
    occurrence[choice_order] = torch.arange(flat.numel()) - start[flat[choice_order]]
    replica = occurrence % replicas[flat]
    return slot_order[first_slot[flat] + replica].view_as(topk)


@dataclass
class RankBatch:
    """What one rank receives: token rows grouped by its local slot."""
    token_index: torch.Tensor     # [rows] which token each row is
    choice_index: torch.Tensor    # [rows] flat (token * top_k + k) index of each row
    slot_rows: list[int]          # rows per local slot
    pool_index: list[int]         # weight set of each local slot


class MoELayer:
    """SwiGLU experts: y = (silu(x W_gate) * (x W_up)) W_down, weights in a shared pool."""

    def __init__(self, dims: KernelDims, seed: int = 0, column_major: bool | None = None):
        self.dims = dims
        # On CUDA the grouped GEMM's fast kernels want the right operand column-major, the layout
        # MoE code gets from [experts, out, in] weights; on the CPU row-major runs faster.
        self.column_major = (dims.device.startswith("cuda") if column_major is None
                             else column_major)
        # Drawn on the device itself: at DeepSeek-V3 sizes a host copy would need gigabytes.
        gen = torch.Generator(device=dims.device).manual_seed(seed)
        h, i, p = dims.hidden, dims.intermediate, dims.weight_pool
        self._gate_up = self._draw(p, h, 2 * i, gen)
        self._down = self._draw(p, i, h, gen)
        self.grouped = _GROUPED_MM is not None and _grouped_mm_works(dims, self.column_major)

    def _draw(self, groups: int, k: int, n: int, gen: torch.Generator) -> torch.Tensor:
        shape = (groups, n, k) if self.column_major else (groups, k, n)
        w = torch.randn(shape, generator=gen, device=self.dims.device) / k ** 0.5
        return w.to(self.dims.dtype)

    def _operand(self, stored: torch.Tensor) -> torch.Tensor:
        """[groups, k, n] view of stored weights."""
        return stored.transpose(-2, -1) if self.column_major else stored

    @property
    def w_gate_up(self) -> torch.Tensor:
        return self._operand(self._gate_up)

    @property
    def w_down(self) -> torch.Tensor:
        return self._operand(self._down)

    @property
    def backend(self) -> str:
        if not self.grouped:
            return "one matmul per expert"
        return f"{_GROUPED_MM_NAME}{' (column-major weights)' if self.column_major else ''}"

    def rank_weights(self, batch: RankBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """The rank's own copy of its slots' weights, as resident on that GPU."""
        index = torch.tensor(batch.pool_index, device=self.dims.device)
        return (self._operand(self._gate_up[index].contiguous()),
                self._operand(self._down[index].contiguous()))

    def expert_compute(self, x: torch.Tensor, slot_rows: list[int], w_gate_up: torch.Tensor,
                       w_down: torch.Tensor, offs: torch.Tensor | None = None) -> torch.Tensor:
        """The rank's expert work: grouped GEMM up, SwiGLU, grouped GEMM down. `offs` (the
        end row of each slot, int32 on the device) may be prepared outside the timed region."""
        inter = self.dims.intermediate
        if self.grouped:
            assert _GROUPED_MM is not None
            if offs is None:
                offs = group_offsets(slot_rows, x.device)
            h = _GROUPED_MM(x, w_gate_up, offs=offs)
            return _GROUPED_MM(F.silu(h[:, :inter]) * h[:, inter:], w_down, offs=offs)
        outputs, start = [], 0
        for slot, rows in enumerate(slot_rows):
            h = x[start:start + rows] @ w_gate_up[slot]
            outputs.append((F.silu(h[:, :inter]) * h[:, inter:]) @ w_down[slot])
            start += rows
        return torch.cat(outputs) if outputs else x.new_zeros(0, x.shape[1])


def group_offsets(slot_rows: list[int], device: torch.device | str) -> torch.Tensor:
    return torch.tensor(np.cumsum(slot_rows), dtype=torch.int32, device=device)


# The public grouped GEMM where this torch has it, else the private op it wraps.
if hasattr(F, "grouped_mm"):
    _GROUPED_MM, _GROUPED_MM_NAME = F.grouped_mm, "torch.nn.functional.grouped_mm"
elif hasattr(torch, "_grouped_mm"):
    _GROUPED_MM, _GROUPED_MM_NAME = torch._grouped_mm, "torch._grouped_mm"
else:
    _GROUPED_MM, _GROUPED_MM_NAME = None, ""


def _grouped_mm_works(dims: KernelDims, column_major: bool) -> bool:
    """Whether the grouped GEMM runs, and right, for this device, dtype and weight layout."""
    if _GROUPED_MM is None:
        return False
    try:
        a = torch.randn(32, 64, device=dims.device).to(dims.dtype)
        b = torch.randn(2, 64, 32, device=dims.device).to(dims.dtype)
        if column_major:
            b = b.transpose(-2, -1).contiguous().transpose(-2, -1)
        offs = torch.tensor([16, 32], dtype=torch.int32, device=dims.device)
        expected = torch.cat([a[:16] @ b[0], a[16:] @ b[1]]).float()
        got = _GROUPED_MM(a, b, offs=offs).float()
        return bool(torch.allclose(got, expected, rtol=2e-2, atol=2e-1))
    except (RuntimeError, NotImplementedError, TypeError, ValueError):
        return False


def group_by_rank(slot_of: torch.Tensor, phy2log_row: torch.Tensor, slots_per_gpu: int,
                  num_gpus: int, pool: int) -> list[RankBatch]:
    flat = slot_of.reshape(-1)
    top_k = slot_of.shape[1]
    order = torch.argsort(flat, stable=True)
    rows_per_slot = torch.bincount(flat, minlength=num_gpus * slots_per_gpu).tolist()
    batches, start = [], 0
    experts = phy2log_row.tolist()
    for rank in range(num_gpus):
        local = range(rank * slots_per_gpu, (rank + 1) * slots_per_gpu)
        slot_rows = [rows_per_slot[s] for s in local]
        rows = sum(slot_rows)
        picked = order[start:start + rows]
        start += rows
        batches.append(RankBatch(token_index=picked // top_k, choice_index=picked,
                                 slot_rows=slot_rows, pool_index=[experts[s] % pool for s in local]))
    return batches


def even_batches(total_choices: int, tokens: int, phy2log_row: torch.Tensor, slots_per_gpu: int,
                 num_gpus: int, pool: int) -> list[RankBatch]:
    """The same number of choices split evenly over ranks and over each rank's slots."""
    experts = phy2log_row.tolist()
    batches = []
    for rank in range(num_gpus):
        rows = total_choices // num_gpus + (rank < total_choices % num_gpus)
        slot_rows = [rows // slots_per_gpu + (s < rows % slots_per_gpu) for s in range(slots_per_gpu)]
        index = torch.arange(rows) % tokens
        local = range(rank * slots_per_gpu, (rank + 1) * slots_per_gpu)
        batches.append(RankBatch(token_index=index, choice_index=index, slot_rows=slot_rows,
                                 pool_index=[experts[s] % pool for s in local]))
    return batches


def _timer(device: str) -> Callable[[Callable[[], object]], float]:
    if device.startswith("cuda"):
        def cuda_time(work: Callable[[], object]) -> float:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            work()
            end.record()
            end.synchronize()
            return start.elapsed_time(end) / 1e3
        return cuda_time

    # CPU seconds of this thread, not wall time: with torch on one thread the kernels run in
    # this thread, and on a shared machine a preempted rank's wall time would measure the
    # neighbours rather than its own work.
    def cpu_time(work: Callable[[], object]) -> float:
        begin = thread_cpu_clock()
        work()
        return thread_cpu_clock() - begin
    return cpu_time


def time_ranks(layer: MoELayer, x: torch.Tensor, *plans: list[RankBatch]) -> list[list[float]]:
    """Seconds of each rank's expert compute under each plan: the fastest of `repeats` runs,
    which is the least disturbed by other processes (inputs and weights are prepared untimed).
    Rank r of every plan is measured in alternation, so changing machine load hits them alike."""
    timer = _timer(layer.dims.device)
    seconds: list[list[float]] = [[] for _ in plans]
    for rank in range(len(plans[0])):
        work = []
        for plan in plans:
            batch = plan[rank]
            if not batch.token_index.numel():
                work.append(None)
                continue
            xr = x[batch.token_index.to(x.device)].contiguous()
            w1, w2 = layer.rank_weights(batch)
            offs = group_offsets(batch.slot_rows, x.device)
            work.append(lambda xr=xr, w1=w1, w2=w2, rows=batch.slot_rows, offs=offs:
                        layer.expert_compute(xr, rows, w1, w2, offs))
        samples: list[list[float]] = [[] for _ in plans]
        for item in work:
            if item is None:
                continue
            try:
                item()                                   # warm-up
            except RuntimeError:
                # The grouped GEMM passed its probe but refuses these shapes (its constraints
                # differ between torch builds and devices): fall back to one matmul per expert.
                if not layer.grouped:
                    raise
                layer.grouped = False
                item()
        for _ in range(layer.dims.repeats):
            for i, item in enumerate(work):
                samples[i].append(timer(item) if item is not None else 0.0)
        for i in range(len(plans)):
            seconds[i].append(min(samples[i]))
        del work
    return seconds


def moe_forward(layer: MoELayer, x: torch.Tensor, slot_of: torch.Tensor, gates: torch.Tensor,
                phy2log_row: torch.Tensor, slots_per_gpu: int, num_gpus: int) -> torch.Tensor:
    """The layer's output under the placement: every rank computes, results are combined."""
    out = torch.zeros(x.shape, dtype=torch.float32, device=x.device)
    flat_gates = gates.reshape(-1).to(x.device, torch.float32)
    for batch in group_by_rank(slot_of, phy2log_row, slots_per_gpu, num_gpus,
                               layer.dims.weight_pool):
        if not batch.token_index.numel():
            continue
        token = batch.token_index.to(x.device)
        y = layer.expert_compute(x[token].contiguous(), batch.slot_rows, *layer.rank_weights(batch))
        out.index_add_(0, token, y.float() * flat_gates[batch.choice_index.to(x.device)][:, None])
    return out


def kernel_step(layer: MoELayer, load: np.ndarray, phy2log_row: torch.Tensor, slots_per_gpu: int,
                num_gpus: int, seed: int) -> dict[str, float]:
    """Time one MoE layer step under the placement and under an even split of the same tokens."""
    dims = layer.dims
    topk = route_tokens(load, dims.tokens, dims.top_k, seed)
    slot_of = slots_for_choices(topk, phy2log_row)
    gen = torch.Generator(device=dims.device).manual_seed(seed)
    x = torch.randn(dims.tokens, dims.hidden, generator=gen, device=dims.device).to(dims.dtype)
    placed = group_by_rank(slot_of, phy2log_row, slots_per_gpu, num_gpus, dims.weight_pool)
    even = even_batches(topk.numel(), dims.tokens, phy2log_row, slots_per_gpu, num_gpus,
                        dims.weight_pool)
    placed_s, even_s = time_ranks(layer, x, placed, even)
    rows = [int(b.token_index.numel()) for b in placed]
    # Every rank of the even split does the same work, so its step time is best estimated by the
    # median rank. The placement's step time is its slowest rank, each rank's time calibrated
    # by the even-split run measured alongside it: on a shared machine the speed of the device
    # drifts by tens of percent over a second, and the pair sees the same drift.
    reference = float(np.median(even_s))
    calibrated = [p * reference / e if e > 0 else p for p, e in zip(placed_s, even_s, strict=True)]
    return {"step_s": max(calibrated), "even_s": reference, "step_raw_s": max(placed_s),
            "max_rank_rows": max(rows), "mean_rank_rows": float(np.mean(rows))}

"""Train the MoE language model with a candidate's balancing objective and measure the result.

`train(loss_fn, config, seed)` runs each optimizer step's `num_micro` single-domain
micro-batches through the model in one forward pass (expert capacity is shared by the global
batch), calls `loss_fn(RoutingContext)` once per MoE layer per micro-batch, and then measures
validation cross-entropy, expert balance and specialisation on fixed held-out text with its own
code. Deterministic on the CPU for a given seed and config.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import torch
import torch.nn.functional as F

from problems.moe_lbl.boundary import (
    InProcess,
    ReplyError,
    StepShape,
    check_reply,
    inject,
    step_message,
)
from problems.moe_lbl.data import TrainBatches, load_corpus, validation_batches
from problems.moe_lbl.interface import CandidateOutputError, RoutingContext
from problems.moe_lbl.metrics import (
    imbalance_l1,
    max_over_mean,
    max_vio,
    mutual_information_bits,
)
from problems.moe_lbl.model import ModelConfig, MoETransformer, expert_counts

LossFn = Callable[[RoutingContext], Any]


@dataclass(frozen=True)
class TrainConfig:
    model: ModelConfig = ModelConfig()
    steps: int = 150
    num_micro: int = 4              # micro-batches per optimizer step (gradient accumulation)
    micro_batch: int = 8            # sequences per micro-batch
    lr: float = 3e-3
    warmup: int = 10
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    val_windows: int = 32           # validation sequences per domain
    threads: int = 1


CONFIGS: dict[str, TrainConfig] = {
    # One full evaluation in under 90 s of CPU (one thread); see README "Time of one evaluation".
    "cpu": TrainConfig(),
    # Used when a GPU is present: a larger model trained longer (not measured in this project yet).
    "gpu": TrainConfig(model=ModelConfig(d_model=256, n_heads=8, n_layers=4, num_experts=16,
                                         top_k=2, expert_hidden=512, seq_len=256),
                       steps=1500, num_micro=4, micro_batch=32, lr=1.5e-3, warmup=100,
                       val_windows=64),
    # For unit tests: seconds, not minutes.
    "tiny": TrainConfig(model=ModelConfig(d_model=32, n_heads=2, n_layers=2, num_experts=4,
                                          top_k=2, expert_hidden=32, seq_len=32),
                        steps=6, num_micro=4, micro_batch=4, val_windows=8),
}


class CandidateFailure(RuntimeError):
    """The candidate raised, or returned something invalid; the message is feedback for it."""


@dataclass
class TrainResult:
    metrics: dict[str, float]
    load_history: list[list[list[int]]]   # step -> layer -> expert assignment counts
    routing_bias: list[list[float]]       # final bias per layer
    notes: list[str] = field(default_factory=list)


def set_determinism(seed: int, threads: int, device: str) -> None:
    if device == "cuda":
        # cuBLAS needs a fixed workspace to be deterministic; must be set before CUDA starts.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=(device == "cuda"))
    torch.set_num_threads(threads)


def pick_config(name: str | None = None) -> tuple[TrainConfig, str]:
    """The named config, else 'gpu' when CUDA is present, else 'cpu'; and the device."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if name is None:
        name = "gpu" if device == "cuda" else "cpu"
    return CONFIGS[name], device


def _lr_at(step: int, cfg: TrainConfig) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    progress = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def _bincount(indices: torch.Tensor, num_experts: int) -> torch.Tensor:
    """Float assignment counts on the indices' own device: no host sync per layer on a GPU."""
    return expert_counts(indices, num_experts).float()


def _micro_slices(micro: int, config: TrainConfig) -> tuple[slice, slice]:
    """Micro-batch `micro`'s sequences in a global batch's tokens, and its rows in the
    flattened (tokens, experts) routing of the global batch's forward pass."""
    per_row = config.micro_batch * config.model.seq_len
    return (slice(micro * config.micro_batch, (micro + 1) * config.micro_batch),
            slice(micro * per_row, (micro + 1) * per_row))


class StepLoss(Protocol):
    """The candidate's balancing loss seen from the trainer: one message per optimizer step
    (`boundary.step_message`), one reply (`boundary.check_reply` checks it); `seconds` is the
    time the candidate spent so far. `boundary.InProcess` wraps a Python function; the judge
    wraps its candidate process (`evaluate.RemoteLoss`)."""

    seconds: float

    def step(self, message: dict[str, Any]) -> Any: ...


def train(loss: LossFn | StepLoss, config: TrainConfig, seed: int, *, device: str = "cpu",
          clock: Callable[[], float] = time.perf_counter,
          progress: Callable[[int, float], None] | None = None) -> TrainResult:
    """Train with `loss` as the balancing objective; raise CandidateFailure on a bad candidate.

    The trainer keeps the model, the data, the optimizer and every step: each step it sends the
    routing statistics of the global batch, receives the candidate's loss values, bias updates
    and gradients with respect to those statistics, checks them and applies the gradient
    itself. A plain function is called in this process through the same messages."""
    runner: StepLoss = loss if hasattr(loss, "step") else InProcess(loss, clock)  # type: ignore[arg-type]
    set_determinism(seed, config.threads, device)
    mcfg = config.model
    corpus = load_corpus()
    model = MoETransformer(mcfg).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr,
                                  weight_decay=config.weight_decay, betas=(0.9, 0.95))
    batches = TrainBatches(corpus, mcfg.seq_len, config.micro_batch, config.num_micro, seed)
    E, L, M = mcfg.num_experts, mcfg.n_layers, config.num_micro
    micro_tokens = config.micro_batch * mcfg.seq_len
    shape = StepShape(layers=L, micro=M, tokens=micro_tokens, experts=E, top_k=mcfg.top_k)
    load_history: list[list[list[int]]] = []
    prev_counts = torch.zeros(L, E, device=device)
    lm_losses: list[float] = []
    no_grad_loss = True
    dropped = torch.zeros((), dtype=torch.long, device=device)
    seconds_before = runner.seconds
    start = clock()
    for step in range(config.steps):
        for group in optimizer.param_groups:
            group["lr"] = _lr_at(step, config)
        # The global batch's micro-batches go through the model in one forward pass, as the
        # data-parallel ranks of an expert-parallel group dispatch their tokens to the experts
        # together: expert capacity is shared by the whole global batch. Losses and the
        # candidate's calls stay per micro-batch, in micro-batch order.
        tokens = torch.cat([batches.next(step, micro)[0] for micro in range(M)])
        tokens = tokens.to(device)
        logits, routings = model(tokens[:, :-1])
        for routing in routings:
            dropped += (~routing.kept).sum()
        # Counts per (layer, micro-batch); the global batch's so far is their running sum.
        counts = torch.stack([torch.stack([_bincount(routing.topk_indices[_micro_slices(
            micro, config)[1]], E) for micro in range(M)]) for routing in routings])
        global_counts = counts.cumsum(dim=1)
        message = step_message(
            step=step, total_steps=config.steps, shape=shape,
            logits=torch.stack([r.logits.detach() for r in routings]).view(L, M, micro_tokens, E),
            probs=torch.stack([r.probs.detach() for r in routings]).view(L, M, micro_tokens, E),
            topk=torch.stack([r.topk_indices for r in routings]).view(
                L, M, micro_tokens, mcfg.top_k),
            micro_counts=counts, global_counts=global_counts, prev_global_counts=prev_counts,
            routing_bias=torch.stack([moe.routing_bias for moe in model.moe_layers]))
        try:
            reply = check_reply(runner.step(message), shape)
        except (CandidateOutputError, ReplyError) as exc:
            raise CandidateFailure(str(exc) if isinstance(exc, CandidateOutputError)
                                   else f"step {step}: {exc}") from exc
        micro_lm, total = [], torch.zeros((), device=device)
        for micro in range(M):
            seqs, _ = _micro_slices(micro, config)
            lm_loss = F.cross_entropy(logits[seqs].reshape(-1, mcfg.vocab),
                                      tokens[seqs, 1:].reshape(-1))
            aux = sum(reply.losses[micro * L: (micro + 1) * L])
            total = total + (lm_loss + aux) / M
            micro_lm.append(lm_loss.detach())
        if reply.grad_logits is not None or reply.grad_probs is not None:
            no_grad_loss = False
            for layer, routing in enumerate(routings):
                # The gradients already carry the 1/num_micro the losses get in `total`.
                grads = [None if g is None else g[layer].reshape(-1, E)
                         for g in (reply.grad_logits, reply.grad_probs)]
                total = total + inject(0.0, routing.logits, routing.probs, *grads)
        try:
            total.backward()
        except RuntimeError as exc:
            raise CandidateFailure(f"step {step}: backward through the balancing loss "
                                   f"failed: {exc}") from exc
        # One host sync per step for the losses, summed in the same order as before.
        step_lm = 0.0
        for value in torch.stack(micro_lm).tolist():
            step_lm += value / M
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        if not math.isfinite(float(grad_norm)):
            raise CandidateFailure(f"step {step}: the gradient is not finite "
                                   f"(norm {float(grad_norm)}); keep the loss smooth and bounded")
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if reply.bias is not None:
            with torch.no_grad():
                bias = reply.bias.to(device)
                for layer, moe in enumerate(model.moe_layers):
                    delta = torch.zeros(E, device=device)
                    for micro in range(M):  # summed in call order, as the updates came
                        delta += bias[layer, micro]
                    moe.routing_bias += delta
        prev_counts = global_counts[:, -1]
        load_history.append(prev_counts.long().tolist())
        lm_losses.append(step_lm)
        if progress is not None:
            progress(step, step_lm)
    candidate_s = runner.seconds - seconds_before
    train_s = clock() - start
    metrics = evaluate_model(model, config, device)
    tail = max(1, config.steps // 4)
    history = torch.tensor(load_history, dtype=torch.float64)
    metrics.update({
        "train_ce_final": sum(lm_losses[-tail:]) / tail,
        "train_imbalance_l1": float(imbalance_l1(history[-tail:]).mean()),
        # Wang et al. (2024): MaxVio_batch over every training global batch, mean over layers.
        "max_vio_batch_train": float(max_vio(history).mean()),
        # Share of token-to-expert assignments dropped for want of expert capacity in training.
        "train_drop_fraction": float(dropped) / float(history.sum()),
        "candidate_seconds": candidate_s,
        "train_seconds": train_s,
        "steps": float(config.steps),
    })
    notes = []
    if no_grad_loss:
        notes.append("the loss never carried gradient: only routing-bias updates acted")
    bias = [moe.routing_bias.detach().cpu().tolist() for moe in model.moe_layers]
    return TrainResult(metrics, load_history, bias, notes)


@torch.no_grad()
def evaluate_model(model: MoETransformer, config: TrainConfig, device: str) -> dict[str, float]:
    """Validation CE, global- and micro-batch imbalance, and domain/expert mutual information."""
    model.eval()
    mcfg = config.model
    corpus = load_corpus()
    val = validation_batches(corpus, mcfg.seq_len, config.micro_batch, config.val_windows)
    E, L, D = mcfg.num_experts, mcfg.n_layers, len(corpus.domains)
    ce_sum = torch.zeros(D, dtype=torch.float64)
    ce_tokens = torch.zeros(D, dtype=torch.float64)
    joint = torch.zeros(L, D, E, dtype=torch.float64)
    global_loads, micro_loads = [], []
    dropped = total = 0
    for global_batch in val:
        # One forward pass per validation global batch (one micro-batch per domain), as in
        # training: expert capacity is shared by the mixed batch.
        tokens = torch.cat([micro for micro, _ in global_batch]).to(device)
        logits, routings = model(tokens[:, :-1])
        batch_counts = torch.zeros(L, E)
        for routing in routings:
            dropped += int((~routing.kept).sum())
            total += routing.kept.numel()
        for micro, (_, domain) in enumerate(global_batch):
            seqs, rows = _micro_slices(micro, config)
            ce = F.cross_entropy(logits[seqs].reshape(-1, mcfg.vocab).float(),
                                 tokens[seqs, 1:].reshape(-1), reduction="sum")
            ce_sum[domain] += float(ce)
            ce_tokens[domain] += tokens[seqs, 1:].numel()
            for layer, routing in enumerate(routings):
                # statistics stay on the host
                counts = _bincount(routing.topk_indices[rows], E).cpu()
                batch_counts[layer] += counts
                micro_loads.append(counts)
                joint[layer, domain] += counts.double()
        global_loads.append(batch_counts)
    model.train()
    per_domain = ce_sum / ce_tokens
    g = torch.stack(global_loads)
    metrics = {
        "val_ce": float(per_domain.mean()),
        "imbalance_l1": float(imbalance_l1(g).mean()),
        "max_over_mean": float(max_over_mean(g).mean()),
        # Wang et al. (2024): MaxVio = max load / mean load - 1, on the whole validation set
        # (global) and per validation global batch (batch); means over layers.
        "max_vio_global": float(max_vio(g.sum(dim=0)).mean()),
        "max_vio_batch": float(max_vio(g).mean()),
        "micro_imbalance_l1": float(imbalance_l1(torch.stack(micro_loads)).mean()),
        "specialisation_mi_bits": sum(mutual_information_bits(joint[i]) for i in range(L)) / L,
        # Share of token-to-expert assignments dropped for want of expert capacity.
        "drop_fraction": dropped / total,
    }
    for d, name in enumerate(corpus.domains):
        metrics[f"val_ce_{name}"] = float(per_domain[d])
    return metrics


def quick_config(config: TrainConfig, steps: int = 3) -> TrainConfig:
    """A few optimizer steps of the same model: enough to check outputs, not to learn."""
    return replace(config, steps=steps, warmup=1, val_windows=config.micro_batch)

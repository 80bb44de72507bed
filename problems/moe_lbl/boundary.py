"""The one place where the judge's training loop meets the candidate's `balancing_loss`.

Each optimizer step the judge sends one message: the routing statistics of every (micro-batch,
MoE layer) pair of the global batch, as arrays (`step_message`). In the candidate's process
`LossRunner.step` (made there from this public module, `Built("problems.moe_lbl.boundary:
LossRunner", ...)`) turns them into `RoutingContext`s whose `router_logits` / `router_probs`
are views of two leaf tensors that require grad, calls `balancing_loss` once per pair in the
order the trainer always used (micro-batch, then layer), runs one backward pass over the sum of
the losses divided by num_micro (as the trainer adds them to its objective) and returns plain
data: the loss values, the gradients of that objective with respect to the two leaves, and the
routing-bias updates (`step_reply`). The judge checks every part of the
reply (`check_reply`) and adds the gradient to its own graph (`inject`); nothing of the model,
the optimizer or the text ever reaches the candidate, and nothing it sends is trusted beyond
its values.

This module imports torch and the candidate interface only (the candidate's process imports it
for this problem alone); it never imports the trainer, the model or the data.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from problems.moe_lbl.interface import CandidateOutputError, RoutingContext, check_output

FUNCTION = "balancing_loss"
# Per-context arrays of a step message, shape (layers, micro-batches, ...).
_FLOAT = np.float32


@dataclass(frozen=True)
class StepShape:
    """The sizes a step message and its reply are checked against."""

    layers: int
    micro: int
    tokens: int     # tokens per micro-batch (T)
    experts: int
    top_k: int

    @property
    def stats(self) -> tuple[int, int, int, int]:
        return (self.layers, self.micro, self.tokens, self.experts)

    def reply_bytes(self) -> int:
        """An upper bound on an honest reply's size: two float32 gradients, the bias updates,
        the loss values and the framing."""
        grads = 2 * 4 * self.layers * self.micro * self.tokens * self.experts
        return grads + 4 * self.layers * self.micro * self.experts \
            + 16 * self.layers * self.micro + 4096


def step_message(*, step: int, total_steps: int, shape: StepShape, logits: torch.Tensor,
                 probs: torch.Tensor, topk: torch.Tensor, micro_counts: torch.Tensor,
                 global_counts: torch.Tensor, prev_global_counts: torch.Tensor,
                 routing_bias: torch.Tensor) -> dict[str, Any]:
    """One step's routing statistics as plain data. Tensors are (layers, micro, ...) and may
    live on the GPU: they are stacked there and copied to the host once per step."""
    host = torch.cat([t.detach().reshape(-1).float() for t in
                      (logits, probs, micro_counts, global_counts, prev_global_counts,
                       routing_bias)]).cpu().numpy()
    parts, offset = [], 0
    for t in (logits, probs, micro_counts, global_counts, prev_global_counts, routing_bias):
        parts.append(host[offset: offset + t.numel()].reshape(tuple(t.shape)))
        offset += t.numel()
    # Expert indices fit a byte on every configuration (made small on the device, before the
    # copy); the candidate sees int64 as before.
    index_type = torch.uint8 if shape.experts <= 256 else torch.int32
    return {"step": step, "total_steps": total_steps, "num_layers": shape.layers,
            "num_experts": shape.experts, "top_k": shape.top_k, "num_micro": shape.micro,
            "micro_tokens": shape.tokens, "logits": parts[0], "probs": parts[1],
            "topk": topk.detach().to(index_type).cpu().numpy(),
            "micro_counts": parts[2], "global_counts": parts[3],
            "prev_global_counts": parts[4], "routing_bias": parts[5]}


# --- the candidate's side --------------------------------------------------------------------

def step_reply(loss_fn: Callable[[RoutingContext], Any], message: dict[str, Any]
               ) -> dict[str, Any]:
    """Call `loss_fn` on every context of the step and return the reply. A rule the output
    breaks, or an exception of the loss, is returned as {"failed": reason}; MemoryError and the
    like propagate, so the stage gets their failure kind."""
    step, layers, micro = message["step"], message["num_layers"], message["num_micro"]
    experts = message["num_experts"]
    logits = torch.from_numpy(message["logits"]).requires_grad_(True)
    probs = torch.from_numpy(message["probs"]).requires_grad_(True)
    topk = torch.from_numpy(message["topk"]).long()
    micro_counts = torch.from_numpy(message["micro_counts"])
    global_counts = torch.from_numpy(message["global_counts"])
    prev = torch.from_numpy(message["prev_global_counts"])
    bias_now = torch.from_numpy(message["routing_bias"])
    losses: list[float] = []
    bias = np.zeros((layers, micro, experts), dtype=_FLOAT)
    any_bias = False
    total: torch.Tensor | None = None
    for m in range(micro):
        for layer in range(layers):
            ctx = RoutingContext(
                layer=layer, num_layers=layers, num_experts=experts, top_k=message["top_k"],
                router_logits=logits[layer, m], router_probs=probs[layer, m],
                topk_indices=topk[layer, m].clone(), micro_counts=micro_counts[layer, m].clone(),
                global_counts=global_counts[layer, m].clone(),
                global_tokens=(m + 1) * message["micro_tokens"],
                prev_global_counts=prev[layer].clone(), routing_bias=bias_now[layer].clone(),
                micro_index=m, num_micro=micro, step=step, total_steps=message["total_steps"])
            try:
                loss, delta = check_output(loss_fn(ctx), experts)
            except CandidateOutputError as exc:
                return {"failed": f"step {step}, layer {layer}: {exc}"}
            except (MemoryError, RecursionError):
                raise
            except Exception as exc:  # the candidate's own error is feedback, not a crash
                return {"failed": f"step {step}, layer {layer}: {FUNCTION} raised "
                                  f"{type(exc).__name__}: {exc}"}
            losses.append(float(loss.detach()))
            if loss.requires_grad:
                total = loss if total is None else total + loss
            if delta is not None:
                bias[layer, m] = delta.numpy()
                any_bias = True
    reply: dict[str, Any] = {"losses": losses, "bias": bias if any_bias else None,
                             "grad_logits": None, "grad_probs": None}
    if total is not None:
        # Scaled as the trainer adds the losses to its objective ((CE + aux) / num_micro), and
        # a full backward pass as there: tensors of the candidate's own that require grad get
        # the `.grad` they always got.
        try:
            (total / micro).backward()
        except RuntimeError as exc:
            return {"failed": f"step {step}: backward through the balancing loss failed: {exc}"}
        for key, leaf in (("grad_logits", logits), ("grad_probs", probs)):
            if leaf.grad is not None:
                reply[key] = leaf.grad.detach().to(torch.float32).numpy()
    return reply


class LossRunner:
    """In the candidate's process: the program's `balancing_loss`, one step at a time. Made
    once per training run; the thread count and seed match the judge's, so a loss computes the
    same numbers it computed when it ran inside the trainer."""

    def __init__(self, threads: int, seed: int):
        from evaluators.channel import PROGRAM_MODULE
        from evaluators.harness_api import get_function

        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(True)
        torch.manual_seed(seed)
        self._loss = get_function(sys.modules[PROGRAM_MODULE], FUNCTION)

    def step(self, message: dict[str, Any]) -> dict[str, Any]:
        return step_reply(self._loss, message)


# --- the judge's side ------------------------------------------------------------------------

class ReplyError(ValueError):
    """The reply breaks the step's schema; the message says how (feedback for the program)."""


@dataclass
class StepReply:
    losses: list[float]                 # one per (micro-batch, layer), in call order
    bias: torch.Tensor | None           # (layers, micro, E) float32, zeros where none was sent
    grad_logits: torch.Tensor | None    # (layers, micro, T, E) float32
    grad_probs: torch.Tensor | None


def _array(reply: dict[str, Any], key: str, shape: tuple[int, ...]) -> torch.Tensor | None:
    value = reply.get(key)
    if value is None:
        return None
    if type(value) is not np.ndarray:
        raise ReplyError(f"{key} must be a float array of shape {shape}, got "
                         f"{type(value).__name__}")
    if value.dtype.kind != "f":
        raise ReplyError(f"{key} must be a float array, got dtype {value.dtype}")
    if tuple(value.shape) != shape:
        raise ReplyError(f"{key} must have shape {shape}, got {tuple(value.shape)}")
    out = torch.from_numpy(np.array(value, dtype=_FLOAT, copy=True))
    if not bool(torch.isfinite(out).all()):
        raise ReplyError(f"{key} has non-finite entries; keep the loss smooth and bounded")
    return out


def check_reply(reply: Any, shape: StepShape) -> StepReply:
    """The reply as checked tensors; ReplyError says what breaks the schema (a reason the
    program's feedback shows), `{"failed": reason}` is the candidate's own account of its
    failure (a CandidateOutputError with that reason)."""
    if type(reply) is not dict:
        raise ReplyError(f"the step's reply must be a map, got {type(reply).__name__}")
    failed = reply.get("failed")
    if failed is not None:
        raise CandidateOutputError(str(failed)[:500])
    unknown = set(reply) - {"losses", "bias", "grad_logits", "grad_probs"}
    if unknown:
        raise ReplyError(f"unexpected fields in the step's reply: {sorted(map(str, unknown))}")
    losses = reply.get("losses")
    count = shape.layers * shape.micro
    if type(losses) is not list or len(losses) != count:
        raise ReplyError(f"the reply must carry {count} loss values (one per micro-batch and "
                         f"layer), got {type(losses).__name__}"
                         f"{f' of {len(losses)}' if type(losses) is list else ''}")
    values = []
    for index, value in enumerate(losses):
        if type(value) not in (float, int) or not math.isfinite(value):
            raise ReplyError(f"loss value {index} is not a finite number ({value!r:.40})")
        values.append(float(value))
    return StepReply(
        values, _array(reply, "bias", (shape.layers, shape.micro, shape.experts)),
        _array(reply, "grad_logits", shape.stats), _array(reply, "grad_probs", shape.stats))


class _Injected(torch.autograd.Function):
    """A node whose backward hands the candidate's gradients to the judge's router outputs:
    d(objective)/d(logits) and d(objective)/d(probs) as the candidate's autograd computed them
    (already divided by num_micro), times the gradient that reaches the node (1 when it is
    added to the judge's objective as it is)."""

    @staticmethod
    def forward(ctx: Any, value: torch.Tensor, logits: torch.Tensor, probs: torch.Tensor,
                grad_logits: torch.Tensor | None, grad_probs: torch.Tensor | None
                ) -> torch.Tensor:
        ctx.grads = (grad_logits, grad_probs)
        return value.clone()

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[Any, ...]:
        grad_logits, grad_probs = ctx.grads
        return (None,
                None if grad_logits is None else grad_out * grad_logits,
                None if grad_probs is None else grad_out * grad_probs,
                None, None)


def inject(value: float, logits: torch.Tensor, probs: torch.Tensor,
           grad_logits: torch.Tensor | None, grad_probs: torch.Tensor | None) -> torch.Tensor:
    """A scalar with the candidate's loss `value` whose gradient with respect to the judge's
    `logits` and `probs` (one layer's, the whole global batch) is the one received."""
    device = logits.device
    return _Injected.apply(torch.tensor(value, device=device), logits, probs,
                           None if grad_logits is None else grad_logits.to(device),
                           None if grad_probs is None else grad_probs.to(device))


class InProcess:
    """A Python loss function behind the same messages, in this process (unit tests and
    in-process scripts): the message and the reply still cross as channel data, so the arrays
    the loss sees and the reply the judge checks are the ones a candidate process gets."""

    def __init__(self, loss_fn: Callable[[RoutingContext], Any],
                 clock: Callable[[], float] = time.perf_counter):
        self._loss, self._clock = loss_fn, clock
        self.seconds = 0.0  # time spent in the loss calls and their backward pass

    def step(self, message: dict[str, Any]) -> Any:
        from evaluators import channel

        wire = channel.decode(channel.encode(message), records="attributes")
        start = self._clock()
        try:
            reply = step_reply(self._loss, wire)
        finally:
            self.seconds += self._clock() - start
        return channel.decode(channel.encode(reply))

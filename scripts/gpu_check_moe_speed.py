"""moe_lbl's GPU configuration, timed on a few steps before the full check: run by gpu_check.sh.

Prints the milliseconds per optimizer step (after one warm-up step) and the full stage's
projected training time, so that a full stage that runs out of time still leaves a figure: once
with the loss called in this process through the step messages (`boundary.InProcess`), once with
it in a separate candidate process as the judge runs it (the channel's cost per step is the
difference)."""

from __future__ import annotations

import dataclasses
import sys
import time

import torch

from evaluators.harness_api import get_function, load_candidate, local_candidate
from problems.moe_lbl.boundary import StepShape
from problems.moe_lbl.evaluate import RemoteLoss
from problems.moe_lbl.trainer import CONFIGS, TrainConfig, train

STEPS = 12


def _per_step(loss: object, config: TrainConfig) -> float:
    stamps: list[float] = []   # after each step; each step ends with a host sync (its losses)
    train(loss, config, seed=0, device="cuda",  # type: ignore[arg-type]
          progress=lambda step, lm: stamps.append(time.perf_counter()))
    return (stamps[-1] - stamps[0]) / STEPS   # the first step (warm-up, allocation) excluded


def main() -> int:
    if not torch.cuda.is_available():
        print("gpu_check_moe_speed: FAILED: no CUDA GPU visible to torch", file=sys.stderr)
        return 3
    full = CONFIGS["gpu"]
    program = "problems/moe_lbl/initial.py"
    config = dataclasses.replace(full, steps=1 + STEPS, warmup=1, val_windows=full.micro_batch)
    in_process = _per_step(get_function(load_candidate(program), "balancing_loss"), config)
    with local_candidate(program) as candidate:
        model = config.model
        candidate.max_reply_bytes = StepShape(
            layers=model.n_layers, micro=config.num_micro,
            tokens=config.micro_batch * model.seq_len, experts=model.num_experts,
            top_k=model.top_k).reply_bytes()
        separate = _per_step(RemoteLoss(candidate, config, 0), config)
    for label, per_step in (("loss in this process", in_process),
                            ("loss in a candidate process", separate)):
        print(f"moe_lbl gpu config, {label}: {per_step * 1e3:.1f} ms per optimizer step "
              f"({full.num_micro} x {full.micro_batch} sequences of {full.model.seq_len}); "
              f"{full.steps} steps project to {per_step * full.steps:.0f} s of training")
    return 0


if __name__ == "__main__":
    sys.exit(main())

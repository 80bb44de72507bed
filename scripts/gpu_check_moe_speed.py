"""moe_lbl's GPU configuration, timed on a few steps before the full check: run by gpu_check.sh.

Prints the milliseconds per optimizer step (after one warm-up step) and the full stage's
projected training time, so that a full stage that runs out of time still leaves a figure."""

from __future__ import annotations

import dataclasses
import sys
import time

import torch

from evaluators.harness_api import get_function, load_candidate
from problems.moe_lbl.trainer import CONFIGS, train

STEPS = 12


def main() -> int:
    if not torch.cuda.is_available():
        print("gpu_check_moe_speed: FAILED: no CUDA GPU visible to torch", file=sys.stderr)
        return 3
    full = CONFIGS["gpu"]
    loss = get_function(load_candidate("problems/moe_lbl/initial.py"), "balancing_loss")
    stamps: list[float] = []   # after each step; each step ends with a host sync (its losses)
    config = dataclasses.replace(full, steps=1 + STEPS, warmup=1, val_windows=full.micro_batch)
    train(loss, config, seed=0, device="cuda",
          progress=lambda step, lm: stamps.append(time.perf_counter()))
    per_step = (stamps[-1] - stamps[0]) / STEPS   # the first step (warm-up, allocation) excluded
    print(f"moe_lbl gpu config: {per_step * 1e3:.1f} ms per optimizer step "
          f"({full.num_micro} x {full.micro_batch} sequences of {full.model.seq_len}); "
          f"{full.steps} steps project to {per_step * full.steps:.0f} s of training")
    return 0


if __name__ == "__main__":
    sys.exit(main())

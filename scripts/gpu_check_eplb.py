"""eplb's kernel stage on CUDA (DeepSeek-V3 expert dimensions, bf16): run by scripts/gpu_check.sh.

Prints, per program, the slowest-rank step time under the placement, the even split's, their
ratio, the busiest rank's rows and the backend, and exits 1 when a program is not valid or the
stage did not run on the GPU at the DeepSeek-V3 size."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

from problems.eplb import moe_kernel
from problems.eplb.evaluate import evaluate

EPLB = Path(__file__).resolve().parents[1] / "problems" / "eplb"
PROGRAMS = {"deepseek_eplb": EPLB / "initial.py", "round_robin": EPLB / "baselines" / "round_robin.py"}


def main() -> int:
    if not torch.cuda.is_available():
        print("gpu_check_eplb: FAILED: no CUDA GPU visible to torch", file=sys.stderr)
        return 3
    dims = moe_kernel.default_dims()
    if dims != moe_kernel.GPU_DIMS:
        print(f"gpu_check_eplb: FAILED: the kernel stage picked {dims}, not the GPU dimensions",
              file=sys.stderr)
        return 1
    failed = False
    for name, path in PROGRAMS.items():
        started = time.perf_counter()
        result = evaluate(str(path), "kernel")
        seconds = time.perf_counter() - started
        m = result["metrics"]
        if not result["valid"]:
            print(f"{name}: NOT VALID: {result['feedback']}")
            failed = True
            continue
        print(f"{name}: step {m['kernel_step_ms']:.3f} ms/layer (slowest rank, calibrated), even "
              f"split {m['kernel_even_ms']:.3f} ms, ratio {m['kernel_step_ratio']:.3f}, raw slowest "
              f"{m['kernel_step_uncalibrated_ms']:.3f} ms; busiest rank {m['kernel_max_rank_rows']} "
              f"rows vs {m['kernel_mean_rank_rows']:.0f} mean; layers {m['kernel_layers']}; "
              f"{m['kernel_device']}, {m['kernel_dims']}, {m['kernel_backend']}; "
              f"stage {seconds:.1f} s")
        if m["kernel_device"] == "cpu" or "7168" not in m["kernel_dims"]:
            print(f"{name}: FAILED: ran on {m['kernel_device']} with {m['kernel_dims']}")
            failed = True
    print(f"peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

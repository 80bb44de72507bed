"""Judge of the EPLB problem: stages "quick", "balance" and "kernel" (see README.md).

Every stage calls the candidate's `rebalance_experts` on window i of a load history, checks the
returned placement itself and scores it on window i+1. The candidate runs in its own process:
it receives window i as a tensor made in its process from the array the judge sends, and never
sees window i+1. A call's time is the candidate's own CPU time, measured outside its process.
"""

from __future__ import annotations

import dataclasses
import math
import os
import statistics
from pathlib import Path
from typing import Any

import numpy as np
import torch

from evaluators.harness_api import Built, Candidate, CandidateError, local_candidate
from problems.eplb import moe_kernel
from problems.eplb.guard import check_source
from problems.eplb.placement import (
    STANDARD,
    EplbConfig,
    InvalidPlacement,
    balancedness,
    balancedness_bound,
    config_for,
    gpu_loads,
    slot_loads,
    validate_placement,
)
from problems.eplb.workloads import (
    GeneratorConfig,
    generate_history,
    history_to_array,
    load_history_file,
    to_windows,
    window_pairs,
)

FUNCTION = "rebalance_experts"
TRACE_ENV = "EVOLVE_EPLB_TRACE"                 # a vLLM load_history JSON to use instead
STEPS_PER_WINDOW_ENV = "EVOLVE_EPLB_STEPS_PER_WINDOW"
STANDARD_GENERATOR = GeneratorConfig(seed=20250611)
QUICK_LAYERS = 8
MIN_TIMED_CALLS = 5
# Score = BALANCE_WEIGHT * balancedness + (1 - BALANCE_WEIGHT) * speed_score, where speed_score
# rises by 1/3 per tenfold speed-up: 0 at >= 1 s per call, 1 at <= 1 ms per call.
BALANCE_WEIGHT = 0.9
SLOWEST_S, FASTEST_S = 1.0, 1e-3

Result = dict[str, Any]


def speed_score(seconds: float) -> float:
    if seconds <= 0:
        return 1.0
    span = math.log10(SLOWEST_S / FASTEST_S)
    return min(1.0, max(0.0, math.log10(SLOWEST_S / seconds) / span))


def combined_score(gpu_balancedness: float, seconds: float) -> float:
    return BALANCE_WEIGHT * gpu_balancedness + (1 - BALANCE_WEIGHT) * speed_score(seconds)


def leaderboard_score(gpu_balancedness: float, seconds: float) -> float:
    """The ADRS Leaderboard's EPLB formula, for comparison with its published figures (not
    what this problem optimises): 90 x balancedness + 5 x min(0.002 / t, 2), minus
    min(20 t, 20) when a call takes over 10 ms; t is the mean seconds per call."""
    speed = 5 * min(0.002 / seconds, 2.0) if seconds > 0 else 10.0
    penalty = min(20 * seconds, 20.0) if seconds > 0.01 else 0.0
    return 90 * gpu_balancedness + speed - penalty


def load_windows() -> tuple[np.ndarray, str]:
    """[windows, layers, experts] of the workload, and where it came from."""
    trace = os.environ.get(TRACE_ENV)
    if trace:
        steps = load_history_file(trace)
        per_window = int(os.environ.get(STEPS_PER_WINDOW_ENV, "1"))
        return to_windows(steps, per_window), f"trace {trace}"
    steps = history_to_array(generate_history(STANDARD_GENERATOR))
    return (to_windows(steps, STANDARD_GENERATOR.steps_per_window),
            f"synthetic DeepSeek-V3-like, seed {STANDARD_GENERATOR.seed}")


def _as_input(window: np.ndarray) -> Built:
    """The window as the tensor vLLM passes, made in the candidate's process: integer token
    counts as int64; fractional traces stay float."""
    if np.all(window == np.round(window)):
        return Built("torch:from_numpy", window.astype(np.int64))
    return Built("torch:from_numpy", window.astype(np.float32))


def _as_tensors(result: Any) -> Any:
    """The returned triple with its arrays as CPU tensors again (the channel carries tensors
    as arrays); anything else is left for the validator to name."""
    if isinstance(result, list | tuple):
        return tuple(torch.from_numpy(v) if isinstance(v, np.ndarray) else v for v in result)
    return result


def _invalid(reason: str, metrics: dict[str, Any] | None = None) -> Result:
    return {"score": 0.0, "valid": False, "metrics": {"invalid_reason": reason, **(metrics or {})},
            "feedback": f"Invalid: {reason}"}


class CandidateFailed(Exception):
    """The candidate raised or returned something unusable; the message is the reason."""


def _call(candidate: Candidate, fit: np.ndarray, cfg: EplbConfig
          ) -> tuple[torch.Tensor, float, float]:
    """One timed call of the candidate, validated; returns (phy2log, s, CPU s): both the
    candidate's own CPU time (every thread and process of it), measured by its host."""
    try:
        result = candidate.call(FUNCTION, _as_input(fit), cfg.num_replicas, cfg.num_groups,
                                cfg.num_nodes, cfg.num_gpus)
    except CandidateError as exc:  # the candidate's own failure becomes the recorded reason
        raise CandidateFailed(str(exc)) from exc
    seconds = cpu_seconds = candidate.last_cpu_s
    try:
        phy2log = validate_placement(_as_tensors(result), fit.shape[0], fit.shape[1], cfg, fit)
    except InvalidPlacement as exc:
        raise CandidateFailed(str(exc)) from exc
    return phy2log, seconds, cpu_seconds


def _balance(fn: Candidate, windows: np.ndarray, source: str) -> Result:
    cfg = config_for(windows.shape[2])
    cfg.check(windows.shape[2])
    pairs = window_pairs(windows)
    gpu_b, slot_b, fit_b, bounds, seconds, cpu_seconds = [], [], [], [], [], []
    try:
        for fit, score in pairs:
            phy2log, took, cpu_took = _call(fn, fit, cfg)
            seconds.append(took)
            cpu_seconds.append(cpu_took)
            gpu_b.append(balancedness(gpu_loads(phy2log, score, cfg)))
            slot_b.append(balancedness(slot_loads(phy2log, score)))
            fit_b.append(balancedness(gpu_loads(phy2log, fit, cfg)))
            bounds.append(balancedness_bound(score, cfg))
        while len(seconds) < MIN_TIMED_CALLS:
            # Extra timing calls get inputs never seen before (a few tokens added to every
            # expert), so a result cached from an earlier call cannot pass for a fast one.
            extra = len(seconds)
            _, took, cpu_took = _call(fn, pairs[extra % len(pairs)][0] + extra, cfg)
            seconds.append(took)
            cpu_seconds.append(cpu_took)
    except CandidateFailed as exc:
        return _invalid(str(exc))
    runtime = statistics.median(seconds)
    gpu_mean = float(np.mean(gpu_b))
    metrics = {
        "balancedness_gpu": gpu_mean,
        "balancedness_slot": float(np.mean(slot_b)),
        "balancedness_gpu_on_input": float(np.mean(fit_b)),
        "balancedness_bound": float(np.mean(bounds)),
        "runtime_ms": runtime * 1e3,
        "runtime_cpu_ms": statistics.median(cpu_seconds) * 1e3,
        "speed_score": speed_score(runtime),
        "balance_objective": combined_score(gpu_mean, runtime),
        "leaderboard_score": leaderboard_score(gpu_mean, statistics.fmean(seconds)),
        "layers": int(windows.shape[1]),
        "window_pairs": len(pairs),
        "timed_calls": len(seconds),
        "workload": source,
        "config": f"{windows.shape[2]} experts, {cfg.num_replicas} replicas, {cfg.num_groups} "
                  f"groups, {cfg.num_nodes} nodes, {cfg.num_gpus} GPUs",
    }
    feedback = (
        f"GPU balancedness {gpu_mean:.4f} on the next window (bound {metrics['balancedness_bound']:.4f}; "
        f"{metrics['balancedness_gpu_on_input']:.4f} on the window you were given), slot "
        f"balancedness {metrics['balancedness_slot']:.4f}; {runtime * 1e3:.2f} ms per call "
        f"(median of {len(seconds)}), speed score {metrics['speed_score']:.3f}. "
        f"Score = {BALANCE_WEIGHT} x balancedness + {1 - BALANCE_WEIGHT:.1f} x speed score "
        f"= {combined_score(gpu_mean, runtime):.4f}.")
    return {"score": combined_score(gpu_mean, runtime), "valid": True, "metrics": metrics,
            "feedback": feedback}


def _kernel(fn: Candidate, windows: np.ndarray, source: str) -> Result:
    cfg = config_for(windows.shape[2])
    cfg.check(windows.shape[2])
    dims = moe_kernel.default_dims()
    if cfg.num_gpus < STANDARD.num_gpus:
        # A smaller configuration (a recorded trace with fewer experts) keeps the rows per rank
        # of the standard one rather than piling the standard token count on fewer ranks.
        tokens = max(dims.top_k, dims.tokens * cfg.num_gpus // STANDARD.num_gpus)
        dims = dataclasses.replace(dims, tokens=tokens)
    fit, score = window_pairs(windows)[0]
    try:
        phy2log, took, _ = _call(fn, fit, cfg)
    except CandidateFailed as exc:
        return _invalid(str(exc))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)                      # stable per-rank CPU timings
    try:
        layer = moe_kernel.MoELayer(dims, seed=0)
        picked = np.unique(np.linspace(0, windows.shape[1] - 1, dims.layers).round().astype(int))
        steps = [moe_kernel.kernel_step(layer, score[i], phy2log[i], cfg.slots_per_gpu,
                                        cfg.num_gpus, seed=int(i)) for i in picked]
    finally:
        torch.set_num_threads(threads)
    step_s = sum(s["step_s"] for s in steps)
    even_s = sum(s["even_s"] for s in steps)
    ratio = step_s / even_s if even_s > 0 else float("inf")
    proxy = balancedness(gpu_loads(phy2log[picked], score[picked], cfg))
    metrics = {
        "kernel_step_ms": step_s * 1e3 / len(steps),
        "kernel_even_ms": even_s * 1e3 / len(steps),
        "kernel_step_uncalibrated_ms": sum(s["step_raw_s"] for s in steps) * 1e3 / len(steps),
        "kernel_step_ratio": ratio,
        "kernel_max_rank_rows": max(s["max_rank_rows"] for s in steps),
        "kernel_mean_rank_rows": float(np.mean([s["mean_rank_rows"] for s in steps])),
        "balancedness_gpu_kernel_layers": proxy,
        "kernel_layers": [int(i) for i in picked],
        "kernel_backend": layer.backend,
        "kernel_device": dims.device if dims.device == "cpu" else torch.cuda.get_device_name(),
        "kernel_dims": f"hidden {dims.hidden}, intermediate {dims.intermediate}, {dims.tokens} "
                       f"tokens top-{dims.top_k}, {str(dims.dtype).removeprefix('torch.')}",
        "kernel_call_ms": took * 1e3,
    }
    feedback = (f"Slowest-rank MoE step {metrics['kernel_step_ms']:.3f} ms per layer vs "
                f"{metrics['kernel_even_ms']:.3f} ms for an even split of the same tokens "
                f"(ratio {ratio:.3f}, 1.0 is perfect; busiest rank {metrics['kernel_max_rank_rows']} "
                f"rows vs {metrics['kernel_mean_rank_rows']:.0f} on average), on {metrics['kernel_device']} "
                f"with {layer.backend}. A figure for you to read, not part of the score (the "
                f"balance stage's score is the program's score).")
    return {"score": 1.0 / ratio if ratio > 0 else 0.0, "valid": True, "metrics": metrics,
            "feedback": feedback}


def judge(candidate: Candidate, stage: str) -> Result:
    if stage not in ("quick", "balance", "kernel"):
        raise ValueError(f"unknown stage '{stage}'; the eplb stages are quick, balance, kernel")
    torch.set_num_threads(1)          # one thread: timings comparable between candidates
    # The program may not import this project (the workload generator would recompute the
    # window it is scored on): checked on its source, which the judge reads as text.
    violation = check_source(candidate.source())
    if violation:
        return _invalid(violation)
    windows, source = load_windows()
    if stage == "quick":
        layers = np.unique(np.linspace(0, windows.shape[1] - 1, QUICK_LAYERS).round().astype(int))
        return _balance(candidate, windows[:3, layers], source + f", layers {layers.tolist()}")
    if stage == "balance":
        return _balance(candidate, windows, source)
    return _kernel(candidate, windows, source)


def evaluate(program_path: str, stage: str) -> Result:
    """The judge against a local, unsandboxed candidate process (scripts and tests); its
    candidate runs one torch thread, as in the sandbox."""
    with local_candidate(Path(program_path), env={"OMP_NUM_THREADS": "1"}) as candidate:
        return judge(candidate, stage)

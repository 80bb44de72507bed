"""Expert-load workloads for the EPLB problem: a seeded DeepSeek-V3-like generator and a loader.

Both produce the vLLM recording format, one entry per recording step:

    {"load_history": [{"logical_expert_load": [[tokens per expert] per MoE layer]}, ...]}

The evaluator sums consecutive steps into *windows*; the placement computed on window i is scored
on window i+1, so a balancer is judged on the load it has not seen yet, as in production where a
placement is recomputed periodically from recent history and then serves the next interval.

The generator's model (all random draws from one numpy PCG64 stream, so a seed gives the same
workload on every machine):
- Popularity of expert e in layer l is exp(x[l, e]) with x = layer skew sigma_l * N(0, 1) plus a
  per-group offset (DeepSeek-V3 routes to a limited set of expert groups, so whole groups run hot
  or cold). sigma_l rises from `skew_min` in the first MoE layer to `skew_max` in the last: deep
  layers specialise more.
- Drift between windows: x follows an AR(1) process with correlation `drift_rho` per window,
  which keeps the spread stationary while the identity of the hot experts changes.
- Bursts: in each window each expert of each layer independently bursts with probability
  `burst_prob`, multiplying its popularity by a factor drawn from [burst_min, burst_max] for that
  window only (a prompt mix that suddenly favours one topic).
- Within a window, each step routes `tokens_per_step` tokens top-`top_k`; an expert's step load is
  a multinomial draw of tokens_per_step * top_k choices from the window's popularity.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np


class WorkloadError(ValueError):
    """A workload file that cannot be used; the message says what is wrong and what to do."""


@dataclass(frozen=True)
class GeneratorConfig:
    num_layers: int = 58            # DeepSeek-V3: 61 layers, the first 3 dense
    num_experts: int = 256
    num_groups: int = 8
    num_windows: int = 6
    steps_per_window: int = 4
    tokens_per_step: int = 4096
    top_k: int = 8
    skew_min: float = 0.45
    skew_max: float = 0.9
    group_skew: float = 0.25
    drift_rho: float = 0.9
    burst_prob: float = 0.004
    burst_min: float = 3.0
    burst_max: float = 8.0
    seed: int = 0


def generate_history(cfg: GeneratorConfig) -> dict[str, Any]:
    """A load history in the vLLM format (integers), reproducible from `cfg.seed`."""
    if cfg.num_experts % cfg.num_groups:
        raise WorkloadError(f"num_experts={cfg.num_experts} must divide into "
                            f"num_groups={cfg.num_groups} groups")
    rng = np.random.Generator(np.random.PCG64(cfg.seed))
    layers, experts, groups = cfg.num_layers, cfg.num_experts, cfg.num_groups
    sigma = np.linspace(cfg.skew_min, cfg.skew_max, layers)[:, None]
    group_of = np.arange(experts) // (experts // groups)

    def fresh_field() -> np.ndarray:
        expert_part = sigma * rng.standard_normal((layers, experts))
        group_part = cfg.group_skew * rng.standard_normal((layers, groups))[:, group_of]
        return expert_part + group_part

    field = fresh_field()
    history = []
    innovation = np.sqrt(1.0 - cfg.drift_rho ** 2)
    for _window in range(cfg.num_windows):
        bursts = rng.random((layers, experts)) < cfg.burst_prob
        boost = np.where(bursts, rng.uniform(cfg.burst_min, cfg.burst_max, (layers, experts)), 1.0)
        popularity = np.exp(field) * boost
        popularity /= popularity.sum(axis=1, keepdims=True)
        choices = cfg.tokens_per_step * cfg.top_k
        for _step in range(cfg.steps_per_window):
            step_load = np.stack([rng.multinomial(choices, popularity[layer])
                                  for layer in range(layers)])
            history.append({"logical_expert_load": step_load.tolist()})
        field = cfg.drift_rho * field + innovation * fresh_field()
    return {"load_history": history, "generator": asdict(cfg)}


def history_to_array(history: dict[str, Any], source: str = "history") -> np.ndarray:
    """Validate a vLLM-format load history and return it as float64 [steps, layers, experts]."""
    if not isinstance(history, dict) or "load_history" not in history:
        raise WorkloadError(f"{source}: expected a JSON object with a 'load_history' list "
                            f"(vLLM format: {{\"load_history\": [{{\"logical_expert_load\": "
                            f"[[...] per layer]}}, ...]}})")
    entries = history["load_history"]
    if not isinstance(entries, list) or not entries:
        raise WorkloadError(f"{source}: 'load_history' must be a non-empty list of steps")
    steps = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or "logical_expert_load" not in entry:
            raise WorkloadError(f"{source}: load_history[{i}] has no 'logical_expert_load'")
        try:
            step = np.asarray(entry["logical_expert_load"], dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise WorkloadError(f"{source}: load_history[{i}] is not a numeric "
                                f"[layers][experts] table: {exc}") from exc
        if step.ndim != 2:
            raise WorkloadError(f"{source}: load_history[{i}] has shape {step.shape}; "
                                f"expected [layers][experts]")
        if steps and step.shape != steps[0].shape:
            raise WorkloadError(f"{source}: load_history[{i}] has shape {step.shape}, "
                                f"but load_history[0] has {steps[0].shape}")
        if not np.all(np.isfinite(step)) or np.any(step < 0):
            raise WorkloadError(f"{source}: load_history[{i}] has negative or non-finite loads")
        steps.append(step)
    return np.stack(steps)


def load_history_file(path: str | Path) -> np.ndarray:
    """Read a vLLM `load_history` JSON file (as recorded by vLLM or by problems/moe_lbl)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise WorkloadError(f"{path}: no such workload file") from exc
    except json.JSONDecodeError as exc:
        raise WorkloadError(f"{path}: not valid JSON ({exc})") from exc
    return history_to_array(data, str(path))


def to_windows(steps: np.ndarray, steps_per_window: int) -> np.ndarray:
    """Sum consecutive steps into windows: [steps, L, E] -> [windows, L, E] (a partial tail is dropped)."""
    if steps_per_window < 1:
        raise WorkloadError(f"steps_per_window must be >= 1, got {steps_per_window}")
    windows = steps.shape[0] // steps_per_window
    if windows < 2:
        raise WorkloadError(f"{steps.shape[0]} steps give {windows} window(s) of "
                            f"{steps_per_window}; need at least 2 (fit on one, score on the next)")
    trimmed = steps[: windows * steps_per_window]
    return trimmed.reshape(windows, steps_per_window, *steps.shape[1:]).sum(axis=1)


def window_pairs(windows: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """(fit on window i, score on window i+1) for each consecutive pair."""
    return [(windows[i], windows[i + 1]) for i in range(windows.shape[0] - 1)]

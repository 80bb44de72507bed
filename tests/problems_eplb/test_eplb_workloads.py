"""The workload generator's documented properties and the loader for vLLM's load_history."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("torch")

from problems.eplb.workloads import (  # noqa: E402
    GeneratorConfig,
    WorkloadError,
    generate_history,
    history_to_array,
    load_history_file,
    to_windows,
    window_pairs,
)

SMALL = GeneratorConfig(num_layers=6, num_windows=8, steps_per_window=2, tokens_per_step=2048)


def test_loads_the_vllm_format(tmp_path):
    history = {"load_history": [
        {"logical_expert_load": [[1, 2, 3, 4], [0, 0, 5, 5]]},
        {"logical_expert_load": [[4, 3, 2, 1], [1, 1, 1, 1]]},
        {"logical_expert_load": [[0, 0, 0, 8], [2, 2, 2, 2]]},
        {"logical_expert_load": [[1, 1, 1, 1], [3, 0, 0, 3]]},
    ]}
    path = tmp_path / "trace.json"
    path.write_text(json.dumps(history))
    steps = load_history_file(path)
    assert steps.shape == (4, 2, 4)
    windows = to_windows(steps, 2)
    np.testing.assert_array_equal(windows[0], [[5, 5, 5, 5], [1, 1, 6, 6]])
    np.testing.assert_array_equal(windows[1], [[1, 1, 1, 9], [5, 2, 2, 5]])
    (fit, score), = window_pairs(windows)
    np.testing.assert_array_equal(fit, windows[0])
    np.testing.assert_array_equal(score, windows[1])


@pytest.mark.parametrize("bad, message", [
    ([1, 2], "expected a JSON object with a 'load_history' list"),
    ({"load_history": []}, "non-empty list"),
    ({"load_history": [{"expert_load": [[1]]}]}, "has no 'logical_expert_load'"),
    ({"load_history": [{"logical_expert_load": [1, 2]}]}, "expected [layers][experts]"),
    ({"load_history": [{"logical_expert_load": [[1, 2]]}, {"logical_expert_load": [[1, 2, 3]]}]},
     "but load_history[0] has"),
    ({"load_history": [{"logical_expert_load": [[1, -2]]}]}, "negative or non-finite"),
    ({"load_history": [{"logical_expert_load": [["a", 2]]}]}, "not a numeric"),
])
def test_malformed_histories_are_explained(bad, message):
    with pytest.raises(WorkloadError) as info:
        history_to_array(bad)
    assert message in str(info.value)


def test_missing_and_broken_files(tmp_path):
    with pytest.raises(WorkloadError, match="no such workload file"):
        load_history_file(tmp_path / "absent.json")
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(WorkloadError, match="not valid JSON"):
        load_history_file(tmp_path / "broken.json")
    with pytest.raises(WorkloadError, match="need at least 2"):
        to_windows(np.ones((3, 1, 4)), 2)


def test_committed_example_is_in_the_vllm_format(problem_dir):
    steps = load_history_file(problem_dir / "data" / "example_history.json")
    assert steps.shape == (6, 4, 256)
    assert np.all(steps.sum(axis=2) == 1024 * 8)


def test_generator_is_reproducible_and_seeded():
    a, b = generate_history(SMALL), generate_history(SMALL)
    assert a == b
    other = generate_history(GeneratorConfig(**{**SMALL.__dict__, "seed": 1}))
    assert other["load_history"] != a["load_history"]
    steps = history_to_array(a)
    assert steps.shape == (16, 6, 256)
    # Every step routes tokens_per_step tokens top-k.
    assert np.all(steps.sum(axis=2) == 2048 * 8)


def test_generator_is_skewed_drifts_and_bursts():
    windows = to_windows(history_to_array(generate_history(SMALL)), SMALL.steps_per_window)
    share = windows / windows.sum(axis=2, keepdims=True)
    peak_over_mean = share.max(axis=2) * 256
    assert peak_over_mean.mean() > 3            # skewed popularity
    # Deeper layers are more skewed than shallow ones.
    assert peak_over_mean[:, -1].mean() > peak_over_mean[:, 0].mean()
    # Consecutive windows are related but not the same: hot experts drift.
    logs = np.log(share + 1e-9)
    corr = [np.corrcoef(logs[w, layer], logs[w + 1, layer])[0, 1]
            for w in range(7) for layer in range(6)]
    assert 0.5 < np.mean(corr) < 0.98
    # Bursts: some experts jump several-fold from one window to the next.
    jump = share[1:] / np.maximum(share[:-1], 1e-9)
    assert (jump > 4).sum() >= 3

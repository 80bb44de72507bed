"""`[executor]` in the config and the `--executor` / `--ray-address` flags (no cluster needed)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from evaluators.executors import LocalExecutor, make_executor
from evolve.config import ConfigError, load_config
from tests.engine.engine_support import FIXTURE


def test_executor_kind_is_validated_and_named_in_the_error():
    assert load_config().executor.kind == "local"
    with pytest.raises(ConfigError, match="executor.kind"):
        load_config(None, ['executor.kind="slurm"'])
    with pytest.raises(ConfigError, match="executor.retries"):
        load_config(None, ["executor.retries=-1"])


def test_auto_without_an_address_is_the_local_executor(monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    config = load_config(None, ['executor.kind="auto"', "concurrency.evaluations=3"])
    executor = make_executor(config.sandbox, config.concurrency, config.executor)
    assert isinstance(executor, LocalExecutor) and executor.max_parallel == 3


def test_run_refuses_an_unknown_executor_before_writing_anything(tmp_path):
    from evolve.cli import app

    result = CliRunner().invoke(app, ["run", str(FIXTURE), "--executor", "slurm",
                                      "--run-dir", str(tmp_path / "run"), "--no-live"])
    assert result.exit_code == 2
    assert "executor.kind" in result.output
    assert not (tmp_path / "run").exists()


def test_an_unreachable_cluster_is_a_clear_error(tmp_path):
    pytest.importorskip("ray", reason="ray is not installed; `bash scripts/setup.sh --dev`")
    import ray

    if ray.is_initialized():
        pytest.skip("this process is already connected to a cluster (the session's)")
    from evolve.cli import app
    from tests.support.ray_cluster import free_port

    result = CliRunner().invoke(app, ["run", str(FIXTURE), "--ray-address",
                                      f"127.0.0.1:{free_port()}", "--programs", "2",
                                      "--run-dir", str(tmp_path / "run"), "--no-live"])
    assert result.exit_code == 2, result.output
    assert "cannot reach the Ray cluster" in result.output

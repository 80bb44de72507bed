"""Default operator resolution: config, then a provider key, then Ollama, then offline."""

from __future__ import annotations

import socket
import time

import pytest

from evolve.config import ConfigError, EvolveConfig, ModelConfig
from evolve.operators.optimise import OptimiseOperator
from evolve.operators.registry import probe_ollama, resolve_operators
from evolve.operators.reshape import StructureOperator
from tests.support.llm_server import ScriptedLLMServer


def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (the port was just released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def config(**operators) -> EvolveConfig:
    return EvolveConfig.model_validate({"operators": operators})


def test_configured_models_win():
    cfg = config(models=[{"name": "openai/gpt-4.1", "temperatures": [0.2]}])
    choice = resolve_operators(cfg, environ={"ANTHROPIC_API_KEY": "x"},
                               ollama_url=closed_port_url())
    assert [m.name for m in choice.models] == ["openai/gpt-4.1"]
    assert choice.offline == [] and choice.source == "config"
    assert "openai/gpt-4.1" in choice.message


def test_provider_key_in_environment():
    choice = resolve_operators(config(), environ={"ANTHROPIC_API_KEY": "sk-ant"},
                               ollama_url=closed_port_url())
    assert [m.name for m in choice.models] == ["anthropic/claude-haiku-4-5"]
    assert choice.source == "environment" and "ANTHROPIC_API_KEY" in choice.message
    choice = resolve_operators(config(), environ={"OPENAI_API_KEY": "sk", "GEMINI_API_KEY": "g"},
                               ollama_url=closed_port_url())
    assert choice.models[0].name == "openai/gpt-4.1-mini"


def test_ollama_server_answering_is_used():
    with ScriptedLLMServer(model="qwen2.5-coder:7b") as server:
        choice = resolve_operators(config(), environ={}, ollama_url=server.root_url)
        assert [r.path for r in server.requests] == ["/api/tags"]
    [model] = choice.models
    assert model.name == "ollama_chat/qwen2.5-coder:7b" and model.api_base == server.root_url
    assert choice.source == "ollama" and choice.offline == []


def test_offline_when_nothing_else_and_the_message_says_how_to_use_an_llm():
    started = time.monotonic()
    choice = resolve_operators(config(), environ={}, ollama_url=closed_port_url())
    assert time.monotonic() - started < 2.0
    assert choice.models == [] and choice.source == "offline"
    assert [type(op) for op in choice.offline] == [OptimiseOperator, StructureOperator]
    assert choice.operator_names == ["optimise", "structure"]
    assert "--model openai/gpt-4.1-mini" in choice.message and "OPENAI_API_KEY" in choice.message
    assert "--api-base" in choice.message and "\n" not in choice.message


def test_use_offline_always_mixes_and_never_without_llm_fails():
    cfg = config(models=[{"name": "openai/x"}], use_offline="always", offline=["tune"])
    choice = resolve_operators(cfg, environ={}, ollama_url=closed_port_url())
    assert choice.operator_names == ["openai/x", "tune"]
    assert "mixed with offline tune" in choice.message
    with pytest.raises(ConfigError, match="--model"):
        resolve_operators(config(use_offline="never"), environ={}, ollama_url=closed_port_url())
    only_llm = resolve_operators(config(models=[ModelConfig(name="openai/x").model_dump()],
                                        use_offline="never"), environ={})
    assert only_llm.offline == []


def test_probe_ollama_gives_nothing_for_a_server_that_is_not_ollama():
    with ScriptedLLMServer() as server:
        assert probe_ollama(server.base_url) == []  # /v1/api/tags: 404
    assert probe_ollama(closed_port_url()) == []

"""`evolve models check` against a scripted server, a closed port and a missing key."""

from __future__ import annotations

import socket

from typer.testing import CliRunner

from evolve.cli import app
from tests.support.llm_server import Reply

runner = CliRunner()
WIDE = {"COLUMNS": "250"}  # keep rich's table on one line per row


def invoke(*args: str, env: dict[str, str] | None = None):
    return runner.invoke(app, ["models", "check", *args], env={**WIDE, **(env or {})})


def test_check_prints_latency_tokens_and_cost(scripted_llm_server, tmp_path):
    server = scripted_llm_server(default=Reply("ok", prompt_tokens=12, completion_tokens=1))
    config = tmp_path / "run.toml"
    config.write_text(f'[[operators.models]]\nname = "openai/scripted-model"\n'
                      f'api_base = "{server.base_url}"\n\n'
                      f'[llm.prices."openai/scripted-model"]\n'
                      f'input_per_mtok = 1000.0\noutput_per_mtok = 2000.0\n')
    result = invoke("--config", str(config))
    assert result.exit_code == 0, result.output
    assert "openai/scripted-model" in result.output and "12/1" in result.output
    assert "$0.014000" in result.output  # (12 * 1000 + 1 * 2000) / 1e6
    [request] = server.chat_requests
    assert request.json["max_tokens"] == 16


def test_check_given_model_with_unknown_price(scripted_llm_server):
    server = scripted_llm_server(default=Reply("ok"))
    result = invoke("--model", "openai/another", "--api-base", server.base_url)
    assert result.exit_code == 0, result.output
    assert "unknown" in result.output


def test_check_wrong_base_url_hints_at_api_base():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = invoke("--model", "openai/x", "--api-base", f"http://127.0.0.1:{port}/v1",
                    "--timeout", "5")
    assert result.exit_code == 1, result.output
    assert "failed" in result.output and "check --api-base" in result.output


def test_check_missing_key_names_the_variable(monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    result = invoke("--model", "anthropic/claude-haiku-4-5")
    assert result.exit_code == 2, result.output   # a configuration error: nothing was called
    assert "export ANTHROPIC_API_KEY=" in result.output


def test_check_without_any_model_says_how_to_name_one():
    result = invoke()
    assert result.exit_code == 2
    assert "--model" in result.output

"""LLMClient against a scripted OpenAI-compatible server on 127.0.0.1 (real HTTP via litellm)."""

from __future__ import annotations

import json
import random
import time

import pytest

from evolve.config import LLMConfig, ModelConfig, PriceConfig
from evolve.operators.llm import LLMClient, LLMReply
from tests.support.llm_server import (
    Drop,
    Hang,
    HTTPError,
    Malformed,
    RateLimited,
    Reply,
    ScriptedLLMServer,
)

MODEL = "openai/scripted-model"
MESSAGES = [{"role": "system", "content": "You improve programs."},
            {"role": "user", "content": "Make it faster."}]
# $2 per million input tokens, $8 per million output tokens.
PRICES = {MODEL: PriceConfig(input_per_mtok=2.0, output_per_mtok=8.0)}


def make_client(server: ScriptedLLMServer, *, retries: int = 3, deadline: float = 20.0,
                timeout: float = 5.0, prices: dict | None = None, **model_kw) -> LLMClient:
    model = ModelConfig(name=MODEL, api_base=server.base_url, timeout_s=timeout,
                        temperatures=[0.3, 0.9], max_tokens=256, **model_kw)
    llm = LLMConfig(retries=retries, backoff_base_s=0.02, backoff_max_s=0.1,
                    proposal_deadline_s=deadline, prices=PRICES if prices is None else prices)
    return LLMClient([model], llm, rng=random.Random(1))


def expected_cost(tokens_in: int, tokens_out: int) -> float:
    return (tokens_in * 2.0 + tokens_out * 8.0) / 1e6


async def test_normal_reply_records_usage_cost_and_prompt(scripted_llm_server):
    server = scripted_llm_server([Reply("def f(): pass", prompt_tokens=120,
                                        completion_tokens=30)])
    reply = await make_client(server).complete(MODEL, MESSAGES)
    assert isinstance(reply, LLMReply) and reply.ok
    assert reply.text == "def f(): pass" and reply.finish_reason == "stop"
    [call] = reply.calls
    assert call.error is None and call.model == MODEL
    assert (call.tokens_in, call.tokens_out) == (120, 30)
    assert call.cost_usd == pytest.approx(expected_cost(120, 30))
    assert json.loads(call.prompt) == MESSAGES
    assert call.response == "def f(): pass" and call.latency_s > 0
    # What went over the wire: our settings, litellm's retries off, one request only.
    [request] = server.chat_requests
    assert request.json["messages"] == MESSAGES
    assert request.json["max_tokens"] == 256 and request.json["temperature"] in (0.3, 0.9)
    assert set(call.archive_fields()) == {"model", "prompt", "response", "tokens_in",
                                          "tokens_out", "cost_usd", "latency_s", "error",
                                          "finish_reason"}


async def test_unknown_price_is_recorded_as_unknown(scripted_llm_server):
    server = scripted_llm_server([Reply("x = 1")])
    reply = await make_client(server, prices={}).complete(MODEL, MESSAGES)
    assert reply.ok and reply.calls[0].cost_usd is None and reply.cost_usd is None


async def test_rate_limit_then_success_records_both_attempts(scripted_llm_server):
    server = scripted_llm_server([RateLimited(retry_after=0.05),
                                  Reply("ok!", prompt_tokens=40, completion_tokens=5)])
    reply = await make_client(server).complete(MODEL, MESSAGES)
    assert reply.ok and reply.text == "ok!"
    first, second = reply.calls
    assert "RateLimit" in first.error and first.tokens_in is None
    assert first.cost_usd == 0.0  # a rejected request is not billed
    assert second.error is None and second.cost_usd == pytest.approx(expected_cost(40, 5))
    assert len(server.chat_requests) == 2
    # retry-after (50 ms) was honoured between the attempts.
    gap = server.chat_requests[1].received_at - server.chat_requests[0].received_at
    assert gap >= 0.05


async def test_repeated_500s_give_up_after_configured_retries(scripted_llm_server):
    server = scripted_llm_server(default=HTTPError(500))
    started = time.monotonic()
    reply = await make_client(server, retries=2, deadline=5.0).complete(MODEL, MESSAGES)
    assert not reply.ok and reply.text == ""
    assert len(reply.calls) == 3 == len(server.chat_requests)  # 1 try + 2 retries
    assert all("InternalServerError" in c.error for c in reply.calls)
    assert time.monotonic() - started < 5.0


async def test_permanent_error_is_not_retried(scripted_llm_server):
    server = scripted_llm_server(default=HTTPError(401, {"error": {"message": "bad key"}}))
    reply = await make_client(server).complete(MODEL, MESSAGES)
    assert not reply.ok and len(reply.calls) == 1
    assert "Authentication" in reply.error


async def test_hung_connection_is_cut_by_the_proposal_deadline(scripted_llm_server):
    # The per-call timeout (30 s) is far beyond the deadline; the deadline must still win.
    server = scripted_llm_server(default=Hang())
    started = time.monotonic()
    reply = await make_client(server, deadline=1.0, timeout=30.0).complete(MODEL, MESSAGES)
    elapsed = time.monotonic() - started
    assert not reply.ok
    assert elapsed < 2.5, f"deadline of 1 s not honoured: {elapsed:.2f}s"
    assert "Timeout" in reply.error
    assert reply.calls[-1].cost_usd is None  # a timed-out call may have been billed


async def test_per_call_timeout_then_retry_succeeds(scripted_llm_server):
    server = scripted_llm_server([Hang(), Reply("after the hang")])
    reply = await make_client(server, timeout=0.5, deadline=10.0).complete(MODEL, MESSAGES)
    assert reply.ok and reply.text == "after the hang"
    assert len(reply.calls) == 2 and "Timeout" in reply.calls[0].error


async def test_malformed_json_and_dropped_connection_are_retried(scripted_llm_server):
    server = scripted_llm_server([Malformed(), Drop(), Reply("fine")])
    reply = await make_client(server).complete(MODEL, MESSAGES)
    assert reply.ok and reply.text == "fine"
    assert len(reply.calls) == 3
    assert reply.calls[0].error and reply.calls[1].error and reply.calls[2].error is None


async def test_malformed_json_every_time_fails_cleanly(scripted_llm_server):
    server = scripted_llm_server(default=Malformed())
    reply = await make_client(server, retries=1).complete(MODEL, MESSAGES)
    assert not reply.ok and len(reply.calls) == 2
    assert all(c.error for c in reply.calls)


async def test_empty_content_is_a_failed_attempt_with_usage(scripted_llm_server):
    server = scripted_llm_server(default=Reply("", prompt_tokens=50, completion_tokens=0))
    reply = await make_client(server, retries=1).complete(MODEL, MESSAGES)
    assert not reply.ok and len(reply.calls) == 2
    for call in reply.calls:
        assert call.error.startswith("EmptyResponse")
        assert (call.tokens_in, call.tokens_out) == (50, 0)
        assert call.cost_usd == pytest.approx(expected_cost(50, 0))
    assert reply.cost_usd == pytest.approx(2 * expected_cost(50, 0))


async def test_finish_reason_length_returns_the_truncated_text(scripted_llm_server):
    server = scripted_llm_server([Reply("def f(x):\n    return", finish_reason="length",
                                        prompt_tokens=100, completion_tokens=256)])
    reply = await make_client(server).complete(MODEL, MESSAGES, max_tokens=256)
    assert reply.ok and reply.finish_reason == "length"
    assert reply.text.startswith("def f(x)")
    assert reply.calls[0].cost_usd == pytest.approx(expected_cost(100, 256))


async def test_empty_length_reply_hints_at_max_tokens(scripted_llm_server):
    server = scripted_llm_server(default=Reply("", finish_reason="length"))
    reply = await make_client(server, retries=0).complete(MODEL, MESSAGES)
    assert not reply.ok and "raise max_tokens" in reply.error


async def test_missing_key_env_fails_without_calling(scripted_llm_server, monkeypatch):
    monkeypatch.delenv("EVOLVE_TEST_MISSING_KEY", raising=False)
    server = scripted_llm_server([Reply("never")])
    client = make_client(server, api_key_env="EVOLVE_TEST_MISSING_KEY")
    reply = await client.complete(MODEL, MESSAGES)
    assert not reply.ok and "EVOLVE_TEST_MISSING_KEY" in reply.error
    assert server.chat_requests == []


async def test_key_from_env_is_sent(scripted_llm_server, monkeypatch):
    monkeypatch.setenv("EVOLVE_TEST_KEY", "sk-from-env-123")
    server = scripted_llm_server([Reply("ok")])
    reply = await make_client(server, api_key_env="EVOLVE_TEST_KEY").complete(MODEL, MESSAGES)
    assert reply.ok
    auth = {k.lower(): v for k, v in server.chat_requests[0].headers.items()}["authorization"]
    assert auth == "Bearer sk-from-env-123"


async def test_reply_based_on_the_prompt(scripted_llm_server):
    def answer(request):
        return Reply(request["messages"][-1]["content"].upper())

    server = scripted_llm_server(answer)
    reply = await make_client(server).complete(MODEL, MESSAGES)
    assert reply.text == "MAKE IT FASTER."


async def test_embeddings_endpoint_is_deterministic(scripted_llm_server):
    from evolve.operators.llm import litellm_module

    server = scripted_llm_server()
    kwargs = server.litellm_kwargs("openai/scripted-embedder")
    first = await litellm_module().aembedding(input=["a b", "c"], **kwargs)
    again = await litellm_module().aembedding(input=["a b"], **kwargs)
    assert len(first.data) == 2 and len(first.data[0]["embedding"]) == 16
    assert first.data[0]["embedding"] == again.data[0]["embedding"]
    assert first.data[0]["embedding"] != first.data[1]["embedding"]


async def test_litellm_price_data_is_used_and_the_config_overrides_it(scripted_llm_server):
    from evolve.operators.llm import litellm_module

    known = "openai/gpt-4.1-mini"  # in litellm's bundled price table
    entry = litellm_module().model_cost["gpt-4.1-mini"]
    server = scripted_llm_server(default=Reply("x", prompt_tokens=1000, completion_tokens=100))
    model = ModelConfig(name=known, api_base=server.base_url)
    from_litellm = await LLMClient([model], LLMConfig(retries=0)).complete(known, MESSAGES)
    assert from_litellm.calls[0].cost_usd == pytest.approx(
        1000 * entry["input_cost_per_token"] + 100 * entry["output_cost_per_token"])
    assert from_litellm.calls[0].cost_usd > 0

    override = LLMConfig(retries=0, prices={known: PriceConfig(input_per_mtok=100.0,
                                                                output_per_mtok=0.0)})
    overridden = await LLMClient([model], override).complete(known, MESSAGES)
    assert overridden.calls[0].cost_usd == pytest.approx(1000 * 100.0 / 1e6)


async def test_local_model_without_a_server_fails_fast_with_what_to_do():
    client = LLMClient([ModelConfig(name="local/smollm2")], LLMConfig())
    reply = await client.complete("local/smollm2", MESSAGES)
    assert not reply.ok and len(reply.calls) == 1
    assert "start_local_models" in reply.error

"""LLMClient against a scripted OpenAI-compatible server on 127.0.0.1, over real HTTP.

`openai/...` models go through the `openai` SDK directly (`llm.openai_sdk`, the default); the
behaviour tests run on that path and again through litellm (`openai_sdk=false`, the path every
other provider takes), which must behave the same."""

from __future__ import annotations

import asyncio
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


_OPENED: list[LLMClient] = []


def client_for(*args, **kwargs) -> LLMClient:
    """An LLMClient closed when the test ends (its SDK clients hold connections)."""
    client = LLMClient(*args, **kwargs)
    _OPENED.append(client)
    return client


@pytest.fixture(autouse=True)
async def _close_clients():
    yield
    while _OPENED:
        await _OPENED.pop().aclose()


@pytest.fixture(params=[True, False], ids=["openai-sdk", "litellm"])
def openai_sdk(request) -> bool:
    return request.param


def make_client(server: ScriptedLLMServer, *, retries: int = 3, deadline: float = 20.0,
                timeout: float = 5.0, prices: dict | None = None, openai_sdk: bool = True,
                **model_kw) -> LLMClient:
    model = ModelConfig(name=MODEL, api_base=server.base_url, timeout_s=timeout,
                        temperatures=[0.3, 0.9], max_tokens=256, **model_kw)
    llm = LLMConfig(retries=retries, backoff_base_s=0.02, backoff_max_s=0.1,
                    proposal_deadline_s=deadline, prices=PRICES if prices is None else prices,
                    openai_sdk=openai_sdk)
    return client_for([model], llm, rng=random.Random(1))


def expected_cost(tokens_in: int, tokens_out: int) -> float:
    return (tokens_in * 2.0 + tokens_out * 8.0) / 1e6


async def test_normal_reply_records_usage_cost_and_prompt(scripted_llm_server, openai_sdk):
    server = scripted_llm_server([Reply("def f(): pass", prompt_tokens=120,
                                        completion_tokens=30)])
    reply = await make_client(server, openai_sdk=openai_sdk).complete(MODEL, MESSAGES)
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


async def test_rate_limit_then_success_records_both_attempts(scripted_llm_server, openai_sdk):
    server = scripted_llm_server([RateLimited(retry_after=0.05),
                                  Reply("ok!", prompt_tokens=40, completion_tokens=5)])
    reply = await make_client(server, openai_sdk=openai_sdk).complete(MODEL, MESSAGES)
    assert reply.ok and reply.text == "ok!"
    first, second = reply.calls
    assert "RateLimit" in first.error and first.tokens_in is None
    assert first.cost_usd == 0.0  # a rejected request is not billed
    assert second.error is None and second.cost_usd == pytest.approx(expected_cost(40, 5))
    assert len(server.chat_requests) == 2
    # retry-after (50 ms) was honoured between the attempts.
    gap = server.chat_requests[1].received_at - server.chat_requests[0].received_at
    assert gap >= 0.05


async def test_repeated_500s_give_up_after_configured_retries(scripted_llm_server, openai_sdk):
    server = scripted_llm_server(default=HTTPError(500))
    started = time.monotonic()
    client = make_client(server, openai_sdk=openai_sdk, retries=2, deadline=5.0)
    reply = await client.complete(MODEL, MESSAGES)
    assert not reply.ok and reply.text == ""
    assert len(reply.calls) == 3 == len(server.chat_requests)  # 1 try + 2 retries
    assert all("InternalServerError" in c.error for c in reply.calls)
    assert time.monotonic() - started < 5.0


async def test_permanent_error_is_not_retried(scripted_llm_server, openai_sdk):
    server = scripted_llm_server(default=HTTPError(401, {"error": {"message": "bad key"}}))
    reply = await make_client(server, openai_sdk=openai_sdk).complete(MODEL, MESSAGES)
    assert not reply.ok and len(reply.calls) == 1
    assert "Authentication" in reply.error


async def test_hung_connection_is_cut_by_the_proposal_deadline(scripted_llm_server, openai_sdk):
    # The per-call timeout (30 s) is far beyond the deadline; the deadline must still win.
    server = scripted_llm_server(default=Hang())
    started = time.monotonic()
    client = make_client(server, openai_sdk=openai_sdk, deadline=1.0, timeout=30.0)
    reply = await client.complete(MODEL, MESSAGES)
    elapsed = time.monotonic() - started
    assert not reply.ok
    assert elapsed < 2.5, f"deadline of 1 s not honoured: {elapsed:.2f}s"
    assert "Timeout" in reply.error
    assert reply.calls[-1].cost_usd is None  # a timed-out call may have been billed


async def test_per_call_timeout_then_retry_succeeds(scripted_llm_server, openai_sdk):
    server = scripted_llm_server([Hang(), Reply("after the hang")])
    client = make_client(server, openai_sdk=openai_sdk, timeout=0.5, deadline=10.0)
    reply = await client.complete(MODEL, MESSAGES)
    assert reply.ok and reply.text == "after the hang"
    assert len(reply.calls) == 2 and "Timeout" in reply.calls[0].error


async def test_malformed_json_and_dropped_connection_are_retried(scripted_llm_server, openai_sdk):
    server = scripted_llm_server([Malformed(), Drop(), Reply("fine")])
    reply = await make_client(server, openai_sdk=openai_sdk).complete(MODEL, MESSAGES)
    assert reply.ok and reply.text == "fine"
    assert len(reply.calls) == 3
    assert reply.calls[0].error and reply.calls[1].error and reply.calls[2].error is None


async def test_malformed_json_every_time_fails_cleanly(scripted_llm_server):
    server = scripted_llm_server(default=Malformed())
    reply = await make_client(server, retries=1).complete(MODEL, MESSAGES)
    assert not reply.ok and len(reply.calls) == 2
    assert all(c.error for c in reply.calls)


async def test_empty_content_is_a_failed_attempt_with_usage(scripted_llm_server, openai_sdk):
    server = scripted_llm_server(default=Reply("", prompt_tokens=50, completion_tokens=0))
    reply = await make_client(server, openai_sdk=openai_sdk, retries=1).complete(MODEL, MESSAGES)
    assert not reply.ok and len(reply.calls) == 2
    for call in reply.calls:
        assert call.error.startswith("EmptyResponse")
        assert (call.tokens_in, call.tokens_out) == (50, 0)
        assert call.cost_usd == pytest.approx(expected_cost(50, 0))
    assert reply.cost_usd == pytest.approx(2 * expected_cost(50, 0))


async def test_finish_reason_length_returns_the_truncated_text(scripted_llm_server, openai_sdk):
    server = scripted_llm_server([Reply("def f(x):\n    return", finish_reason="length",
                                        prompt_tokens=100, completion_tokens=256)])
    client = make_client(server, openai_sdk=openai_sdk)
    reply = await client.complete(MODEL, MESSAGES, max_tokens=256)
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


async def test_key_from_env_is_sent(scripted_llm_server, monkeypatch, openai_sdk):
    monkeypatch.setenv("EVOLVE_TEST_KEY", "sk-from-env-123")
    server = scripted_llm_server([Reply("ok")])
    client = make_client(server, openai_sdk=openai_sdk, api_key_env="EVOLVE_TEST_KEY")
    reply = await client.complete(MODEL, MESSAGES)
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


async def test_litellm_price_data_is_used_and_the_config_overrides_it(scripted_llm_server,
                                                                      openai_sdk):
    from evolve.operators.llm import litellm_module

    known = "openai/gpt-4.1-mini"  # in litellm's bundled price table
    entry = litellm_module().model_cost["gpt-4.1-mini"]
    server = scripted_llm_server(default=Reply("x", prompt_tokens=1000, completion_tokens=100))
    model = ModelConfig(name=known, api_base=server.base_url)
    from_litellm = await client_for([model], LLMConfig(retries=0, openai_sdk=openai_sdk)).complete(
        known, MESSAGES)
    assert from_litellm.calls[0].cost_usd == pytest.approx(
        1000 * entry["input_cost_per_token"] + 100 * entry["output_cost_per_token"])
    assert from_litellm.calls[0].cost_usd > 0

    override = LLMConfig(retries=0, openai_sdk=openai_sdk,
                         prices={known: PriceConfig(input_per_mtok=100.0, output_per_mtok=0.0)})
    overridden = await client_for([model], override).complete(known, MESSAGES)
    assert overridden.calls[0].cost_usd == pytest.approx(1000 * 100.0 / 1e6)


async def test_local_model_without_a_server_fails_fast_with_what_to_do():
    client = client_for([ModelConfig(name="local/smollm2")], LLMConfig())
    reply = await client.complete("local/smollm2", MESSAGES)
    assert not reply.ok and len(reply.calls) == 1
    assert "start_local_models" in reply.error


async def test_both_paths_record_the_same_tokens_and_cost_with_cached_prompt_tokens(
        scripted_llm_server):
    """litellm's cost rules (cached prompt tokens at the cache-read price) on the SDK path too,
    equal to litellm's own `completion_cost` for the same usage."""
    from litellm import ModelResponse, Usage

    from evolve.operators.llm import litellm_module

    known = "openai/gpt-4.1-mini"
    server = scripted_llm_server(default=Reply("x", prompt_tokens=3000, completion_tokens=200,
                                               cached_tokens=2000))
    model = ModelConfig(name=known, api_base=server.base_url)
    calls = []
    for sdk in (True, False):
        reply = await client_for([model], LLMConfig(retries=0, openai_sdk=sdk)).complete(
            known, MESSAGES)
        calls.append(reply.calls[0])
    sdk_call, litellm_call = calls
    expected = litellm_module().completion_cost(
        completion_response=ModelResponse(model="gpt-4.1-mini", usage=Usage(
            prompt_tokens=3000, completion_tokens=200, total_tokens=3200,
            prompt_tokens_details={"cached_tokens": 2000})), model=known)
    entry = litellm_module().model_cost["gpt-4.1-mini"]
    full_price = 3000 * entry["input_cost_per_token"] + 200 * entry["output_cost_per_token"]
    assert 0 < expected < full_price  # the cached tokens were priced lower
    assert sdk_call.cost_usd == pytest.approx(expected)
    assert litellm_call.cost_usd == pytest.approx(expected)
    assert (sdk_call.tokens_in, sdk_call.tokens_out) == (3000, 200) == (
        litellm_call.tokens_in, litellm_call.tokens_out)


async def test_sdk_path_sends_litellm_parameter_mapping_for_the_model(scripted_llm_server):
    """A reasoning model gets `max_completion_tokens` and no temperature, as litellm maps it;
    the provider prefix is not sent."""
    server = scripted_llm_server(default=Reply("ok"))
    model = ModelConfig(name="openai/gpt-5", api_base=server.base_url, max_tokens=321)
    reply = await client_for([model], LLMConfig(retries=0)).complete("openai/gpt-5", MESSAGES,
                                                                   temperature=0.7)
    assert reply.ok
    [request] = server.chat_requests
    assert request.json["model"] == "gpt-5"
    assert request.json["max_completion_tokens"] == 321
    assert "max_tokens" not in request.json and "temperature" not in request.json


@pytest.mark.parametrize("name, wire, key", [
    ("local/smollm2", "smollm2", "sk-local-no-key"),
    ("hosted_vllm/qwen3", "qwen3", "sk-no-key-needed"),
])
async def test_local_and_vllm_models_reach_their_server_through_the_sdk(
        scripted_llm_server, monkeypatch, name, wire, key):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    server = scripted_llm_server([Reply("done", prompt_tokens=9, completion_tokens=3)])
    client = client_for([ModelConfig(name=name, api_base=server.base_url)], LLMConfig(retries=0))
    reply = await client.complete(name, MESSAGES)
    assert reply.ok and reply.text == "done" and reply.finish_reason == "stop"
    assert (reply.calls[0].tokens_in, reply.calls[0].tokens_out) == (9, 3)
    assert reply.calls[0].cost_usd is None  # no price known: unknown, not 0
    [request] = server.chat_requests
    assert request.json["model"] == wire
    auth = {k.lower(): v for k, v in request.headers.items()}["authorization"]
    assert auth == f"Bearer {key}"
    await client.aclose()


async def test_unreadable_200_is_retried_and_its_cost_is_unknown(scripted_llm_server):
    server = scripted_llm_server([Malformed(), Malformed('{"error": {"message": "overloaded"}}'),
                                  Reply("fine")])
    reply = await make_client(server).complete(MODEL, MESSAGES)
    assert reply.ok and reply.text == "fine" and len(reply.calls) == 3
    first, second, _ = reply.calls
    assert first.error.startswith("MalformedResponse") and first.cost_usd is None
    assert "overloaded" in second.error and second.cost_usd is None  # served: may be billed


async def test_a_proxy_named_by_the_environment_carries_the_call(scripted_llm_server,
                                                                  monkeypatch, openai_sdk):
    """HTTP_PROXY is honoured as the SDK's httpx client honours it: the model's server name
    does not even resolve, the scripted server (as the proxy) answers."""
    server = scripted_llm_server(default=Reply("via the proxy"))
    monkeypatch.setenv("HTTP_PROXY", server.base_url.rsplit("/v1", 1)[0])
    for name in ("NO_PROXY", "no_proxy", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    model = ModelConfig(name=MODEL, api_base="http://llm.invalid/v1", timeout_s=5.0)
    reply = await client_for([model], LLMConfig(retries=0, openai_sdk=openai_sdk)).complete(
        MODEL, MESSAGES)
    assert reply.ok and reply.text == "via the proxy"
    assert server.chat_requests[0].path == "http://llm.invalid/v1/chat/completions"


async def test_no_server_listening_is_retried_then_fails_within_the_deadline(openai_sdk):
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    model = ModelConfig(name=MODEL, api_base=f"http://127.0.0.1:{port}/v1", timeout_s=2.0)
    llm = LLMConfig(retries=2, backoff_base_s=0.01, backoff_max_s=0.02, proposal_deadline_s=10,
                    openai_sdk=openai_sdk)
    started = time.monotonic()
    reply = await client_for([model], llm).complete(MODEL, MESSAGES)
    assert not reply.ok and len(reply.calls) == 3
    # "Connection error." on the SDK path: the cause (the refused connect call) says more.
    assert all("connect" in c.error.lower() for c in reply.calls)
    # Never a made-up price: litellm calls a refused connection unbilled (0), the SDK path
    # cannot tell it from one dropped mid-request and leaves it unknown.
    assert all(c.cost_usd in (None, 0.0) for c in reply.calls)
    assert time.monotonic() - started < 5.0


async def test_sdk_client_is_reused_across_calls_and_closed(scripted_llm_server):
    server = scripted_llm_server(default=Reply("ok"))
    client = make_client(server)
    for _ in range(3):
        assert (await client.complete(MODEL, MESSAGES)).ok
    [endpoint] = client._sdk_clients._by_loop[asyncio.get_running_loop()].values()
    await client.aclose()
    assert endpoint.session.closed and endpoint.sdk.is_closed()
    assert (await client.complete(MODEL, MESSAGES)).ok  # a closed client is replaced

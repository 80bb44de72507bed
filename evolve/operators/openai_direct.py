"""Calls to OpenAI-compatible endpoints through the `openai` SDK's async client, not litellm.

For a provider that already speaks the OpenAI wire format (`openai/...`, `hosted_vllm/...`, the
`local/...` llama.cpp server), litellm wraps the same SDK and adds per-call work we do not use:
logging objects and payloads, a price search on every response, its own response objects: twice
the SDK's CPU per call. What litellm knows is still used, looked up once and cached: how it
maps our parameters for a model (`max_tokens` becomes `max_completion_tokens` for reasoning
models, parameters a model refuses are dropped) and its price data and cost rules.

Other providers (anthropic, gemini, ollama...) keep going through litellm.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import weakref
from dataclasses import dataclass
from typing import Any

from evolve.operators.keys import LOCAL_PREFIX
from evolve.operators.litellm_loader import litellm_module


@dataclass(frozen=True)
class Route:
    """Where and how one model is called through the SDK."""

    provider: str         # litellm's provider name, for its parameter mapping and prices
    wire_model: str       # the model name the server is sent
    base_url: str | None  # None: the SDK's default (OPENAI_BASE_URL, else OpenAI's own)
    api_key: str


class MalformedResponse(Exception):
    """The server answered 200 with a body that is not a chat completion."""


def route_for(name: str, api_base: str | None, api_key: str | None) -> Route | None:
    """How to call `name` through the SDK, or None when litellm must (another provider, or a
    `hosted_vllm/` model with no server address). `api_key` is the one the client resolved
    (None: the provider's default environment variable)."""
    provider, _, rest = name.partition("/")
    if not rest:
        return None  # a bare name: litellm guesses the provider, we do not
    if name.startswith(LOCAL_PREFIX):
        return Route("openai", rest, api_base, api_key or "sk-local-no-key")
    if provider == "openai":
        base = api_base or os.environ.get("OPENAI_BASE_URL") or os.environ.get("OPENAI_API_BASE")
        return Route("openai", rest, base,
                     api_key or os.environ.get("OPENAI_API_KEY") or "sk-no-key-needed")
    if provider == "hosted_vllm":
        base = api_base or os.environ.get("HOSTED_VLLM_API_BASE")
        if not base:
            return None
        return Route("hosted_vllm", rest, base,
                     api_key or os.environ.get("HOSTED_VLLM_API_KEY") or "fake-api-key")
    return None


@functools.lru_cache(maxsize=256)
def _wire_params(provider: str, model: str, temperature: float | None,
                 max_tokens: int) -> tuple[tuple[str, Any], ...]:
    """litellm's mapping of (temperature, max_tokens) for this model, as sent on the wire."""
    litellm_module()
    from litellm.utils import get_optional_params

    try:
        params = get_optional_params(model=model, custom_llm_provider=provider,
                                     temperature=temperature, max_tokens=max_tokens,
                                     drop_params=True)
    except Exception:  # a mapping litellm cannot make: send them as given, the server decides
        params = {"temperature": temperature, "max_tokens": max_tokens}
    params.pop("stream", None)
    if not params.get("extra_body"):
        params.pop("extra_body", None)
    return tuple((k, v) for k, v in params.items() if v is not None)


def wire_params(route: Route, temperature: float | None, max_tokens: int) -> dict[str, Any]:
    return dict(_wire_params(route.provider, route.wire_model, temperature, max_tokens))


_NOT_PRICED = object()


@functools.lru_cache(maxsize=256)
def _price_entry(provider: str, model: str) -> Any:
    """litellm's model info for this model (its prices), found once; `_NOT_PRICED` if none."""
    try:
        info = litellm_module().get_model_info(model=model, custom_llm_provider=provider)
    except Exception:  # litellm raises for a model missing from its table
        return _NOT_PRICED
    if not info.get("input_cost_per_token") and not info.get("output_cost_per_token"):
        return _NOT_PRICED  # mapped but without a price: not a known cost of 0
    return info


def litellm_cost(route: Route, usage: dict[str, Any]) -> float | None:
    """USD for a call's `usage` (the response's usage object, as JSON) by litellm's own cost
    rules (cached input tokens, long-context tiers) on its price data; None if unpriced."""
    info = _price_entry(route.provider, route.wire_model)
    if info is _NOT_PRICED:
        return None
    from litellm import Usage
    from litellm.litellm_core_utils.llm_cost_calc.utils import generic_cost_per_token

    try:
        prompt, completion = generic_cost_per_token(
            model=route.wire_model, usage=Usage(**usage), custom_llm_provider=route.provider,
            model_info=info)
    except Exception:  # a usage shape litellm cannot price: unknown, never a pretend 0
        return None
    return float(prompt + completion)


@functools.cache
def _ssl_context() -> Any:
    """The TLS settings every client would build for itself (httpx's defaults: the CA bundle,
    or SSL_CERT_FILE / SSL_CERT_DIR), built once per process: loading the CA bundle costs tens
    of milliseconds of CPU, at each client's first call."""
    import httpx

    return httpx.create_ssl_context()


def _http_client() -> Any:
    """The SDK's aiohttp transport (the `httpx-aiohttp` package): a quarter less CPU per call
    than its default httpx one. None (the default) where that package is missing."""
    import openai

    try:
        return openai.DefaultAioHttpClient(verify=_ssl_context())
    except RuntimeError:  # "requires the aiohttp extra"
        return None


class SDKClients:
    """One `AsyncOpenAI` per (event loop, server, key), reused across calls: building a client
    costs more than a call, and its connection pool belongs to the loop it was used on."""

    def __init__(self) -> None:
        self._by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop,
                                                 dict[tuple[str | None, str], Any]] = \
            weakref.WeakKeyDictionary()

    def get(self, route: Route) -> Any:
        clients = self._by_loop.setdefault(asyncio.get_running_loop(), {})
        key = (route.base_url, route.api_key)
        client = clients.get(key)
        if client is None or client.is_closed():
            import openai

            # max_retries=0: the LLM client retries itself, so that every attempt is recorded.
            client = openai.AsyncOpenAI(base_url=route.base_url, api_key=route.api_key,
                                        max_retries=0, http_client=_http_client())
            clients[key] = client
        return client

    async def aclose(self) -> None:
        """Close the clients of the running loop (their connections)."""
        clients = self._by_loop.pop(asyncio.get_running_loop(), {})
        for client in clients.values():
            await client.close()


@dataclass
class Completion:
    text: str
    finish_reason: str | None
    usage: dict[str, Any] | None


async def chat(client: Any, route: Route, messages: list[dict[str, Any]],
               temperature: float | None, max_tokens: int, timeout: float) -> Completion:
    """One chat completion; raises the SDK's errors (status, connection, timeout), or
    `MalformedResponse`.

    Sent with the client's generic `post` and read as plain JSON: `chat.completions.create`
    walks the messages against its typed schema before sending and builds typed objects from
    the answer, a quarter of a call's CPU, for the few plain fields we send and keep."""
    import httpx

    body: dict[str, Any] = {"model": route.wire_model, "messages": messages,
                            **wire_params(route, temperature, max_tokens)}
    body.update(body.pop("extra_body", None) or {})
    raw = await client.post("/chat/completions", cast_to=httpx.Response, body=body,
                            options={"timeout": timeout})
    try:
        answer = json.loads(raw.content)
    except ValueError as exc:
        raise MalformedResponse(f"the server's reply is not JSON ({exc}): "
                                f"{raw.content[:200]!r}") from None
    choices = answer.get("choices") if isinstance(answer, dict) else None
    if not isinstance(choices, list):
        raise MalformedResponse(f"the server's reply is not a chat completion: {answer!r:.300}")
    choice = choices[0] if choices and isinstance(choices[0], dict) else {}
    message = choice.get("message") or {}
    usage = answer.get("usage")
    return Completion(text=message.get("content") or "",
                      finish_reason=choice.get("finish_reason"),
                      usage=usage if isinstance(usage, dict) else None)

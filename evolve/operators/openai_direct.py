"""Calls to OpenAI-compatible endpoints through the `openai` SDK's async client, not litellm.

For a provider that already speaks the OpenAI wire format (`openai/...`, `hosted_vllm/...`, the
`local/...` llama.cpp server), litellm wraps the same SDK and adds per-call work we do not use:
logging objects and payloads, a price search on every response, its own response objects: twice
the SDK's CPU per call. What litellm knows is still used, looked up once and cached: how it
maps our parameters for a model (`max_tokens` becomes `max_completion_tokens` for reasoning
models, parameters a model refuses are dropped) and its price data and cost rules.

The request itself goes out on one `aiohttp` session per event loop, not through the SDK's
request machinery: its options, header merging, httpx request and response objects and cookie
handling cost more CPU than the HTTP exchange (1.6 against 0.7 ms per call here). The SDK
client still gives what it decides: the base URL (OPENAI_BASE_URL...), the headers it would
send (key, organisation, project, user agent) and its error types, made by its own code from
the server's answer, so a failed call reads and is retried as it was through the SDK.

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
    """The TLS settings an SDK client builds for itself (httpx's defaults: the CA bundle, or
    SSL_CERT_FILE / SSL_CERT_DIR), built once per process: loading the CA bundle costs tens of
    milliseconds of CPU."""
    import httpx

    return httpx.create_ssl_context()


# The SDK's limit on connections to a server (openai.DEFAULT_CONNECTION_LIMITS), kept.
_MAX_CONNECTIONS = 1000
_TRANSFER_HEADERS = {"content-encoding", "content-length", "transfer-encoding"}


def _environment_proxy(url: str) -> str | None:
    """The proxy the environment names for `url` (HTTPS_PROXY, HTTP_PROXY, ALL_PROXY, unless
    NO_PROXY covers its host), as the SDK's httpx client takes them; found once per server
    (aiohttp's own `trust_env` would also look for a .netrc on every request, on a thread)."""
    import urllib.request
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if not parts.hostname or urllib.request.proxy_bypass(parts.hostname):
        return None
    proxies = urllib.request.getproxies()
    return proxies.get(parts.scheme) or proxies.get("all") or None


class Endpoint:
    """One server and key: where a chat completion is posted, with which headers, on the event
    loop's session, and the SDK client whose error types a failed call raises."""

    def __init__(self, sdk: Any, session: Any):
        self.sdk = sdk
        self.session = session
        self.url = str(sdk.base_url) + "chat/completions"  # the SDK keeps a trailing "/"
        # What the SDK sends with every request, found once (Omit markers left out).
        headers = {**sdk.default_headers, **sdk.auth_headers}
        self.headers = {k: v for k, v in headers.items() if isinstance(v, str)}
        self.proxy = _environment_proxy(self.url)

    def is_closed(self) -> bool:
        return self.session.closed or self.sdk.is_closed()

    def _request(self) -> Any:
        import httpx

        return httpx.Request("POST", self.url, headers=self.headers)

    async def post(self, body: dict[str, Any], timeout: float) -> bytes:
        """The body of a 2xx answer; raises the SDK's errors as its client would:
        `APITimeoutError`, `APIConnectionError` (the transport's error as the cause), or the
        status error for the code (`RateLimitError`...) with the server's headers and body."""
        import aiohttp
        import openai

        try:
            async with self.session.post(self.url, data=json.dumps(body).encode(),
                                         headers=self.headers, proxy=self.proxy,
                                         timeout=aiohttp.ClientTimeout(total=timeout)) as answer:
                content = await answer.read()
                status = answer.status
                # The body comes decoded: what said how it was sent is left out.
                headers = [(k, v) for k, v in answer.headers.items()
                           if k.lower() not in _TRANSFER_HEADERS] if status >= 300 else []
        except TimeoutError as exc:  # aiohttp's timeouts are TimeoutErrors
            raise openai.APITimeoutError(request=self._request()) from exc
        except Exception as exc:  # as the SDK: any other failure to get an answer
            raise openai.APIConnectionError(request=self._request()) from exc
        if status >= 300:
            import httpx

            response = httpx.Response(status, headers=headers, content=content,
                                      request=self._request())
            raise self.sdk._make_status_error_from_response(response)
        return content


class SDKClients:
    """Per event loop: one `aiohttp` session (its connection pool belongs to the loop it was
    used on) and one `Endpoint` per (server, key), reused across calls."""

    def __init__(self) -> None:
        self._by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop,
                                                 dict[tuple[str | None, str], Endpoint]] = \
            weakref.WeakKeyDictionary()
        self._sessions: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = \
            weakref.WeakKeyDictionary()

    def _session(self, loop: asyncio.AbstractEventLoop) -> Any:
        session = self._sessions.get(loop)
        if session is None or session.closed:
            import aiohttp

            # Proxies from the environment: per endpoint (`_environment_proxy`).
            session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=_MAX_CONNECTIONS, ssl=_ssl_context()))
            self._sessions[loop] = session
        return session

    def get(self, route: Route) -> Endpoint:
        loop = asyncio.get_running_loop()
        endpoints = self._by_loop.setdefault(loop, {})
        key = (route.base_url, route.api_key)
        endpoint = endpoints.get(key)
        if endpoint is None or endpoint.is_closed():
            import openai

            # max_retries=0: the LLM client retries itself, so that every attempt is recorded.
            # It never sends (its httpx client is made with the shared TLS settings: cheap).
            sdk = openai.AsyncOpenAI(base_url=route.base_url, api_key=route.api_key,
                                     max_retries=0, http_client=openai.DefaultAsyncHttpxClient(
                                         verify=_ssl_context()))
            endpoint = endpoints[key] = Endpoint(sdk, self._session(loop))
        return endpoint

    async def aclose(self) -> None:
        """Close the running loop's session (its connections) and SDK clients."""
        loop = asyncio.get_running_loop()
        session = self._sessions.pop(loop, None)
        if session is not None:
            await session.close()
        for endpoint in self._by_loop.pop(loop, {}).values():
            await endpoint.sdk.close()


@dataclass
class Completion:
    text: str
    finish_reason: str | None
    usage: dict[str, Any] | None


async def chat(endpoint: Endpoint, route: Route, messages: list[dict[str, Any]],
               temperature: float | None, max_tokens: int, timeout: float) -> Completion:
    """One chat completion; raises the SDK's errors (status, connection, timeout), or
    `MalformedResponse`.

    The answer is read as plain JSON: the SDK's `chat.completions.create` walks the messages
    against its typed schema before sending and builds typed objects from the answer, a
    quarter of a call's CPU, for the few plain fields we send and keep."""
    body: dict[str, Any] = {"model": route.wire_model, "messages": messages,
                            **wire_params(route, temperature, max_tokens)}
    body.update(body.pop("extra_body", None) or {})
    content = await endpoint.post(body, timeout)
    try:
        answer = json.loads(content)
    except ValueError as exc:
        raise MalformedResponse(f"the server's reply is not JSON ({exc}): "
                                f"{content[:200]!r}") from None
    choices = answer.get("choices") if isinstance(answer, dict) else None
    if not isinstance(choices, list):
        raise MalformedResponse(f"the server's reply is not a chat completion: {answer!r:.300}")
    choice = choices[0] if choices and isinstance(choices[0], dict) else {}
    message = choice.get("message") or {}
    usage = answer.get("usage")
    return Completion(text=message.get("content") or "",
                      finish_reason=choice.get("finish_reason"),
                      usage=usage if isinstance(usage, dict) else None)

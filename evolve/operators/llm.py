"""LLM client: retries with backoff, a hard per-proposal deadline, and a record of every
attempt (failed ones too) with tokens, cost and latency. Providers are reached through litellm,
except OpenAI-compatible endpoints, which go through the `openai` SDK directly
(`openai_direct`: a third of litellm's CPU per call) with litellm's parameter mapping and prices.

The client never writes to the archive itself: the controller is the single writer, so every
`LLMReply` carries its `LLMCallRecord`s and the controller stores them.

Retries happen here, with litellm's and the OpenAI SDK's own retries switched off, so that each
attempt is visible and recorded, and so that the proposal deadline bounds the whole thing.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
from dataclasses import dataclass, field
from typing import Any

from evolve.config import LLMConfig, ModelConfig, PriceConfig
from evolve.operators import openai_direct
from evolve.operators.keys import LOCAL_PREFIX, missing_key, missing_key_message
from evolve.operators.litellm_loader import litellm_loaded, litellm_module
from evolve.operators.openai_direct import SDKClients
from evolve.operators.spend import BudgetRefused, SpendLedger, price_for

# Providers spoken through the OpenAI wire format, which refuse to start without some api key
# even when the server behind api_base needs none.
_OPENAI_COMPATIBLE = ("openai/", "hosted_vllm/", LOCAL_PREFIX)
_RETRYABLE_STATUS = {408, 409, 425, 429, 500, 502, 503, 504, 520, 522, 524, 529}

@dataclass
class LLMCallRecord:
    """One attempt at one LLM call, as the archive stores it."""

    model: str
    prompt: str  # the messages, as JSON text
    response: str | None
    tokens_in: int | None
    tokens_out: int | None
    cost_usd: float | None  # None = unknown (never a pretend 0)
    latency_s: float
    error: str | None  # None = this attempt succeeded
    finish_reason: str | None
    temperature: float | None = None

    def archive_fields(self) -> dict[str, Any]:
        """Keyword arguments for `Archive.record_llm_call` (besides run_id and purpose)."""
        # Not dataclasses.asdict: it deep-copies every field, the prompt text included.
        return {"model": self.model, "prompt": self.prompt, "response": self.response,
                "tokens_in": self.tokens_in, "tokens_out": self.tokens_out,
                "cost_usd": self.cost_usd, "latency_s": self.latency_s, "error": self.error,
                "finish_reason": self.finish_reason}


@dataclass
class LLMReply:
    text: str
    finish_reason: str | None
    calls: list[LLMCallRecord] = field(default_factory=list)
    ok: bool = True
    refused: str | None = None  # a budget refused the next call (nothing was sent for it)

    @property
    def error(self) -> str | None:
        if self.refused is not None:
            return f"BudgetReached: {self.refused}"
        return self.calls[-1].error if self.calls else "no call was made"

    @property
    def cost_usd(self) -> float | None:
        """Total over attempts; None when any attempt's cost is unknown."""
        costs = [c.cost_usd for c in self.calls]
        return None if any(c is None for c in costs) else float(sum(costs))  # type: ignore[arg-type]


class _Attempt:
    """What one attempt produced, before it becomes a record."""

    def __init__(self) -> None:
        self.text: str | None = None
        self.finish_reason: str | None = None
        self.tokens_in: int | None = None
        self.tokens_out: int | None = None
        self.cost_usd: float | None = None
        self.error: str | None = None
        self.retryable = False
        self.retry_after_s: float | None = None


def litellm_model_name(name: str) -> str:
    """Our model name to litellm's: `local/x` is an OpenAI-compatible server on 127.0.0.1."""
    if name.startswith(LOCAL_PREFIX):
        return "openai/" + name[len(LOCAL_PREFIX):]
    return name


# Models litellm's price table does not know: asking again would cost CPU on every call
# (litellm searches its whole table) and answer the same.
_UNPRICED_BY_LITELLM: set[str] = set()


def _litellm_knows(model: str) -> bool:
    try:
        litellm_module().get_model_info(model)
    except Exception:  # litellm raises for a model missing from its table
        return False
    return True


def compute_cost(model: str, response: Any, tokens_in: int | None, tokens_out: int | None,
                 prices: dict[str, PriceConfig]) -> float | None:
    """USD for one completed call: the config's price table first, then litellm's; else None."""
    price = price_for(model, prices)
    if price is not None:
        if tokens_in is None or tokens_out is None:
            return None
        return (tokens_in * price.input_per_mtok + tokens_out * price.output_per_mtok) / 1e6
    name = litellm_model_name(model)
    if name in _UNPRICED_BY_LITELLM:
        return None
    try:
        cost = litellm_module().completion_cost(completion_response=response, model=name)
    except Exception:  # litellm raises for models missing from its price data
        if not _litellm_knows(name):
            _UNPRICED_BY_LITELLM.add(name)
        return None
    # litellm answers 0.0 for models it maps but has no price for; that is not a known cost.
    return float(cost) if cost else None


def count_prompt_tokens(model: str, messages: list[dict[str, Any]]) -> int:
    """Prompt tokens of a call, as litellm counts them for `model` (its tokenizer, else
    tiktoken's); a character count when that fails (never fewer tokens than that gives)."""
    try:
        return int(litellm_module().token_counter(model=litellm_model_name(model),
                                                  messages=messages))
    except Exception:  # an exotic message shape: fall back to an over-estimate
        return sum(len(str(m.get("content", ""))) for m in messages)


# litellm's table entries by model, found once: the ledger asks for a call's prices before
# every call, and litellm searches its whole table for each answer.
_MODEL_INFO: dict[str, dict[str, Any] | None] = {}


def model_info(model: str) -> dict[str, Any] | None:
    """litellm's table entry for `model` (prices per token), or None when it has none.
    The same dict every time: read it, do not change it."""
    name = litellm_model_name(model)
    if name not in _MODEL_INFO:
        try:
            _MODEL_INFO[name] = dict(litellm_module().get_model_info(name))
        except Exception:  # litellm raises for a model missing from its table
            _MODEL_INFO[name] = None
    return _MODEL_INFO[name]


def _prices_prompt(ledger: SpendLedger, model: str) -> bool:
    """Whether the ledger's reservation for `model` reads the prompt's size: only a dollar
    budget with a known price does, and counting tokens costs more CPU than the call."""
    return ledger.budget.max_usd is not None and ledger.unit_prices(model) is not None


def _root_cause(exc: BaseException) -> str:
    """What lies under an SDK error, as " (Type: text)": the SDK says only "Connection error."
    or "Request timed out.", and its aiohttp transport reports a refused connection as a
    timeout; the transport's own error names the host and what happened."""
    cause = exc
    while cause.__cause__ is not None and cause.__cause__ is not cause:
        cause = cause.__cause__
    text = str(cause).strip()
    if cause is exc or not text or text in str(exc):
        return ""
    return f" ({type(cause).__name__}: {text[:300]})"


def _status_code(exc: BaseException) -> int | None:
    code = getattr(exc, "status_code", None)
    return code if isinstance(code, int) else None


def _retry_after(exc: BaseException) -> float | None:
    """Seconds from a retry-after header, if the provider sent one."""
    for holder in (getattr(exc, "response", None), exc):
        headers = getattr(holder, "headers", None) or getattr(holder, "litellm_response_headers",
                                                               None)
        if not headers:
            continue
        try:
            value = headers.get("retry-after")
            if value is not None:
                return max(0.0, float(value))
        except (TypeError, ValueError, AttributeError):
            continue
    return None


def classify_error(exc: BaseException) -> tuple[str, bool]:
    """(error text, whether another attempt may succeed)."""
    litellm = litellm_module()
    name = type(exc).__name__
    text = f"{name}: {exc}".strip()
    transient = tuple(getattr(litellm, n) for n in (
        "RateLimitError", "Timeout", "APIConnectionError", "InternalServerError",
        "ServiceUnavailableError", "BadGatewayError") if hasattr(litellm, n))
    permanent = tuple(getattr(litellm, n) for n in (
        "AuthenticationError", "PermissionDeniedError", "NotFoundError", "BadRequestError",
        "ContextWindowExceededError", "ContentPolicyViolationError", "UnprocessableEntityError")
        if hasattr(litellm, n))
    if isinstance(exc, permanent):
        return text, False
    if isinstance(exc, (*transient, TimeoutError, ConnectionError)):
        return text, True
    code = _status_code(exc)
    return text, code is None or code in _RETRYABLE_STATUS


class LLMClient:
    """Calls LLMs: OpenAI-compatible endpoints through the `openai` SDK (`openai_direct`), every
    other provider through litellm. `complete` never raises for provider errors."""

    def __init__(self, models: list[ModelConfig], llm: LLMConfig, *,
                 rng: random.Random | None = None, ledger: SpendLedger | None = None) -> None:
        self.models = {m.name: m for m in models}
        self.llm = llm
        self.rng = rng or random.Random(0)
        self.ledger = ledger  # None = no budget to enforce (e.g. `evolve models check`)
        self._sdk_clients = SDKClients()

    async def aclose(self) -> None:
        """Close the SDK clients (their connections) this event loop opened."""
        await self._sdk_clients.aclose()

    def model_config(self, model: str) -> ModelConfig:
        return self.models.get(model) or ModelConfig(name=model)

    def _api_key(self, cfg: ModelConfig) -> tuple[str | None, str | None]:
        """(key to pass or None for the provider's default env var, error if a key is missing)."""
        if cfg.api_key_env:
            key = os.environ.get(cfg.api_key_env)
            if not key:
                return None, (f"MissingAPIKey: environment variable {cfg.api_key_env} is not "
                              f"set: export it with the API key for {cfg.name}")
            return key, None
        if cfg.name.startswith(LOCAL_PREFIX):
            if not cfg.api_base:
                return None, (f"NoServer: {cfg.name} has no api_base; start its server with "
                              f"evolve.operators.local_model.start_local_models (the run does this)")
            return "sk-local-no-key", None
        if cfg.api_base and cfg.name.startswith(_OPENAI_COMPATIBLE) and not os.environ.get(
                "OPENAI_API_KEY"):
            return "sk-no-key-needed", None
        variable = missing_key(cfg)
        if variable is not None:
            return None, f"MissingAPIKey: {missing_key_message(cfg, variable)}"
        return None, None

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        """Exponential backoff with equal jitter; a provider's retry-after is honoured."""
        cap = min(self.llm.backoff_max_s, self.llm.backoff_base_s * (2 ** attempt))
        delay = cap / 2 + self.rng.uniform(0, cap / 2)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.llm.backoff_max_s))
        return delay

    async def complete(self, model: str, messages: list[dict[str, Any]], *,
                       temperature: float | None = None,
                       max_tokens: int | None = None) -> LLMReply:
        cfg = self.model_config(model)
        prompt = json.dumps(messages, ensure_ascii=False)
        if not litellm_loaded():
            # The first import takes seconds: off the event loop, and before the deadline starts.
            await asyncio.to_thread(litellm_module)
        deadline = time.monotonic() + self.llm.proposal_deadline_s
        calls: list[LLMCallRecord] = []

        key, key_error = self._api_key(cfg)
        if key_error:
            calls.append(LLMCallRecord(model, prompt, None, None, None, 0.0, 0.0, key_error, None))
            return LLMReply("", None, calls, ok=False)

        prompt_tokens = None
        for attempt_no in range(self.llm.retries + 1):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            reservation = None
            if self.ledger is not None:
                if prompt_tokens is None:
                    prompt_tokens = (await asyncio.to_thread(count_prompt_tokens, model, messages)
                                     if _prices_prompt(self.ledger, model) else 0)
                waiting_since = time.monotonic()
                try:
                    reservation = await self.ledger.reserve_when_room(
                        model, prompt_tokens, max_tokens or cfg.max_tokens)
                except BudgetRefused as exc:
                    return LLMReply("", None, calls, ok=False, refused=str(exc))
                # Waiting for calls in flight to free the budget is not the provider's time.
                deadline += time.monotonic() - waiting_since
            temp = temperature if temperature is not None else self.rng.choice(cfg.temperatures)
            started = time.monotonic()
            try:
                result = await self._attempt(cfg, messages, temp, max_tokens or cfg.max_tokens,
                                             key, min(cfg.timeout_s, remaining), remaining)
            except BaseException:
                if reservation is not None and self.ledger is not None:
                    self.ledger.settle(reservation, None)  # cancelled: it may still be billed
                raise
            if reservation is not None and self.ledger is not None:
                self.ledger.settle(reservation, result.cost_usd)
            calls.append(LLMCallRecord(
                model=model, prompt=prompt, response=result.text, tokens_in=result.tokens_in,
                tokens_out=result.tokens_out, cost_usd=result.cost_usd,
                latency_s=time.monotonic() - started, error=result.error,
                finish_reason=result.finish_reason, temperature=temp))
            if result.error is None:
                return LLMReply(result.text or "", result.finish_reason, calls, ok=True)
            if not result.retryable or attempt_no == self.llm.retries:
                break
            delay = self._backoff(attempt_no, result.retry_after_s)
            if time.monotonic() + delay >= deadline:
                calls[-1].error += (f" (gave up: the next retry in {delay:.1f}s would pass the "
                                    f"{self.llm.proposal_deadline_s:g}s proposal deadline)")
                break
            await asyncio.sleep(delay)
        return LLMReply("", calls[-1].finish_reason if calls else None, calls, ok=False)

    async def _attempt(self, cfg: ModelConfig, messages: list[dict[str, Any]], temperature: float,
                       max_tokens: int, api_key: str | None, call_timeout: float,
                       hard_limit: float) -> _Attempt:
        route = (openai_direct.route_for(cfg.name, cfg.api_base, api_key)
                 if self.llm.openai_sdk else None)
        if route is not None:
            return await self._attempt_sdk(cfg, route, messages, temperature, max_tokens,
                                           call_timeout, hard_limit)
        return await self._attempt_litellm(cfg, messages, temperature, max_tokens, api_key,
                                           call_timeout, hard_limit)

    async def _attempt_sdk(self, cfg: ModelConfig, route: openai_direct.Route,
                           messages: list[dict[str, Any]], temperature: float, max_tokens: int,
                           call_timeout: float, hard_limit: float) -> _Attempt:
        """One attempt through the `openai` SDK; the same outcomes as `_attempt_litellm`."""
        out = _Attempt()
        client = self._sdk_clients.get(route)
        try:
            # wait_for is the hard stop: a server that ignores `timeout` cannot hang the run.
            reply = await asyncio.wait_for(
                openai_direct.chat(client, route, messages, temperature, max_tokens,
                                   call_timeout), timeout=hard_limit)
        except TimeoutError:
            return self._deadline_passed(out, hard_limit)
        except Exception as exc:  # every provider failure becomes a recorded attempt
            out.error, out.retryable = classify_error(exc)
            out.error += _root_cause(exc)
            out.retry_after_s = _retry_after(exc)
            # A request the server rejected with a status is not billed; a timeout, a dropped
            # connection or an unreadable answer may have been, so its cost stays unknown.
            out.cost_usd = 0.0 if _status_code(exc) is not None else None
            return out
        usage = reply.usage or {}
        out.tokens_in, out.tokens_out = usage.get("prompt_tokens"), usage.get("completion_tokens")
        out.text, out.finish_reason = reply.text, reply.finish_reason
        price = price_for(cfg.name, self.llm.prices)
        if out.tokens_in is None or out.tokens_out is None:
            out.cost_usd = None
        elif price is not None:
            out.cost_usd = (out.tokens_in * price.input_per_mtok
                            + out.tokens_out * price.output_per_mtok) / 1e6
        else:
            out.cost_usd = openai_direct.litellm_cost(route, usage)
        return self._check_text(out)

    def _deadline_passed(self, out: _Attempt, hard_limit: float) -> _Attempt:
        out.error = (f"Timeout: no answer within {hard_limit:.1f}s (proposal deadline "
                     f"{self.llm.proposal_deadline_s:g}s)")
        out.retryable = True
        return out

    @staticmethod
    def _check_text(out: _Attempt) -> _Attempt:
        """A reply without text is a failed attempt (its usage and cost still count)."""
        if not (out.text or "").strip():
            hint = (" (finish_reason=length: the output budget was used up; raise max_tokens)"
                    if out.finish_reason == "length" else "")
            out.error = f"EmptyResponse: the model returned no text{hint}"
            out.retryable = True
        return out

    async def _attempt_litellm(self, cfg: ModelConfig, messages: list[dict[str, Any]],
                               temperature: float, max_tokens: int, api_key: str | None,
                               call_timeout: float, hard_limit: float) -> _Attempt:
        litellm = litellm_module()
        out = _Attempt()
        kwargs: dict[str, Any] = {
            "model": litellm_model_name(cfg.name), "messages": messages,
            "temperature": temperature, "max_tokens": max_tokens, "timeout": call_timeout,
            "num_retries": 0, "max_retries": 0, "drop_params": True,
        }
        if cfg.api_base:
            kwargs["api_base"] = cfg.api_base
        if api_key:
            kwargs["api_key"] = api_key
        try:
            # wait_for is the hard stop: a provider that ignores `timeout` cannot hang the run.
            response = await asyncio.wait_for(litellm.acompletion(**kwargs), timeout=hard_limit)
        except TimeoutError:
            return self._deadline_passed(out, hard_limit)
        except Exception as exc:  # every provider failure becomes a recorded attempt
            out.error, out.retryable = classify_error(exc)
            out.retry_after_s = _retry_after(exc)
            # A request the provider rejected with a status is not billed; a timeout or a
            # dropped connection may have been, so its cost stays unknown.
            code = _status_code(exc)
            timeout_like = isinstance(exc, getattr(litellm, "Timeout", TimeoutError))
            out.cost_usd = 0.0 if code is not None and not timeout_like else None
            return out

        usage = getattr(response, "usage", None)
        out.tokens_in = getattr(usage, "prompt_tokens", None) if usage else None
        out.tokens_out = getattr(usage, "completion_tokens", None) if usage else None
        choice = response.choices[0] if getattr(response, "choices", None) else None
        message = getattr(choice, "message", None)
        out.text = (getattr(message, "content", None) or "") if message else ""
        out.finish_reason = getattr(choice, "finish_reason", None) if choice else None
        out.cost_usd = compute_cost(cfg.name, response, out.tokens_in, out.tokens_out,
                                    self.llm.prices)
        return self._check_text(out)

"""Embeddings for the novelty filter (evolve/patch/novelty.py), through litellm: which model
and server `novelty.embedding_model` names, and the calls, recorded like any LLM call."""

from __future__ import annotations

import os
import time
from typing import Any

from evolve.config import NoveltyConfig
from evolve.operators.litellm_loader import litellm_module
from evolve.patch.novelty import Embedder


def litellm_embedder(model: str, api_base: str | None = None,
                     api_key: str | None = None) -> Embedder:
    """An embedder through litellm; failures return no vector (the local check still applies)."""

    async def embed(text: str) -> tuple[list[float] | None, list[Any]]:
        litellm = litellm_module()

        start = time.perf_counter()
        record: dict[str, Any] = {"model": model, "prompt": text[:2000], "purpose": "embedding"}
        try:
            response = await litellm.aembedding(model=model, input=[text], api_base=api_base,
                                                api_key=api_key)
            vector = list(response.data[0]["embedding"])
            usage = getattr(response, "usage", None)
            record.update(response="", tokens_in=getattr(usage, "prompt_tokens", 0) or 0,
                          tokens_out=0, cost_usd=getattr(response, "_hidden_params", {}).get(
                              "response_cost"), error=None)
        except Exception as exc:  # an embedding failure must not stop the run
            vector = None
            record.update(response="", tokens_in=0, tokens_out=0, cost_usd=None,
                          error=f"{type(exc).__name__}: {exc}")
        record["latency_s"] = time.perf_counter() - start
        return vector, [record]

    return embed


def embedder_for(config: NoveltyConfig, models: list[Any]) -> Embedder | None:
    """The litellm embedder for `novelty.embedding_model` (api_base from
    `novelty.embedding_api_base`, else from a configured operator of the same name), or None."""
    model = config.embedding_model
    if not model:
        return None
    cfg = next((m for m in models if m.name == model), None)
    api_base = config.embedding_api_base or (cfg.api_base if cfg is not None else None)
    api_key = os.environ.get(cfg.api_key_env) if cfg is not None and cfg.api_key_env else None
    if api_key is None and api_base:  # an OpenAI-compatible server that needs no key
        api_key = "sk-no-key-needed"
    return litellm_embedder(model, api_base, api_key)

"""Which environment variable holds a model's API key, and whether it is set.

Checked before a run starts (and by `evolve models check`), so a missing key is one line and
exit 2, not a run directory, an evaluated initial program and three failed calls. The common
providers are answered from the table below, without importing litellm (seconds); any other
provider is asked of litellm's `validate_environment`, and held to it only when the one thing
litellm misses is an API key (a cloud provider that may log in another way, AWS or Vertex
credentials, or a base URL, is left to the call itself).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from evolve.config import EvolveConfig, ModelConfig
from evolve.operators.litellm_loader import litellm_module

LOCAL_PREFIX = "local/"
# Where litellm reads each provider's key when the model's config names none; any one of a
# provider's variables will do, and the first is the one to tell the user about
# (tests/first_run/test_data_and_honesty.py checks this table against litellm's own answer).
PROVIDER_KEY_ENV: dict[str, tuple[str, ...]] = {
    "openai": ("OPENAI_API_KEY",), "anthropic": ("ANTHROPIC_API_KEY",),
    "gemini": ("GEMINI_API_KEY", "GOOGLE_API_KEY"), "deepseek": ("DEEPSEEK_API_KEY",),
    "mistral": ("MISTRAL_API_KEY",), "groq": ("GROQ_API_KEY",),
    "openrouter": ("OPENROUTER_API_KEY",), "together_ai": ("TOGETHERAI_API_KEY",),
    "xai": ("XAI_API_KEY",), "fireworks_ai": ("FIREWORKS_AI_API_KEY",),
}


def key_envs_for(model: str) -> tuple[str, ...]:
    """The variables any one of which holds `model`'s key; () when none is known to be needed
    (a bare name: litellm guesses the provider, we do not)."""
    if "/" not in model or model.startswith(LOCAL_PREFIX):
        return ()
    provider = model.split("/", 1)[0]
    if provider in PROVIDER_KEY_ENV:
        return PROVIDER_KEY_ENV[provider]
    return _litellm_key_envs(model)


def key_env_for(model: str) -> str | None:
    """The variable to name when `model`'s key is missing, if one is known."""
    names = key_envs_for(model)
    return names[0] if names else None


def _litellm_key_envs(model: str) -> tuple[str, ...]:
    try:
        missing = litellm_module().validate_environment(model=model).get("missing_keys") or []
    except Exception:  # an unknown provider: the call itself will say so
        return ()
    keys = tuple(name for name in missing if name.endswith("_API_KEY"))
    return keys if keys and len(keys) == len(missing) else ()


def missing_key(model: ModelConfig, environ: Mapping[str, str] | None = None) -> str | None:
    """The variable that must be set before `model` can be called, or None when it can be.
    A model behind an api_base (a server of one's own) needs no provider key."""
    env = os.environ if environ is None else environ
    if model.api_key_env:
        return None if env.get(model.api_key_env) else model.api_key_env
    if model.api_base or model.name.startswith(LOCAL_PREFIX):
        return None
    names = key_envs_for(model.name)
    if not names or any(env.get(name) for name in names):
        return None
    return names[0]


def missing_key_message(model: ModelConfig, variable: str) -> str:
    return (f"{model.name} needs an API key: environment variable {variable} is not set; "
            f"export {variable}=... (or name another variable with api_key_env in the "
            f"model's config)")


def models_of(config: EvolveConfig) -> list[ModelConfig]:
    """Every model a run of `config` may call: its operators, the novelty judge and embedding
    model, the scratchpad's model (each as configured among the operators, when it is one)."""
    by_name = {m.name: m for m in config.operators.models}
    found = list(config.operators.models)
    scratchpad = config.scratchpad.model if config.scratchpad.enabled else None
    for name in (config.novelty.judge_model, scratchpad):
        if name and name not in by_name:
            found.append(ModelConfig(name=name))
    embedding = config.novelty.embedding_model
    if embedding:
        known = by_name.get(embedding) or ModelConfig(name=embedding)
        base = config.novelty.embedding_api_base or known.api_base
        found.append(known.model_copy(update={"api_base": base}))
    return found


def first_missing_key(models: list[ModelConfig]) -> str | None:
    """One line naming the first model whose key is missing and the variable to set, or None."""
    for model in models:
        variable = missing_key(model)
        if variable is not None:
            return missing_key_message(model, variable)
    return None

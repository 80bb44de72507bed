"""Which mutation operators a run uses, when the user names none, and the offline operators.

Order of preference: models in the configuration, else a provider whose API key is in the
environment, else an Ollama server answering on 127.0.0.1:11434, else the built-in offline
operators. The choice comes with one line that says what was chosen and how to pick an LLM.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from evolve.config import ConfigError, EvolveConfig, ModelConfig, OperatorsConfig
from evolve.operators.offline import NoChange, SwapOperator, TuneOperator
from evolve.operators.offline import make_offline_operator as _make_local_operator
from evolve.operators.reshape import ReshapeOperator, StructureOperator

__all__ = ["NoChange", "OFFLINE_OPERATORS", "OperatorChoice", "PROVIDER_DEFAULTS",
           "SwapOperator", "TuneOperator", "make_offline_operator", "probe_ollama",
           "resolve_operators"]

OLLAMA_URL = "http://127.0.0.1:11434"
# A provider key in the environment -> a small, cheap, capable default model of that provider.
PROVIDER_DEFAULTS: tuple[tuple[str, str], ...] = (
    ("OPENAI_API_KEY", "openai/gpt-4.1-mini"),
    ("ANTHROPIC_API_KEY", "anthropic/claude-haiku-4-5"),
    ("GEMINI_API_KEY", "gemini/gemini-2.5-flash"),
    ("DEEPSEEK_API_KEY", "deepseek/deepseek-chat"),
    ("MISTRAL_API_KEY", "mistral/codestral-latest"),
)
# Offline operator names; `optimise` is imported on first use (Optuna takes a while to import).
OFFLINE_OPERATORS: tuple[str, ...] = ("optimise", "tune", "swap", "reshape", "structure")
HOW_TO_USE_AN_LLM = ("to use an LLM, pass --model openai/gpt-4.1-mini with OPENAI_API_KEY set "
                     "(or anthropic/..., gemini/...), or --model openai/<name> --api-base "
                     "http://HOST:PORT/v1 for any OpenAI-compatible server")


def make_offline_operator(name: str) -> Any:
    """A fresh offline operator by name: optimise (model-based constants), tune, swap,
    reshape (neutral scales/offsets on comparisons, guard clauses moved), structure (swap and
    reshape in one arm)."""
    if name == "optimise":
        from evolve.operators.optimise import OptimiseOperator  # lazy: Optuna imports slowly

        return OptimiseOperator()
    if name in ("reshape", "structure"):
        return ReshapeOperator() if name == "reshape" else StructureOperator()
    if name not in OFFLINE_OPERATORS:
        raise ValueError(f"unknown offline operator {name!r}; choose from "
                         f"{', '.join(OFFLINE_OPERATORS)}")
    return _make_local_operator(name)


@dataclass
class OperatorChoice:
    models: list[ModelConfig]
    offline: list[Any] = field(default_factory=list)
    message: str = ""
    source: str = "config"  # config | environment | ollama | offline

    @property
    def operator_names(self) -> list[str]:
        return [m.name for m in self.models] + [op.name for op in self.offline]


def probe_ollama(url: str = OLLAMA_URL, timeout_s: float = 0.5) -> list[str]:
    """Model names an Ollama server lists, or [] when none answers quickly."""
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/api/tags", timeout=timeout_s) as resp:
            payload = json.load(resp)
    except (OSError, urllib.error.URLError, ValueError):
        return []
    models = payload.get("models") if isinstance(payload, dict) else None
    return [m["name"] for m in models or [] if isinstance(m, dict) and m.get("name")]


def _pick_ollama_model(names: list[str]) -> str:
    """Prefer a code model, then a general instruct family known to write code."""
    for hint in ("coder", "code", "qwen", "llama", "mistral"):
        for name in names:
            if hint in name.lower():
                return name
    return names[0]


def resolve_operators(config: EvolveConfig | OperatorsConfig, *,
                      environ: Mapping[str, str] | None = None, ollama_url: str = OLLAMA_URL,
                      probe_timeout_s: float = 0.5) -> OperatorChoice:
    ops = config.operators if isinstance(config, EvolveConfig) else config
    env = os.environ if environ is None else environ
    offline_names = list(dict.fromkeys(ops.offline))

    models: list[ModelConfig] = []
    source, why = "config", ""
    if ops.models:
        models = list(ops.models)
        why = "configured"
    else:
        for key_env, model in PROVIDER_DEFAULTS:
            if env.get(key_env):
                models, source, why = [ModelConfig(name=model)], "environment", f"{key_env} is set"
                break
        else:
            names = probe_ollama(ollama_url, probe_timeout_s)
            if names:
                picked = _pick_ollama_model(names)
                models = [ModelConfig(name=f"ollama_chat/{picked}", api_base=ollama_url)]
                source, why = "ollama", f"Ollama answers on {ollama_url}"

    use_offline = ops.use_offline == "always" or (ops.use_offline == "auto" and not models)
    offline = [make_offline_operator(n) for n in offline_names] if use_offline else []
    if not models and not offline:
        raise ConfigError("no mutation operator available: operators.use_offline is 'never' (or "
                          "operators.offline is empty) and no LLM was found; "
                          + HOW_TO_USE_AN_LLM)

    names = ", ".join(m.name for m in models)
    offline_text = " + ".join(op.name for op in offline)
    if models and offline:
        message = f"operators: {names} ({why}) mixed with offline {offline_text}"
    elif models:
        message = f"operators: {names} ({why})"
    else:
        source = "offline"
        message = (f"operators: built-in offline {offline_text} (no model configured, no "
                   f"provider key in the environment, no Ollama on {ollama_url}); "
                   + HOW_TO_USE_AN_LLM)
    return OperatorChoice(models=models, offline=offline, message=message, source=source)

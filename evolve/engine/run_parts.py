"""Steps of assembling a run that need more than a line (evolve/engine/assemble.py calls them):
the operators frozen at the run's start, local model servers, the LLM client with its spend
ledger, the bandit's arms, and finding the run a resume continues."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from evolve.config import ConfigError, EvolveConfig, ModelConfig, to_toml
from evolve.engine.archive_thread import ArchiveThread
from evolve.engine.proposal import OfflineOperator
from evolve.engine.run_files import CONFIG_NAME, atomic_write, read_run_id
from evolve.operators.keys import LOCAL_PREFIX
from evolve.operators.llm import LLMClient, model_info
from evolve.operators.local_model import LocalModelError, start_local_models
from evolve.operators.registry import make_offline_operator
from evolve.operators.registry import resolve_operators as choose_operators
from evolve.operators.spend import SpendLedger, unit_prices_from
from evolve.select.bandit import Arm

OPERATORS_STATE = "operators"


def eval_slots(config: EvolveConfig) -> int:
    """M: evaluations at once (the config's, else one per core)."""
    return config.concurrency.evaluations or os.cpu_count() or 1


def make_arms(models: list[str], offline: list[str],
              mix: dict[str, float]) -> tuple[list[Arm], dict[str, float]]:
    """Arms = (model, mutation kind) for each kind with a positive weight, plus one arm per
    offline operator; the mix weights become the bandit's default weights."""
    arms, weights = [], {}
    kinds = [kind for kind, weight in mix.items() if weight > 0] or ["diff"]
    for model in models:
        for kind in kinds:
            arm = Arm(model, kind)
            arms.append(arm)
            weights[arm.label] = float(mix.get(kind, 1.0))
    for name in offline:
        arm = Arm(name, "offline")
        arms.append(arm)
        weights[arm.label] = 1.0
    return arms, weights


def resolve_operators(config: EvolveConfig, archive: Any, run_id: int,
                      log: Callable[[str], None]) -> tuple[list[ModelConfig],
                                                           list[OfflineOperator]]:
    """The operators of a run, frozen at its start: a resume uses exactly the same ones.
    Runs on the archive's thread."""
    stored = archive.get_state(run_id, OPERATORS_STATE)
    if stored is not None:
        models = [ModelConfig.model_validate(m) for m in stored["models"]]
        offline = [make_offline_operator(name) for name in stored["offline"]]
        return models, offline
    choice = choose_operators(config)
    log(choice.message)
    archive.set_state(run_id, OPERATORS_STATE, {
        "models": [m.model_dump(mode="json") for m in choice.models],
        "offline": [op.name for op in choice.offline], "source": choice.source})
    return list(choice.models), list(choice.offline)


def with_models(config: EvolveConfig, models: list[ModelConfig]) -> EvolveConfig:
    """A copy of `config` naming the run's resolved models (the caller's config is kept)."""
    copy = config.model_copy(deep=True)
    copy.operators.models = models
    return copy


def start_local_servers(models: list[ModelConfig], servers: contextlib.ExitStack,
                        log: Callable[[str], None]) -> list[ModelConfig]:
    """A `local/...` model without an api_base gets its llama.cpp server here, started after
    the operators were stored (so the archive keeps no port that dies with this process)."""
    if not any(m.name.startswith(LOCAL_PREFIX) and not m.api_base for m in models):
        return models
    try:
        return start_local_models(models, servers, lambda name: log(
            f"starting a llama.cpp server for {name} (stopped when the run ends)"))
    except LocalModelError as exc:
        raise ConfigError(str(exc)) from exc


async def make_llm(config: EvolveConfig, models: list[ModelConfig], archive: ArchiveThread,
                   run_id: int, log: Callable[[str], None]) -> LLMClient | None:
    """The LLM client of the run's models (None without models), with the run's spend
    ledger, starting from what the archive says was spent and called."""
    if not models:
        return None

    def warn(message: str, data: dict[str, Any]) -> None:
        log(f"warning: {message}")
        # Called from inside the LLM client (synchronous): queued, in order with the rest.
        archive.submit(archive.archive.add_event, run_id, "warning", message, data)

    ledger = SpendLedger(config.budget, unit_prices_from(config.llm.prices, model_info),
                         spent_usd=await archive.cost_so_far(run_id),
                         calls=(await archive.cost_summary(run_id)).calls, warn=warn)
    return LLMClient(models, config.llm, ledger=ledger)


def store_resumed_config(archive: Any, run_id: int, config: EvolveConfig, run_dir: Path) -> None:
    """A resume may change budgets (`--programs 210`): store the config it runs with, so
    `evolve status` and RUN_DIR/config.toml show the new limits, not the old ones."""
    text = to_toml(config)
    archive.set_run_config(run_id, text)
    atomic_write(run_dir / CONFIG_NAME, text)


def resume_run_id(archive: Any, run_dir: Path, run_id: int | None = None) -> int:
    """The run to continue: `run_id` if given, else the one RUN_DIR/run.json records, else the
    only run in the archive. A database shared by several runs needs one of the first two."""
    runs = archive.runs()
    if not runs:
        raise ConfigError(f"{run_dir} holds no run to resume; start one with `evolve run`")
    ids = [r.id for r in runs]
    wanted = run_id if run_id is not None else read_run_id(run_dir)
    if wanted is None:
        if len(ids) > 1:
            raise ConfigError(f"{archive.where} holds runs {', '.join(map(str, ids))} and "
                              f"{run_dir} does not record which is its own; pick one with "
                              f"--run-id N")
        return ids[0]
    if wanted not in ids:
        raise ConfigError(f"run {wanted} is not in {archive.where} (it holds runs "
                          f"{', '.join(map(str, ids))}); check --run-id or the archive url")
    return wanted

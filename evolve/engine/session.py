"""Assembling a run from its parts (problem, archive, sandbox executor, operators, bandit) and
driving the controller, for `evolve run` and `evolve resume` (and for tests and benchmarks).

Ctrl-C (SIGINT) or SIGTERM once: stop proposing, finish what is in flight, exit cleanly.
A second Ctrl-C: cancel in-flight work and exit at once (the run can be resumed).
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evolve.config import ConfigError, EvolveConfig, ModelConfig, load_config
from evolve.engine.controller import Controller
from evolve.engine.errors import RunCannotWork
from evolve.engine.run_files import ARCHIVE_NAME, CONFIG_NAME, ProgressSnapshot, run_lock

OPERATORS_STATE = "operators"


@dataclass
class RunOutcome:
    run_id: int
    run_dir: Path
    status: str
    best_score: float | None
    programs: int


def archive_location(config: EvolveConfig, run_dir: Path) -> str | Path:
    return config.archive.url or run_dir / ARCHIVE_NAME


def make_arms(models: list[str], offline: list[str], mix: dict[str, float]) -> tuple[list[Any], dict[str, float]]:
    """Arms = (model, mutation kind) for each kind with a positive weight, plus one arm per
    offline operator; the mix weights become the bandit's default weights."""
    from evolve.operators.bandit import Arm

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


def _resolve_operators(config: EvolveConfig, archive: Any, run_id: int,
                       log: Callable[[str], None]) -> tuple[list[ModelConfig], list[Any]]:
    """The operators of a run, frozen at its start: a resume uses exactly the same ones."""
    from evolve.operators.registry import make_offline_operator, resolve_operators

    stored = archive.get_state(run_id, OPERATORS_STATE)
    if stored is not None:
        models = [ModelConfig.model_validate(m) for m in stored["models"]]
        offline = [make_offline_operator(name) for name in stored["offline"]]
        return models, offline
    choice = resolve_operators(config)
    log(choice.message)
    archive.set_state(run_id, OPERATORS_STATE, {
        "models": [m.model_dump(mode="json") for m in choice.models],
        "offline": [op.name for op in choice.offline], "source": choice.source})
    return list(choice.models), list(choice.offline)


def _ledger(config: EvolveConfig, archive: Any, run_id: int,
            log: Callable[[str], None]) -> Any:
    """The run's spend ledger, starting from what the archive says was spent and called."""
    from evolve.operators.llm import model_info
    from evolve.operators.spend import SpendLedger, unit_prices_from

    def warn(message: str, data: dict[str, Any]) -> None:
        log(f"warning: {message}")
        archive.add_event(run_id, "warning", message, data)

    return SpendLedger(config.budget, unit_prices_from(config.llm.prices, model_info),
                       spent_usd=archive.cost_so_far(run_id),
                       calls=archive.cost_summary(run_id).calls, warn=warn)


async def run_session(config: EvolveConfig, run_dir: Path, *, resume: bool = False,
                      on_progress: Callable[[ProgressSnapshot], None] | None = None,
                      log: Callable[[str], None] = print, handle_signals: bool = True,
                      executor: Any | None = None) -> RunOutcome:
    """Start (or resume) the run in `run_dir` and drive it to its end."""
    from evolve.problem.discovery import find_problem

    problem = find_problem(config.problem)
    with run_lock(run_dir):
        return await _run_locked(config, run_dir, problem, resume=resume,
                                 on_progress=on_progress, log=log,
                                 handle_signals=handle_signals, executor=executor)


async def _run_locked(config: EvolveConfig, run_dir: Path, problem: Any, *, resume: bool,
                      on_progress: Callable[[ProgressSnapshot], None] | None,
                      log: Callable[[str], None], handle_signals: bool,
                      executor: Any | None) -> RunOutcome:
    from db import Archive
    from evolve.operators.bandit import Bandit

    archive = Archive.open(archive_location(config, run_dir))
    own_executor = executor is None
    if executor is None:
        from evaluators.executors import make_executor

        executor = make_executor(config.sandbox, config.concurrency)
    try:
        if resume:
            runs = archive.runs()
            if not runs:
                raise ConfigError(f"{run_dir} holds no run to resume; start one with `evolve run`")
            run_id = runs[-1].id
        else:
            from evolve.config import to_toml

            run_id = archive.create_run(problem=problem.name, config_toml=to_toml(config),
                                        seed=config.seed, isolation=executor.isolation)
        models, offline = _resolve_operators(config, archive, run_id, log)
        llm = None
        if models:
            from evolve.operators.llm import LLMClient

            llm = LLMClient(models, config.llm, ledger=_ledger(config, archive, run_id, log))
            config.operators.models = models  # the prompt builder reads max_tokens from them
        arms, weights = make_arms([m.name for m in models], [op.name for op in offline],
                                  dict(config.mutation.mix))
        bandit = Bandit(arms, config.bandit, default_weights=weights)
        controller = Controller(
            config, problem, archive, executor, run_dir, run_id=run_id, llm=llm, bandit=bandit,
            arms={a.label: a for a in arms}, offline={op.name: op for op in offline},
            on_progress=on_progress, log=log)
        try:
            if resume:
                await controller.start_resume()
            else:
                await controller.start_new()
        except RunCannotWork as exc:
            controller.abandon(str(exc))
            raise
        loop = asyncio.get_running_loop()
        installed = []
        if handle_signals:
            def on_signal() -> None:
                level = controller.stopping
                controller.request_stop("interrupted")
                log("stopping at once (in-flight work is dropped; `evolve resume` re-proposes it)"
                    if level >= 1 else "finishing in-flight work, then stopping "
                    "(Ctrl-C again to stop at once)")
            for sig in (signal.SIGINT, signal.SIGTERM):
                try:
                    loop.add_signal_handler(sig, on_signal)
                    installed.append(sig)
                except (NotImplementedError, RuntimeError):
                    pass
        try:
            status = await controller.run()
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)
        best = controller.best
        return RunOutcome(run_id, run_dir, status, best.score if best else None,
                          controller.programs_done)
    finally:
        if own_executor:
            await executor.aclose()
        archive.close()


def load_run_config(run_dir: Path, overrides: list[str] = ()) -> EvolveConfig:  # type: ignore[assignment]
    """A run's stored effective config (from the archive, else RUN_DIR/config.toml) + overrides."""
    import tomllib

    from db import Archive

    config_file = run_dir / CONFIG_NAME
    base: dict[str, Any] = {}
    if config_file.is_file():
        base = tomllib.loads(config_file.read_text())
    url = (base.get("archive") or {}).get("url") or run_dir / ARCHIVE_NAME
    if isinstance(url, Path) and not url.is_file():
        raise ConfigError(f"{run_dir} has no {ARCHIVE_NAME}; is it a run directory? "
                          f"(start a run with `evolve run PROBLEM --run-dir {run_dir}`)")
    with Archive.open(url, create=False) as archive:
        runs = archive.runs()
        if runs:
            base = tomllib.loads(runs[-1].config_toml)
    return load_config(None, overrides, base=base)

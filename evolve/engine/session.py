"""Assembling a run from its parts (problem, archive, sandbox executor, operators, bandit) and
driving the controller, for `evolve run` and `evolve resume` (and for tests and benchmarks).

Ctrl-C (SIGINT) or SIGTERM once: stop proposing, finish what is in flight, exit cleanly.
A second Ctrl-C: cancel in-flight work and exit at once (the run can be resumed).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evolve.config import ConfigError, EvolveConfig, ModelConfig, load_config
from evolve.engine.archive_thread import ArchiveThread
from evolve.engine.controller import Controller
from evolve.engine.errors import RunCannotWork
from evolve.engine.heartbeat import Heartbeat
from evolve.engine.run_files import (
    ARCHIVE_NAME,
    CONFIG_NAME,
    ProgressSnapshot,
    read_run_id,
    run_lock,
    write_run_id,
)

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


def attach_history(offline: list[Any], controller: Controller) -> None:
    """Operators that learn from the run's programs (`optimise`) read the controller's
    committed programs (through getters: a resume replaces the dict and the window)."""
    from evolve.engine.proposal import HistoryOperator

    for op in offline:
        if isinstance(op, HistoryOperator):
            op.attach_history(lambda: controller.committed, lambda: controller.window)


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


async def _ledger(config: EvolveConfig, archive: ArchiveThread, run_id: int,
                  log: Callable[[str], None]) -> Any:
    """The run's spend ledger, starting from what the archive says was spent and called."""
    from evolve.operators.llm import model_info
    from evolve.operators.spend import SpendLedger, unit_prices_from

    def warn(message: str, data: dict[str, Any]) -> None:
        log(f"warning: {message}")
        # Called from inside the LLM client (synchronous): queued, in order with the rest.
        archive.submit(archive.archive.add_event, run_id, "warning", message, data)

    return SpendLedger(config.budget, unit_prices_from(config.llm.prices, model_info),
                       spent_usd=await archive.cost_so_far(run_id),
                       calls=(await archive.cost_summary(run_id)).calls, warn=warn)


async def run_session(config: EvolveConfig, run_dir: Path, *, resume: bool = False,
                      on_progress: Callable[[ProgressSnapshot], None] | None = None,
                      log: Callable[[str], None] = print, handle_signals: bool = True,
                      executor: Any | None = None, run_id: int | None = None) -> RunOutcome:
    """Start (or resume) the run in `run_dir` and drive it to its end. A resume continues the
    run recorded in RUN_DIR/run.json (or `run_id`), never just the newest in a shared database."""
    from evolve.problem.discovery import find_problem

    problem = find_problem(config.problem)
    _sweep_stale_sandboxes(log)
    # `servers` holds the llama.cpp servers of `local/...` models: they live as long as the run.
    with run_lock(run_dir), contextlib.ExitStack() as servers:
        return await _run_locked(config, run_dir, problem, resume=resume,
                                 on_progress=on_progress, log=log,
                                 handle_signals=handle_signals, executor=executor,
                                 servers=servers, run_id=run_id)


async def _run_locked(config: EvolveConfig, run_dir: Path, problem: Any, *, resume: bool,
                      on_progress: Callable[[ProgressSnapshot], None] | None,
                      log: Callable[[str], None], handle_signals: bool,
                      executor: Any | None, servers: contextlib.ExitStack,
                      run_id: int | None = None) -> RunOutcome:
    from db import Archive
    from evolve.operators.bandit import Bandit

    archive = Archive.open(archive_location(config, run_dir))
    # From here on the archive is called only on its own thread (the loop never blocks on it).
    store = ArchiveThread(archive)
    own_executor = executor is None
    if executor is None:
        from evaluators.executors import make_executor

        try:
            executor = make_executor(config.sandbox, config.concurrency, config.executor)
        except (ConnectionError, ImportError) as exc:
            store.close()
            archive.close()
            raise ConfigError(f"executor '{config.executor.kind}': {exc}") from exc
    heartbeat: Heartbeat | None = None
    # The run's first lines say what candidates can reach at this isolation level.
    log(f"sandbox: {getattr(executor, 'isolation_description', executor.isolation)}")
    gpu_plan = getattr(executor, "gpu_plan", None)
    if gpu_plan is not None and problem.gpu != "none":  # which sandbox.gpu rule applies
        log(gpu_plan(problem).line(problem.name))
    try:
        preflight = getattr(executor, "preflight", None)
        if preflight is not None:  # e.g. a GPU problem on a cluster without GPUs: fail now
            try:
                preflight(problem)
            except ValueError as exc:
                raise ConfigError(str(exc)) from exc
        if resume:
            run_id = await store.call(resume_run_id, archive, run_dir, run_id)
            await store.call(_store_resumed_config, archive, run_id, config, run_dir)
        else:
            from evolve.config import to_toml

            run_id = await store.create_run(problem=problem.name, config_toml=to_toml(config),
                                            seed=config.seed, isolation=executor.isolation)
            write_run_id(run_dir, run_id, archive.where)
        # From now on the run is alive as long as its heartbeat goes on (db/liveness.py).
        heartbeat = Heartbeat(store, archive, run_id)
        heartbeat.start()
        models, offline = await store.call(_resolve_operators, config, archive, run_id, log)
        models = _start_local_servers(models, servers, log)
        llm = None
        if models:
            from evolve.operators.llm import LLMClient

            llm = LLMClient(models, config.llm, ledger=await _ledger(config, store, run_id, log))
            config.operators.models = models  # the prompt builder reads max_tokens from them
        arms, weights = make_arms([m.name for m in models], [op.name for op in offline],
                                  dict(config.mutation.mix))
        bandit = Bandit(arms, config.bandit, default_weights=weights)
        on_progress = with_placement(on_progress, executor)
        controller = Controller(
            config, problem, store, executor, run_dir, run_id=run_id, llm=llm, bandit=bandit,
            arms={a.label: a for a in arms}, offline={op.name: op for op in offline},
            on_progress=on_progress, log=log)
        attach_history(offline, controller)
        try:
            if resume:
                await controller.start_resume()
            else:
                await controller.start_new()
        except RunCannotWork as exc:
            await controller.abandon(str(exc))
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
        if heartbeat is not None:
            await heartbeat.aclose()
        if own_executor:
            await executor.aclose()
        await store.aclose()  # every queued write is in before the archive closes
        archive.close()


def with_placement(on_progress: Callable[[ProgressSnapshot], None] | None,
                   executor: Any) -> Callable[[ProgressSnapshot], None] | None:
    """Add where evaluations run now (per node) to each report, for executors that know it."""
    placement = getattr(executor, "placement", None)
    if on_progress is None or placement is None:
        return on_progress
    report = on_progress

    def with_nodes(snap: ProgressSnapshot) -> None:
        snap.placement = placement()
        report(snap)

    return with_nodes


def _sweep_stale_sandboxes(log: Callable[[str], None]) -> None:
    """Sandbox folders left by runs that were killed (kill -9 cannot clean up)."""
    from evaluators.sandbox_dirs import sweep_stale_sandboxes

    removed = sweep_stale_sandboxes()
    if removed:
        log(f"removed {removed} sandbox folder(s) left by processes that no longer run")


def _start_local_servers(models: list[ModelConfig], servers: contextlib.ExitStack,
                         log: Callable[[str], None]) -> list[ModelConfig]:
    """A `local/...` model without an api_base gets its llama.cpp server here, started after
    the operators were stored (so the archive keeps no port that dies with this process)."""
    from evolve.operators.llm import LOCAL_PREFIX

    if not any(m.name.startswith(LOCAL_PREFIX) and not m.api_base for m in models):
        return models
    from evolve.operators.local_model import LocalModelError, start_local_models

    try:
        return start_local_models(models, servers, lambda name: log(
            f"starting a llama.cpp server for {name} (stopped when the run ends)"))
    except LocalModelError as exc:
        raise ConfigError(str(exc)) from exc


def _store_resumed_config(archive: Any, run_id: int, config: EvolveConfig, run_dir: Path) -> None:
    """A resume may change budgets (`--programs 210`): store the config it runs with, so
    `evolve status` and RUN_DIR/config.toml show the new limits, not the old ones."""
    from evolve.config import to_toml
    from evolve.engine.run_files import atomic_write

    text = to_toml(config)
    archive.set_run_config(run_id, text)
    atomic_write(run_dir / CONFIG_NAME, text)


def load_run_config(run_dir: Path, overrides: list[str] = (),  # type: ignore[assignment]
                    run_id: int | None = None) -> EvolveConfig:
    """A run's stored effective config (from the archive, else RUN_DIR/config.toml) + overrides."""
    import tomllib

    from db import Archive

    config_file = run_dir / CONFIG_NAME
    base: dict[str, Any] = {}
    if config_file.is_file():
        base = tomllib.loads(config_file.read_text())
    url = (base.get("archive") or {}).get("url") or run_dir / ARCHIVE_NAME
    if isinstance(url, Path) and not url.is_file():
        raise ConfigError(_not_a_run(run_dir))
    with Archive.open(url, create=False) as archive:
        if archive.runs():
            run = archive.get_run(resume_run_id(archive, run_dir, run_id))
            base = tomllib.loads(run.config_toml)
    return load_config(None, overrides, base=base)


def _not_a_run(run_dir: Path) -> str:
    """Why `evolve resume` cannot continue `run_dir`, and what to do instead. Never a hint to
    start a run *in* it: a run writes config.toml and best/ there, over whatever it holds."""
    if (run_dir / "problem.toml").is_file():
        return (f"{run_dir} is a problem folder, not a run directory; start a run of it with "
                f"`evolve run {run_dir}` (the run gets its own folder under runs/)")
    if not run_dir.exists():
        return f"{run_dir} does not exist; `evolve runs` lists the runs under ./runs"
    return (f"{run_dir} has no {ARCHIVE_NAME}, so it is not a run directory; `evolve runs` "
            f"lists the runs under ./runs")


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

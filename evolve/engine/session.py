"""Running a run, for `evolve run` and `evolve resume` (and for tests and benchmarks): hold the
run directory's lock, open what lives as long as the run (archive, executor, local model
servers), have `evolve.engine.assemble` build the controller, drive it to its end, close.

Ctrl-C (SIGINT) or SIGTERM once: stop proposing, finish what is in flight, exit cleanly.
A second Ctrl-C: cancel in-flight work and exit at once (the run can be resumed).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from db import Archive
from evaluators.sandbox_dirs import sweep_stale_sandboxes
from evaluators.self_signal import changing_handlers
from evolve.config import ConfigError, EvolveConfig, load_config
from evolve.engine.assemble import (
    archive_location,
    assemble,
    open_archive,
    open_executor,
    open_run,
    preflight,
)
from evolve.engine.collaborators import DescribesIsolation, Executor, PlansGpu
from evolve.engine.controller import Controller
from evolve.engine.errors import RunCannotWork
from evolve.engine.heartbeat import Heartbeat
from evolve.engine.run_files import ARCHIVE_NAME, CONFIG_NAME, ProgressSnapshot, run_lock
from evolve.engine.run_parts import make_arms, resume_run_id
from evolve.problem.discovery import find_problem
from evolve.problem.spec import ProblemSpec

__all__ = ["RunOutcome", "archive_location", "load_run_config", "make_arms", "resume_run_id",
           "run_session"]


@dataclass
class RunOutcome:
    run_id: int
    run_dir: Path
    status: str
    best_score: float | None
    programs: int


async def run_session(config: EvolveConfig, run_dir: Path, *, resume: bool = False,
                      on_progress: Callable[[ProgressSnapshot], None] | None = None,
                      log: Callable[[str], None] = print, handle_signals: bool = True,
                      executor: Executor | None = None, run_id: int | None = None) -> RunOutcome:
    """Start (or resume) the run in `run_dir` and drive it to its end. A resume continues the
    run recorded in RUN_DIR/run.json (or `run_id`), never just the newest in a shared database."""
    problem = find_problem(config.problem)
    _sweep_stale_sandboxes(log)
    # `servers` holds the llama.cpp servers of `local/...` models: they live as long as the run.
    with run_lock(run_dir), contextlib.ExitStack() as servers:
        return await _run_locked(config, run_dir, problem, resume=resume,
                                 on_progress=on_progress, log=log,
                                 handle_signals=handle_signals, executor=executor,
                                 servers=servers, run_id=run_id)


async def _run_locked(config: EvolveConfig, run_dir: Path, problem: ProblemSpec, *,
                      resume: bool, on_progress: Callable[[ProgressSnapshot], None] | None,
                      log: Callable[[str], None], handle_signals: bool,
                      executor: Executor | None, servers: contextlib.ExitStack,
                      run_id: int | None = None) -> RunOutcome:
    archive, store = open_archive(config, run_dir)
    own_executor = executor is None
    if executor is None:
        try:
            executor = open_executor(config)
        except ConfigError:
            store.close()
            archive.close()
            raise
    # The run's first lines say what candidates can reach at this isolation level.
    described = isinstance(executor, DescribesIsolation)
    log(f"sandbox: {executor.isolation_description if described else executor.isolation}")
    if isinstance(executor, PlansGpu) and problem.gpu != "none":  # which sandbox.gpu rule
        log(executor.gpu_plan(problem).line(problem.name))
    closing = contextlib.AsyncExitStack()  # what the run's parts hold open (HTTP connections)
    heartbeat: Heartbeat | None = None
    try:
        preflight(executor, problem)
        run_id = await open_run(config, problem, archive, store, executor, run_dir,
                                resume=resume, run_id=run_id)
        # From now on the run is alive as long as its heartbeat goes on (db/liveness.py).
        heartbeat = Heartbeat(store, archive, run_id)
        heartbeat.start()
        controller = await assemble(config, problem, archive, store, executor, run_dir,
                                    run_id=run_id, servers=servers, closing=closing,
                                    on_progress=on_progress, log=log)
        try:
            if resume:
                await controller.start_resume()
            else:
                await controller.start_new()
        except RunCannotWork as exc:
            await controller.abandon(str(exc))
            raise
        status = await _drive(controller, handle_signals, log)
        best = controller.best
        return RunOutcome(run_id, run_dir, status, best.score if best else None,
                          controller.programs_done)
    finally:
        await closing.aclose()
        if heartbeat is not None:
            await heartbeat.aclose()
        if own_executor:
            await executor.aclose()
        await store.aclose()  # every queued write is in before the archive closes
        archive.close()


async def _drive(controller: Controller, handle_signals: bool,
                 log: Callable[[str], None]) -> str:
    """Run the controller to its end; Ctrl-C or SIGTERM once finishes in-flight work, twice
    stops at once."""
    loop = asyncio.get_running_loop()
    installed = []
    if handle_signals:
        def on_signal() -> None:
            level = controller.stopping
            controller.request_stop("interrupted")
            log("stopping at once (in-flight work is dropped; `evolve resume` re-proposes it)"
                if level >= 1 else "finishing in-flight work, then stopping "
                "(Ctrl-C again to stop at once)")
        with changing_handlers():
            for sig in (signal.SIGINT, signal.SIGTERM):
                try:
                    loop.add_signal_handler(sig, on_signal)
                    installed.append(sig)
                except (NotImplementedError, RuntimeError):
                    pass
    try:
        return await controller.run()
    finally:
        # Under the lock a watchdog's stop signals are sent with: none of them can find the
        # default action here (a run that ended between two of them was killed by the second).
        with changing_handlers():
            for sig in installed:
                loop.remove_signal_handler(sig)


def _sweep_stale_sandboxes(log: Callable[[str], None]) -> None:
    """Sandbox folders left by runs that were killed (kill -9 cannot clean up)."""
    removed = sweep_stale_sandboxes()
    if removed:
        log(f"removed {removed} sandbox folder(s) left by processes that no longer run")


def load_run_config(run_dir: Path, overrides: list[str] = (),  # type: ignore[assignment]
                    run_id: int | None = None) -> EvolveConfig:
    """A run's stored effective config (from the archive, else RUN_DIR/config.toml) + overrides."""
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

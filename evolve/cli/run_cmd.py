"""`evolve run PROBLEM ...` and `evolve resume RUN_DIR`.

Progress is printed as one plain line per program. A live dashboard replaces the printer when
`--no-live` is not given: `evolve.engine.session.run_session(on_progress=...)` receives a
`ProgressSnapshot` after every program (and at start and stop); `--no-live` is accepted now so
scripts can already ask for plain output.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from evolve.config import ConfigError, EvolveConfig, ModelConfig, load_config
from evolve.engine.run_files import ARCHIVE_NAME, ProgressSnapshot


def register(app: typer.Typer) -> None:
    app.command("run")(run_command)
    app.command("resume")(resume_command)


def _log(message: str) -> None:
    print(message, flush=True)


def progress_printer() -> Callable[[ProgressSnapshot], None]:
    """A plain-text progress reporter: one line per committed program."""

    def report(snap: ProgressSnapshot) -> None:
        if snap.event == "start":
            _log(f"run {snap.run_id} on {snap.problem} in {snap.run_dir} "
                 f"(sandbox: {snap.isolation or '?'}); initial score "
                 f"{_score(snap.initial_score)}")
            return
        if snap.event == "stop":
            _log(f"run {snap.status}: {snap.stop_reason or 'budget reached'}; "
                 f"{snap.programs_done} programs, best {_score(snap.best_score)}, "
                 f"${snap.cost_usd:.4f}, {snap.elapsed_s:.1f}s"
                 + (f"; best program in {Path(snap.run_dir) / 'best'}"
                    if snap.best_score is not None else "; no valid program"))
            return
        last = snap.last or {}
        budget = f"/{snap.programs_budget}" if snap.programs_budget else ""
        outcome = _score(last.get("score")) if last.get("valid") else \
            f"{last.get('status')}: {last.get('error_kind')}"
        _log(f"[{snap.programs_done}{budget}] island {last.get('island')} "
             f"{last.get('mutation')} by {last.get('operator')} -> {outcome} | best "
             f"{_score(snap.best_score)} | ${snap.cost_usd:.4f} | {snap.elapsed_s:.0f}s")

    return report


def _score(value: float | None) -> str:
    return "-" if value is None else f"{value:.6g}"


def _fail(message: str, code: int = 2) -> None:
    print(f"error: {message}", file=sys.stderr)
    raise typer.Exit(code)


def _budget_overrides(programs: int | None, usd: float | None, minutes: float | None) -> list[str]:
    out = []
    if programs is not None:
        out.append(f"budget.max_programs={programs}")
    if usd is not None:
        out.append(f"budget.max_usd={usd}")
    if minutes is not None:
        out.append(f"budget.max_minutes={minutes}")
    return out


def _drive(config: EvolveConfig, run_dir: Path, resume: bool, no_live: bool = False) -> None:
    from evolve.cli.live import live_reporter
    from evolve.engine.errors import RunCannotWork
    from evolve.engine.session import run_session
    from evolve.problem.spec import ProblemError

    def go(on_progress: Callable[[ProgressSnapshot], None]):
        return asyncio.run(run_session(config, run_dir, resume=resume,
                                       on_progress=on_progress, log=_log))

    try:
        # The rich live view on a terminal; one plain line per program when piped or --no-live.
        if not no_live and sys.stdout.isatty():
            with live_reporter(live=True, archive_url=config.archive.url) as on_progress:
                outcome = go(on_progress)
        else:
            outcome = go(progress_printer())
    except (ConfigError, ProblemError) as exc:
        _fail(str(exc))
        return
    except RunCannotWork as exc:
        _fail(str(exc), 1)
        return
    if outcome.status not in ("completed", "interrupted"):
        raise typer.Exit(1)


def run_command(
    problem: Annotated[str, typer.Argument(help="Problem name (built in or installed) or folder.")],
    config_file: Annotated[Path | None, typer.Option("--config", help="TOML config file.")] = None,
    overrides: Annotated[list[str] | None, typer.Option(
        "--set", help="Override a config key: --set budget.max_programs=50 (repeatable).")] = None,
    models: Annotated[list[str] | None, typer.Option(
        "--model", help="LLM operator as litellm names it, e.g. openai/gpt-4.1-mini "
                        "(repeatable).")] = None,
    api_base: Annotated[str | None, typer.Option(
        "--api-base", help="Base URL of an OpenAI-compatible server for --model.")] = None,
    programs: Annotated[int | None, typer.Option("--programs", help="Stop after N programs.")] = None,
    usd: Annotated[float | None, typer.Option("--usd", help="Stop after spending X dollars.")] = None,
    minutes: Annotated[float | None, typer.Option("--minutes", help="Stop after T minutes.")] = None,
    run_dir: Annotated[Path | None, typer.Option("--run-dir", help="Run directory "
                                                 "(default runs/PROBLEM-TIMESTAMP).")] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Seed of every random choice.")] = None,
    no_live: Annotated[bool, typer.Option("--no-live", help="Plain log lines, no live "
                                          "view, also when on a terminal.")] = False,
) -> None:
    """Evolve PROBLEM: propose, evaluate in the sandbox, archive; stop at the first budget."""
    sets = [f"problem={_toml_string(problem)}"] + list(overrides or [])
    if seed is not None:
        sets.append(f"seed={seed}")
    sets += _budget_overrides(programs, usd, minutes)
    from evolve.problem.discovery import find_problem
    from evolve.problem.spec import ProblemError

    try:
        config = load_config(config_file, sets)
        find_problem(config.problem)  # fail before anything is written
        if models:
            config.operators.models = [ModelConfig(name=m, api_base=api_base) for m in models]
        elif api_base:
            raise ConfigError("--api-base needs --model (e.g. --model openai/NAME)")
    except (ConfigError, ProblemError) as exc:
        _fail(str(exc))
        return
    directory = run_dir or Path(config.run_dir or
                                f"runs/{Path(problem).name}-{time.strftime('%Y%m%d-%H%M%S')}")
    if _holds_a_run(directory / ARCHIVE_NAME):
        _fail(f"{directory} already holds a run; continue it with `evolve resume {directory}` "
              f"or choose another --run-dir")
    config.run_dir = str(directory)
    _drive(config, directory, resume=False, no_live=no_live)


def resume_command(
    run_dir: Annotated[Path, typer.Argument(help="The run directory to continue.")],
    programs: Annotated[int | None, typer.Option("--programs", help="New program budget "
                                                 "(total, not additional).")] = None,
    usd: Annotated[float | None, typer.Option("--usd", help="New dollar budget (total).")] = None,
    minutes: Annotated[float | None, typer.Option("--minutes", help="New time budget "
                                                  "(total minutes).")] = None,
    no_live: Annotated[bool, typer.Option("--no-live", help="Plain log lines, no live "
                                          "view, also when on a terminal.")] = False,
) -> None:
    """Continue a run from its archive: counts, islands, bandit and RNG state are rebuilt."""
    from evolve.engine.session import load_run_config

    try:
        config = load_run_config(run_dir, _budget_overrides(programs, usd, minutes))
    except ConfigError as exc:
        _fail(str(exc))
        return
    _drive(config, run_dir, resume=True, no_live=no_live)


def _holds_a_run(archive_file: Path) -> bool:
    """True when the archive has a run (one killed before its first write holds none, and
    `evolve run` may then start in the same directory)."""
    if not archive_file.exists():
        return False
    from db import Archive

    with Archive.open(archive_file, create=False) as archive:
        return bool(archive.runs())


def _toml_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

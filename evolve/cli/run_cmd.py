"""`evolve run PROBLEM ...` and `evolve resume RUN_DIR`.

On a terminal the live view shows the run; piped or with `--no-live`, one plain line per
program. Either way the run directory is printed first and the final summary ("run completed
... best program in ...") last, after the live view has closed, so it stays in the scrollback.
`evolve.engine.session.run_session(on_progress=...)` receives a `ProgressSnapshot` after every
program (and at start and stop).

Exit codes (the README's rule, one for every command): 0 the run completed (a budget or the
target score was reached); 1 it did not complete (interrupted with Ctrl-C, or failed) — resume
it with `evolve resume RUN_DIR`; 2 a usage or configuration error, before anything ran.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from evolve.config import ConfigError, EvolveConfig, ModelConfig, load_config
from evolve.dashboard.cost_text import cost_text
from evolve.engine.run_files import ARCHIVE_NAME, LOCK_NAME, RUN_ID_NAME, ProgressSnapshot


def register(app: typer.Typer) -> None:
    from evolve.cli._common import EXAMPLE_RUN, examples

    app.command("run", epilog=examples(
        "evolve run circle_packing             # into runs/circle_packing-YYYYMMDD-HHMMSS",
        "evolve run circle_packing --programs 300 --seed 1 -r experiments/cp-seed1",
        "evolve run ./my_sched -c my-run.toml -s concurrency.evaluations=4",
        "evolve run spot_single --model openai/gpt-4.1-mini --usd 2"))(run_command)
    app.command("resume", epilog=examples(
        f"evolve resume {EXAMPLE_RUN}",
        f"evolve resume {EXAMPLE_RUN} --programs 300   # a higher total",
        f"evolve resume -r {EXAMPLE_RUN} --no-live"))(resume_command)


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
            _log(final_summary(snap))
            if snap.status != "interrupted":
                _log(next_steps(snap.run_dir))
            return
        last = snap.last or {}
        budget = f"/{snap.programs_budget}" if snap.programs_budget else ""
        # The kind says it all ("duplicate", "timeout"); the stored status only when there is none.
        outcome = _score(last.get("score")) if last.get("valid") else \
            str(last.get("error_kind") or last.get("status"))
        # Named by the archive's program id, the one `evolve show ID` takes; the count is of
        # evaluated programs, the one the program budget and the summary count.
        _log(f"program {last.get('program_id')}: island {last.get('island')} "
             f"{last.get('mutation')} by {last.get('operator')} -> {outcome} | evaluated "
             f"{snap.programs_done}{budget} | best {_score(snap.best_score)}"
             + (f" (program {snap.best_program_id})" if snap.best_program_id is not None else "")
             + f" | {cost_text(snap.cost_usd, snap.unknown_cost_calls)} | {snap.elapsed_s:.0f}s")

    return report


def final_summary(snap: ProgressSnapshot) -> str:
    """The last line of a run: how it ended, what it found and where."""
    if snap.status == "interrupted":
        how = (f"run interrupted (not complete; continue it with `evolve resume "
               f"{snap.run_dir}`)")
    else:
        how = f"run {snap.status}: {snap.stop_reason or 'budget reached'}"
    return (f"{how}; {snap.programs_done} programs evaluated, best {_score(snap.best_score)}"
            + (f" (program {snap.best_program_id})" if snap.best_program_id is not None else "")
            + f", {cost_text(snap.cost_usd, snap.unknown_cost_calls)}, {snap.elapsed_s:.1f}s; "
            + (f"best program in {Path(snap.run_dir) / 'best'}" if snap.best_score is not None
               else "no valid program"))


def next_steps(run_dir: str) -> str:
    """What to look at once a run has ended: the commands, with this run's directory."""
    return (f"next: `evolve best {run_dir}` (the best programs), `evolve dashboard {run_dir}` "
            f"(browse every program), `evolve plot {run_dir}` (score over programs and dollars)")


def _score(value: float | None) -> str:
    return "-" if value is None else f"{value:.6g}"


def _fail(message: str, code: int = 2) -> NoReturn:
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


def _drive(config: EvolveConfig, run_dir: Path, resume: bool, no_live: bool = False,
           run_id: int | None = None) -> None:
    from evolve.cli.live import live_reporter
    from evolve.engine.errors import RunCannotWork
    from evolve.engine.session import run_session
    from evolve.problem.spec import ProblemError

    def go(on_progress: Callable[[ProgressSnapshot], None]):
        return asyncio.run(run_session(config, run_dir, resume=resume, run_id=run_id,
                                       on_progress=on_progress, log=_log))

    printer = progress_printer()
    try:
        # The rich live view on a terminal; one plain line per program when piped or --no-live.
        if not no_live and sys.stdout.isatty():
            final: list[ProgressSnapshot] = []
            with live_reporter(live=True, archive_url=config.archive.url) as show:
                def on_progress(snap: ProgressSnapshot) -> None:
                    if snap.event == "start":
                        printer(snap)          # the run directory, above the live panel
                    elif snap.event == "stop":
                        final.append(snap)     # printed once the panel has closed
                    show(snap)
                outcome = go(on_progress)
            for snap in final:
                printer(snap)
        else:
            outcome = go(printer)
    except (ConfigError, ProblemError) as exc:
        _fail(str(exc))
        return
    except RunCannotWork as exc:
        _fail(str(exc), 1)
        return
    if outcome.status != "completed":
        raise typer.Exit(1)   # interrupted or failed: the run did not complete



def run_command(
    problem: Annotated[str | None, typer.Argument(
        help="Problem name (built in or installed) or folder; default: `problem` in --config.",
        show_default=False)] = None,
    config_file: Annotated[Path | None, typer.Option("--config", "-c",
                                                     help="TOML config file.")] = None,
    overrides: Annotated[list[str] | None, typer.Option(
        "--set", "-s", help="Override a config key: --set budget.max_programs=50 (repeatable).")] = None,
    models: Annotated[list[str] | None, typer.Option(
        "--model", "-m", help="LLM operator as litellm names it, e.g. openai/gpt-4.1-mini "
                        "(repeatable).")] = None,
    api_base: Annotated[str | None, typer.Option(
        "--api-base", help="Base URL of an OpenAI-compatible server for --model.")] = None,
    programs: Annotated[int | None, typer.Option("--programs", help="Stop after N programs.")] = None,
    usd: Annotated[float | None, typer.Option("--usd", help="Stop after spending X dollars.")] = None,
    minutes: Annotated[float | None, typer.Option("--minutes", help="Stop after T minutes.")] = None,
    run_dir: Annotated[Path | None, typer.Option(
        "--run-dir", "-r", help="Run directory to create (default: runs/PROBLEM-YYYYMMDD-HHMMSS "
                                "under the current folder).", show_default=False)] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Seed of every random choice.")] = None,
    no_live: Annotated[bool, typer.Option("--no-live", help="Plain log lines, no live "
                                          "view, also when on a terminal.")] = False,
    executor: Annotated[str | None, typer.Option(
        "--executor", help="Where evaluations run: local, ray or auto (Ray when RAY_ADDRESS "
                           "is set).")] = None,
    ray_address: Annotated[str | None, typer.Option(
        "--ray-address", help="Ray cluster head, host:port (implies --executor ray).")] = None,
) -> None:
    """Evolve PROBLEM: propose, evaluate in the sandbox, archive; stop at the first budget.

    Exit 0: completed. 1: not completed (Ctrl-C or a failure; `evolve resume` continues it).
    2: usage or configuration error."""
    problem = _choose_problem(problem, config_file)
    sets = [f"problem={_toml_string(problem)}"] + list(overrides or [])
    if seed is not None:
        sets.append(f"seed={seed}")
    sets += _budget_overrides(programs, usd, minutes)
    sets += _executor_overrides(executor, ray_address)
    from evolve.problem.spec import ProblemError

    try:
        config = load_config(config_file, sets)
        if models:
            config.operators.models = [ModelConfig(name=m, api_base=api_base) for m in models]
        elif api_base:
            raise ConfigError("--api-base needs --model (e.g. --model openai/NAME)")
        _preflight(config)
    except (ConfigError, ProblemError) as exc:
        _fail(str(exc))
        return
    directory = run_dir or Path(config.run_dir or
                                f"runs/{Path(problem).name}-{time.strftime('%Y%m%d-%H%M%S')}")
    if (directory / RUN_ID_NAME).is_file() or _holds_a_run(directory / ARCHIVE_NAME):
        _fail(f"{directory} already holds a run; continue it with `evolve resume {directory}` "
              f"or choose another --run-dir")
    _refuse_foreign_directory(directory)
    config.run_dir = str(directory)
    _drive(config, directory, resume=False, no_live=no_live)


def resume_command(
    run_dir: Annotated[Path | None, typer.Argument(help="The run directory to continue.",
                                                   show_default=False)] = None,
    run_dir_option: Annotated[Path | None, typer.Option(
        "--run-dir", "-r", help="The run directory to continue; the same as RUN_DIR.",
        show_default=False)] = None,
    programs: Annotated[int | None, typer.Option("--programs", help="New program budget "
                                                 "(total, not additional).")] = None,
    usd: Annotated[float | None, typer.Option("--usd", help="New dollar budget (total).")] = None,
    minutes: Annotated[float | None, typer.Option("--minutes", help="New time budget "
                                                  "(total minutes).")] = None,
    no_live: Annotated[bool, typer.Option("--no-live", help="Plain log lines, no live "
                                          "view, also when on a terminal.")] = False,
    run_id: Annotated[int | None, typer.Option(
        "--run-id", help="Which run of a shared database to continue (default: the one "
                         "RUN_DIR/run.json records).")] = None,
    executor: Annotated[str | None, typer.Option(
        "--executor", help="Where evaluations run now: local, ray or auto.")] = None,
    ray_address: Annotated[str | None, typer.Option(
        "--ray-address", help="Ray cluster head, host:port (e.g. a restarted cluster).")] = None,
) -> None:
    """Continue a run from its archive: counts, islands, bandit and RNG state are rebuilt.

    A completed run goes on only with a higher budget (--programs, --usd, --minutes)."""
    from evolve.cli._common import run_dir_of
    from evolve.engine.session import load_run_config
    from evolve.problem.spec import ProblemError

    named = run_dir_of(None if run_dir is None else str(run_dir),
                       None if run_dir_option is None else str(run_dir_option))
    if named is None:
        _fail("name the run to continue: `evolve resume RUN_DIR` (`evolve runs` lists them)")
    run_dir = Path(named)

    try:
        config = load_run_config(run_dir, _budget_overrides(programs, usd, minutes)
                                 + _executor_overrides(executor, ray_address), run_id=run_id)
        _preflight(config)
        if programs is None and usd is None and minutes is None:
            _refuse_completed(run_dir, run_id, config)
    except (ConfigError, ProblemError) as exc:
        _fail(str(exc))
        return
    _drive(config, run_dir, resume=True, no_live=no_live, run_id=run_id)


def _refuse_completed(run_dir: Path, run_id: int | None, config: EvolveConfig) -> None:
    """A completed run resumed with its old budget would stop at once, "budget reached": say
    it is complete and how to raise the budget instead (exit 0: nothing failed)."""
    from db import Archive
    from evolve.engine.session import resume_run_id

    url = config.archive.url or run_dir / ARCHIVE_NAME
    with Archive.open(url, create=False) as archive:
        run = archive.get_run(resume_run_id(archive, run_dir, run_id))
        if run is None or run.status != "completed":
            return
        stops = archive.events(run.id, kind="stop")
        evaluated = archive.count_programs(run.id, status="evaluated") - 1  # not the initial
    reason = str((stops[-1].data or {}).get("reason") or "budget reached") if stops else \
        "budget reached"
    budget = config.budget
    if reason.startswith("dollar budget") and budget.max_usd:
        raise_to = f"--usd {2 * budget.max_usd:g}"
    elif reason.startswith("time budget"):
        raise_to = f"--minutes {2 * (budget.max_minutes or 30):g}"
    elif budget.max_programs:
        raise_to = f"--programs {max(2 * budget.max_programs, evaluated + 10)}"
    else:
        raise_to = "--minutes 30"
    head = f"run {run.id} in {run_dir} is complete ({reason}; {evaluated} programs evaluated)"
    if reason.startswith(("target score", "nothing new")):
        print(f"{head}; a higher budget would not take it further: start a new run "
              f"(`evolve run {config.problem}`) with other settings", flush=True)
    else:
        print(f"{head}; to go on, raise its budget: `evolve resume {run_dir} {raise_to}` "
              f"(the new total, not an addition; --programs, --usd and --minutes all work)",
              flush=True)
    raise typer.Exit(0)


def _executor_overrides(executor: str | None, ray_address: str | None) -> list[str]:
    if ray_address is not None:
        return [f"executor.ray_address={_toml_string(ray_address)}",
                f"executor.kind={_toml_string(executor or 'ray')}"]
    return [] if executor is None else [f"executor.kind={_toml_string(executor)}"]


def _choose_problem(argument: str | None, config_file: Path | None) -> str:
    """The PROBLEM argument, else the config file's `problem`; both, and different: an error."""
    from_file = None
    if config_file is not None:
        import tomllib

        try:
            from_file = tomllib.loads(config_file.read_text()).get("problem")
        except (OSError, tomllib.TOMLDecodeError):
            from_file = None   # load_config reports the unreadable file with its reason
    if argument is None and from_file is None:
        _fail("name a problem: `evolve run PROBLEM` (e.g. circle_packing; `evolve problems "
              "list` shows them), or give a --config file that sets problem = \"...\"")
    if (argument is not None and from_file is not None and argument != from_file
            and not _same_problem(argument, from_file)):
        _fail(f"the problem argument '{argument}' differs from problem = \"{from_file}\" in "
              f"{config_file}; drop one of them")
    return str(argument if argument is not None else from_file)


def _same_problem(first: str, second: str) -> bool:
    """Two spellings of one problem (`circle_packing`, `problems/circle_packing`, an absolute
    path): they load from the same folder. A name that does not load is not the same."""
    from evolve.problem.discovery import find_problem

    try:
        return find_problem(first).root.resolve() == find_problem(second).root.resolve()
    except Exception:  # an unknown name or a broken problem: reported as the difference it is
        return False


def _preflight(config: EvolveConfig) -> None:
    """What would make the run fail at once, checked before anything is written: the problem
    loads and its `requires` import here (unless a Ray cluster evaluates it), local models can
    start, every named model's API key is set."""
    from evaluators.executors import executor_kind
    from evolve.operators.keys import first_missing_key, models_of
    from evolve.problem.discovery import find_problem
    from evolve.problem.spec import ProblemError

    spec = find_problem(config.problem)
    if executor_kind(config.executor) == "local" and spec.unusable_reason:
        raise ProblemError(f"problem {spec.name} {spec.unusable_reason}")
    _check_local_models(config)
    missing = first_missing_key(models_of(config))
    if missing is not None:
        raise ConfigError(missing)


def _check_local_models(config: EvolveConfig) -> None:
    """A `local/...` model is served by a llama.cpp server the run starts; without the local
    extra say so now, before a run directory is written."""
    from evolve.operators.llm import LOCAL_PREFIX
    from evolve.operators.local_model import missing_local_extra

    local = [m.name for m in config.operators.models
             if m.name.startswith(LOCAL_PREFIX) and not m.api_base]
    missing = missing_local_extra() if local else None
    if missing:
        raise ConfigError(f"{local[0]} runs on this machine, but {missing}")


# What a run leaves in its directory before its first write (killed at once): `evolve run`
# may start again there. Anything else belongs to someone else.
_RUN_LEFTOVERS = frozenset({LOCK_NAME, ARCHIVE_NAME, f"{ARCHIVE_NAME}-wal",
                            f"{ARCHIVE_NAME}-shm", f"{ARCHIVE_NAME}-journal"})


def _refuse_foreign_directory(directory: Path) -> None:
    """A run writes config.toml, run.json and best/ into its directory, replacing what is
    there: refuse a path that is a file, or a folder holding anything but a run's leftovers."""
    if not directory.exists():
        return
    if not directory.is_dir():
        _fail(f"--run-dir {directory} is a file, not a folder; choose a new folder for the run")
    foreign = sorted(entry.name for entry in directory.iterdir()
                     if entry.name not in _RUN_LEFTOVERS)
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5
                                          else "")
        _fail(f"{directory} is not empty and holds no run ({shown}); a run would overwrite "
              f"files there. Choose a new or empty folder with --run-dir (or leave it out: "
              f"runs go to runs/PROBLEM-TIMESTAMP)")


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

"""The composition root: every collaborator of a run is built here, from the config and the
problem, and nowhere else. Read top to bottom it is the table of contents of a run:

    archive (on its own thread) -> executor -> run record -> operators (models, offline) ->
    LLM client with its spend ledger -> arms and bandit -> sampler, prompts, novelty filter,
    scratchpad -> evaluation, commit, ingest -> planner -> proposal pipeline -> controller.

`evolve.engine.session` opens and closes what lives as long as the run (the lock, the archive,
the executor, local model servers) and drives the controller; `evolve.engine.run_parts` holds the
steps that need a few lines each (operators frozen at the start, the spend ledger, ...).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

from db import Archive
from evaluators.executors import make_executor
from evolve.config import ConfigError, EvolveConfig, to_toml
from evolve.engine.archive_thread import ArchiveThread
from evolve.engine.best import BestKeeper
from evolve.engine.calls import CallRecorder, NoveltyJudge
from evolve.engine.collaborators import ArmChooser, Executor, LLMCompleter, Preflight
from evolve.engine.commit import Committer
from evolve.engine.controller import Controller
from evolve.engine.evaluation import Evaluation
from evolve.engine.in_flight import InFlightPublisher, nodes_in_flight
from evolve.engine.ingest import Ingestor, ScratchpadWriter
from evolve.engine.initial import InitialProgram
from evolve.engine.model_health import BenchWatch, StartupWatch
from evolve.engine.pipeline import ProposalPipeline
from evolve.engine.planner import Planner
from evolve.engine.progress import Progress
from evolve.engine.proposal import HistoryOperator, OfflineOperator, Proposer
from evolve.engine.run_files import ARCHIVE_NAME, ProgressSnapshot, write_run_id
from evolve.engine.run_parts import (
    eval_slots,
    make_arms,
    make_llm,
    resolve_operators,
    resume_run_id,
    start_local_servers,
    store_resumed_config,
    with_models,
)
from evolve.engine.run_state import RunState
from evolve.engine.scratchpad import Scratchpad
from evolve.operators.embedding import embedder_for
from evolve.patch.novelty import NoveltyFilter
from evolve.problem.spec import ProblemSpec
from evolve.prompting import PromptBuilder
from evolve.select.bandit import Arm, Bandit
from evolve.select.sampler import IslandSampler


def archive_location(config: EvolveConfig, run_dir: Path) -> str | Path:
    return config.archive.url or run_dir / ARCHIVE_NAME


def open_archive(config: EvolveConfig, run_dir: Path) -> tuple[Archive, ArchiveThread]:
    """The archive, and the thread every call of the run makes on it (the loop never blocks)."""
    archive = Archive.open(archive_location(config, run_dir))
    return archive, ArchiveThread(archive)


def open_executor(config: EvolveConfig) -> Executor:
    """The executor the config names (local, or a Ray cluster it connects to)."""
    try:
        return make_executor(config.sandbox, config.concurrency, config.executor)
    except (ConnectionError, ImportError) as exc:
        raise ConfigError(f"executor '{config.executor.kind}': {exc}") from exc


def preflight(executor: Executor, problem: ProblemSpec) -> None:
    """An executor that can refuse a problem does so now (e.g. a GPU problem on a cluster
    without GPUs), not at the first evaluation."""
    if isinstance(executor, Preflight):
        try:
            executor.preflight(problem)
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc


async def open_run(config: EvolveConfig, problem: ProblemSpec, archive: Archive,
                   store: ArchiveThread, executor: Executor, run_dir: Path, *, resume: bool,
                   run_id: int | None) -> int:
    """The run's id: a new run record, or the one a resume continues (with its new config)."""
    if resume:
        run_id = await store.call(resume_run_id, archive, run_dir, run_id)
        await store.call(store_resumed_config, archive, run_id, config, run_dir)
        return run_id
    run_id = await store.create_run(problem=problem.name, config_toml=to_toml(config),
                                    seed=config.seed, isolation=executor.isolation)
    write_run_id(run_dir, run_id, store.where)
    return run_id


async def assemble(config: EvolveConfig, problem: ProblemSpec, archive: Archive,
                   store: ArchiveThread, executor: Executor, run_dir: Path, *, run_id: int,
                   servers: contextlib.ExitStack, closing: contextlib.AsyncExitStack,
                   on_progress: Callable[[ProgressSnapshot], None] | None,
                   log: Callable[[str], None]) -> Controller:
    """Operators, LLM client and bandit for run `run_id`, then the controller's parts.
    `servers` keeps local model servers up and `closing` closes the LLM client's connections
    when the run ends."""
    models, offline = await store.call(resolve_operators, config, archive, run_id, log)
    models = start_local_servers(models, servers, log)
    llm = await make_llm(config, models, store, run_id, log)
    if llm is not None:
        closing.push_async_callback(llm.aclose)
    if models:  # the run's own models from here on (prompts read their max_tokens)
        config = with_models(config, models)
    arm_list, weights = make_arms([m.name for m in models], [op.name for op in offline],
                                  dict(config.mutation.mix))
    bandit = Bandit(arm_list, config.bandit, default_weights=weights)
    return build_controller(
        config, problem, store, executor, run_dir, run_id=run_id, llm=llm, bandit=bandit,
        arms={a.label: a for a in arm_list}, offline={op.name: op for op in offline},
        on_progress=on_progress, log=log)


def build_controller(config: EvolveConfig, problem: ProblemSpec, archive: ArchiveThread,
                     executor: Executor, run_dir: Path, *, run_id: int,
                     llm: LLMCompleter | None, bandit: ArmChooser, arms: dict[str, Arm],
                     offline: dict[str, OfflineOperator],
                     on_progress: Callable[[ProgressSnapshot], None] | None,
                     log: Callable[[str], None]) -> Controller:
    """The controller and its parts: selection, prompts, novelty, the pipeline's steps."""
    state = RunState(window=config.concurrency.proposals + eval_slots(config))
    prompts = PromptBuilder(problem, config.prompts, config.mutation.max_code_chars)
    sampler = IslandSampler(config.sampling, config.islands, problem.config.metrics.features)
    judge_model = config.novelty.judge_model
    novelty = NoveltyFilter(
        config.novelty, judge=NoveltyJudge(llm, prompts, judge_model)
        if llm is not None and judge_model else None,
        embedder=embedder_for(config.novelty, config.operators.models))
    scratchpad = Scratchpad(config.scratchpad)
    evaluation = Evaluation(executor, problem, eval_slots(config))
    best_keeper = BestKeeper(archive, run_id, run_dir, problem.initial_path.suffix, config.seed)
    progress = Progress(config, problem, state, run_id=run_id, run_dir=run_dir,
                        executor=executor, sampler=sampler, best_keeper=best_keeper,
                        evaluation=evaluation, report=on_progress)
    recorder = CallRecorder(archive, run_id, state)
    llm_models = [str(a.operator) for a in arms.values() if str(a.operator) not in offline]
    writer = ScratchpadWriter(
        config, scratchpad, archive, run_id, llm=llm, prompts=prompts,
        model=llm_models[0] if llm_models else None, record_calls=recorder.record,
        best_score=lambda: best_keeper.best.score if best_keeper.best else None,
        lag=lambda: state.window)
    ingestor = Ingestor(archive=archive, run_id=run_id, sampler=sampler, bandit=bandit,
                        arms=arms, scratchpad=scratchpad, committed=state.committed,
                        initial_score=lambda: state.initial.score if state.initial else None,
                        bench_watch=BenchWatch(config.llm.bench_after), log=log, writer=writer)
    for operator in offline.values():
        if isinstance(operator, HistoryOperator):  # `optimise` learns from the run's programs
            operator.attach_history(lambda: state.committed, lambda: state.window)
    proposer = Proposer(prompts, config.mutation, llm, offline,
                        {m.name: m.max_tokens for m in config.operators.models})
    planner = Planner(config, state, archive, sampler=sampler, bandit=bandit, arms=arms,
                      offline=offline, prompts=prompts, scratchpad=scratchpad, ingestor=ingestor)
    committer = Committer(archive, run_id, problem, state, best_keeper, progress.program)
    pipeline = ProposalPipeline(
        config, state, archive, run_id, proposer=proposer, novelty=novelty,
        evaluation=evaluation, committer=committer, recorder=recorder, ingestor=ingestor,
        startup=StartupWatch(config.llm.fail_fast_after,
                             {m.name: m.api_base for m in config.operators.models}))
    initial = InitialProgram(config, problem, state, archive, run_id, evaluation=evaluation,
                             sampler=sampler, novelty=novelty, best_keeper=best_keeper, log=log)
    in_flight = InFlightPublisher(archive, run_id,
                                  lambda: nodes_in_flight(executor, evaluation.running))
    return Controller(config, problem, state, archive, executor, run_dir, run_id=run_id,
                      planner=planner, pipeline=pipeline, initial=initial, ingestor=ingestor,
                      sampler=sampler, bandit=bandit, arms=arms, scratchpad=scratchpad,
                      best_keeper=best_keeper, in_flight=in_flight, progress=progress, log=log)

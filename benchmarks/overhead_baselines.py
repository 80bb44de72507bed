"""Same-run baselines for `benchmarks/overhead.py`: what the things the framework sits on cost
by themselves, in this process, measured the way the run uses them.

Every figure is CPU seconds of this whole process (`getrusage(RUSAGE_SELF)`: all its threads,
never its children), the median of `repeats` timed batches after a warm-up batch.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sqlite3
import statistics
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO / "tests" / "engine" / "fixtures" / "target"
MODEL = "openai/scripted"
# A prompt of the size the run sends (problem, parent, four inspirations, scratchpad).
MESSAGES = [{"role": "system", "content": "You improve programs." * 20},
            {"role": "user", "content": "VALUE = 1.0\n" + "context " * 400}]
REPLY = "Move.\n<<<<<<< SEARCH\nVALUE = 1.0\n=======\nVALUE = 2.0\n>>>>>>> REPLACE\n"


def cpu_self() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def median_cost(batch: Callable[[], None], samples: int, repeats: int) -> float:
    """CPU seconds per sample: one warm-up batch, then the median of `repeats` batches."""
    batch()
    costs = []
    for _ in range(repeats):
        start = cpu_self()
        for _ in range(samples):
            batch()
        costs.append((cpu_self() - start) / samples)
    return statistics.median(costs)


async def median_cost_async(call: Callable[[], Awaitable[Any]], samples: int,
                            repeats: int) -> float:
    await call()
    costs = []
    for _ in range(repeats):
        start = cpu_self()
        for _ in range(samples):
            await call()
        costs.append((cpu_self() - start) / samples)
    return statistics.median(costs)


# litellm's settings against its own per-call work (message logging, token counting, end-user
# cost tracking, callbacks): set only around its "litellm_quiet" batches, to show what
# configuring litellm gains against calling the SDK directly.
_LITELLM_QUIET = {"turn_off_message_logging": True, "disable_streaming_logging": True,
                  "disable_token_counter": True, "disable_end_user_cost_tracking": True,
                  "disable_add_user_agent_to_request_tags": True, "success_callback": [],
                  "_async_success_callback": [], "failure_callback": [],
                  "_async_failure_callback": [], "callbacks": []}


@dataclass
class ClientCosts:
    """CPU seconds of this process per call, for the same request to the same server."""

    openai: float       # the bare `openai` async client: `chat.completions.create`
    openai_aiohttp: float  # the same on the SDK's aiohttp transport (our client's transport)
    litellm: float      # a bare `litellm.acompletion` with the arguments our client passes
    litellm_quiet: float  # the same with litellm's per-call switches off (`_LITELLM_QUIET`)
    ours: float         # our `LLMClient.complete` (OpenAI-compatible: the openai SDK path)
    ours_litellm: float  # our `LLMClient.complete` with `llm.openai_sdk = false` (litellm)


async def llm_costs(base_url: str, samples: int, repeats: int) -> ClientCosts:
    """The clients on the same request, in alternating batches (drift in the machine's
    load hits all alike); the median batch of each."""
    import openai

    from evolve.config import LLMConfig, ModelConfig
    from evolve.operators.llm import LLMClient, litellm_model_name, litellm_module

    models = [ModelConfig(name=MODEL, api_base=base_url)]
    ours = LLMClient(models, LLMConfig())
    ours_litellm = LLMClient(models, LLMConfig(openai_sdk=False))
    litellm = litellm_module()
    kwargs = {"model": litellm_model_name(MODEL), "messages": MESSAGES, "temperature": 0.7,
              "max_tokens": 4096, "timeout": 60.0, "num_retries": 0, "max_retries": 0,
              "drop_params": True, "api_base": base_url, "api_key": "sk-no-key-needed"}
    bare = openai.AsyncOpenAI(base_url=base_url, api_key="sk-no-key-needed", max_retries=0)
    bare_aiohttp = openai.AsyncOpenAI(base_url=base_url, api_key="sk-no-key-needed",
                                      max_retries=0, http_client=openai.DefaultAioHttpClient())
    calls: dict[str, Callable[[], Awaitable[Any]]] = {
        "openai": lambda: bare.chat.completions.create(
            model=MODEL.split("/", 1)[1], messages=MESSAGES, temperature=0.7,  # type: ignore
            max_tokens=4096, timeout=60.0),
        "openai_aiohttp": lambda: bare_aiohttp.chat.completions.create(
            model=MODEL.split("/", 1)[1], messages=MESSAGES, temperature=0.7,  # type: ignore
            max_tokens=4096, timeout=60.0),
        "litellm": lambda: litellm.acompletion(**kwargs),
        "ours": lambda: ours.complete(MODEL, MESSAGES, temperature=0.7),
        "ours_litellm": lambda: ours_litellm.complete(MODEL, MESSAGES, temperature=0.7),
    }
    calls["litellm_quiet"] = calls["litellm"]
    runs: dict[str, list[float]] = {name: [] for name in calls}
    saved = {key: getattr(litellm, key) for key in _LITELLM_QUIET}
    try:
        for _ in range(repeats):
            for name, call in calls.items():
                for key, value in (_LITELLM_QUIET if name == "litellm_quiet" else saved).items():
                    setattr(litellm, key, value)
                runs[name].append(await median_cost_async(call, samples, 1))
    finally:
        for key, value in saved.items():
            setattr(litellm, key, value)
        await bare.close()
        await bare_aiohttp.close()
        await ours.aclose()
    return ClientCosts(**{name: statistics.median(costs) for name, costs in runs.items()})


async def sandbox_cost(samples: int, repeats: int) -> float:
    """Parent-side CPU of one sandboxed evaluation (the sandbox threads starting the child and
    reading its output; the child itself is not counted)."""
    from evaluators.executors import make_executor
    from evolve.config import load_config
    from evolve.problem.spec import load_problem

    problem = load_problem(FIXTURE)
    code = problem.initial_code()
    config = load_config(None, [], base={"problem": str(FIXTURE)})
    executor = make_executor(config.sandbox, config.concurrency)
    try:
        return await median_cost_async(lambda: executor.evaluate(problem, code), samples,
                                       repeats)
    finally:
        await executor.aclose()


def _program_row(run_id: int, i: int, code: str) -> dict[str, Any]:
    return dict(run_id=run_id, code=code + f"# {i}\n", parent_id=None, island=0, generation=1,
                operator=MODEL, mutation_kind="diff", status="evaluated", score=1.0, valid=True,
                metrics={"value": 1.0}, feedback="ok", timings={"a": 1.0}, diff="d" * 300,
                proposal_key=f"0:{i}")


def _call_row(run_id: int) -> dict[str, Any]:
    return dict(run_id=run_id, model=MODEL, prompt=json.dumps(MESSAGES), response=REPLY * 4,
                tokens_in=1000, tokens_out=80, cost_usd=None, latency_s=0.01, error=None,
                purpose="mutation")


def archive_cost(samples: int, repeats: int) -> float:
    """CPU of storing one program with its LLM call through `Archive` (two transactions)."""
    from db import Archive

    code = (FIXTURE / "initial.py").read_text()
    with tempfile.TemporaryDirectory(prefix="evolve-overhead-db-") as tmp, \
            Archive.open(Path(tmp) / "a.sqlite") as archive:
        run_id = archive.create_run(problem="p", config_toml="", seed=0, isolation="none")
        counter = iter(range(10**9))

        def one() -> None:
            call = archive.record_llm_call(run_id, **_call_row_args(run_id))
            archive.add_program(run_id, **_program_args(run_id, next(counter), code),
                                llm_call_ids=[call])

        return median_cost(one, samples, repeats)


def _call_row_args(run_id: int) -> dict[str, Any]:
    row = _call_row(run_id)
    row.pop("run_id")
    return row


def _program_args(run_id: int, i: int, code: str) -> dict[str, Any]:
    row = _program_row(run_id, i, code)
    row.pop("run_id")
    return row


def sqlite_floor(samples: int, repeats: int) -> float:
    """The floor for the same writes: a bare asyncio loop storing the same rows into the same
    tables with the sqlite3 module directly (WAL, synchronous=NORMAL, one transaction each for
    the LLM call and for the program, as the archive does), JSON encoded by hand."""
    from db import Archive

    code = (FIXTURE / "initial.py").read_text()
    with tempfile.TemporaryDirectory(prefix="evolve-overhead-floor-") as tmp:
        path = Path(tmp) / "a.sqlite"
        with Archive.open(path) as archive:  # the real schema
            run_id = archive.create_run(problem="p", config_toml="", seed=0, isolation="none")
        db = sqlite3.connect(path, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA foreign_keys=ON")
        counter = iter(range(10**9))
        json_columns = ("metrics", "timings")

        async def one() -> None:
            await asyncio.sleep(0)
            call = _call_row(run_id)
            db.execute("BEGIN IMMEDIATE")
            cur = db.execute(f"INSERT INTO llm_calls ({', '.join(call)}, created_at) VALUES "
                             f"({', '.join('?' * len(call))}, datetime('now'))", list(call.values()))
            db.execute("COMMIT")
            row = _program_row(run_id, next(counter), code)
            row.update({k: json.dumps(row[k]) for k in json_columns}, inspiration_ids="[]",
                       code_hash="h" * 64, error_kind=None, error_text=None, stage_reached=None)
            db.execute("BEGIN IMMEDIATE")
            program = db.execute(f"INSERT INTO programs ({', '.join(row)}, created_at) VALUES "
                                 f"({', '.join('?' * len(row))}, datetime('now'))",
                                 list(row.values())).lastrowid
            db.execute("UPDATE llm_calls SET program_id = ? WHERE id = ?", (program, cur.lastrowid))
            db.execute("COMMIT")

        async def run_all() -> float:
            return await median_cost_async(one, samples, repeats)

        try:
            return asyncio.run(run_all())
        finally:
            db.close()

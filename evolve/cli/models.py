"""`evolve models check`: one short call per model, with latency, tokens, cost and a hint for
each common failure (missing key, nothing listening at the base URL, unknown model)."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from evolve.config import ConfigError, EvolveConfig, LLMConfig, ModelConfig, load_config
from evolve.operators.error_text import has_status, plain_error_text
from evolve.operators.keys import first_missing_key, key_env_for
from evolve.operators.llm import LLMClient, LLMReply
from evolve.operators.local_model import LocalModelError, start_local_models

models_app = typer.Typer(help="Check the LLMs a run would use.", no_args_is_help=True)

CHECK_MESSAGES = [{"role": "user", "content": "Reply with the single word: ok"}]


def register(app: typer.Typer) -> None:
    app.add_typer(models_app, name="models")


def hint_for(error: str, model: ModelConfig) -> str:
    """What to do next about an error from `LLMClient` (empty when nothing useful to say)."""
    text = plain_error_text(error)
    if "missingapikey" in text or "authentication" in text or "api key" in text:
        env = model.api_key_env or key_env_for(model.name) or "the provider's API key variable"
        return f"set the key: export {env}=... (or name another variable with api_key_env)"
    if "connect" in text or "connection" in text:
        where = model.api_base or "the provider's default URL"
        return (f"nothing answered at {where}: check --api-base (OpenAI-compatible servers "
                f"usually end in /v1) and that the server is running")
    if "notfound" in text or has_status(text, "404"):
        return "unknown model or wrong path: check the --model name and --api-base"
    if "timeout" in text:
        return "no answer in time: check the server, or raise --timeout"
    if "ratelimit" in text or has_status(text, "429"):
        return "rate limited or out of quota: wait, or check the account's limits"
    if "badrequest" in text or has_status(text, "400"):
        return "the provider rejected the request: check the model name and its parameters"
    if "emptyresponse" in text:
        return "the model answered with no text: try another model or a larger max_tokens"
    return ""


def _models_to_check(names: list[str], api_base: str | None,
                     configured: list[ModelConfig]) -> list[ModelConfig]:
    by_name = {m.name: m for m in configured}
    if not names:
        return [m.model_copy(update={"api_base": api_base}) if api_base else m
                for m in configured]
    chosen = []
    for name in names:
        base = by_name.get(name) or ModelConfig(name=name)
        chosen.append(base.model_copy(update={"api_base": api_base}) if api_base else base)
    return chosen


def _format_cost(reply: LLMReply) -> str:
    cost = reply.cost_usd
    return "unknown" if cost is None else f"${cost:.6f}"


async def _check_all(models: list[ModelConfig], llm: LLMConfig) -> list[LLMReply]:
    client = LLMClient(models, llm)
    try:
        return list(await asyncio.gather(*(
            client.complete(m.name, CHECK_MESSAGES, temperature=0.0, max_tokens=16)
            for m in models)))
    finally:
        await client.aclose()


@models_app.command("check", epilog=(
    "Examples:\n\n  evolve models check                      # the configured models\n\n"
    "  evolve models check -m openai/gpt-4.1-mini\n\n"
    "  evolve models check -m openai/qwen3 --api-base http://127.0.0.1:8000/v1"))
def check(
    model: Annotated[list[str] | None, typer.Option(
        "--model", "-m", help="model to check, as litellm names it (repeatable); "
                              "default: the configured ones")] = None,
    api_base: Annotated[str | None, typer.Option(
        "--api-base", help="base URL of an OpenAI-compatible server, e.g. "
                           "http://127.0.0.1:8000/v1")] = None,
    config: Annotated[Path | None, typer.Option("--config", "-c", help="run config TOML")] = None,
    set_: Annotated[list[str] | None, typer.Option(
        "--set", "-s", help="override a config key: dotted.key=value (repeatable)")] = None,
    timeout: Annotated[float, typer.Option(help="seconds allowed per model")] = 30.0,
) -> None:
    """Send one short request to each model; print latency, tokens, cost and errors.

    Exit 0: every model answered; 1: one did not; 2: an unset API key (before any call)."""
    console = Console(soft_wrap=True)      # lines are never broken at a pipe's 80 columns
    cfg, models = _configured_models(console, config, set_ or [], model or [], api_base)
    models, replies = _ask_each(console, cfg, models, timeout)
    rows = [_result_row(cfg_model, reply) for cfg_model, reply in zip(models, replies, strict=True)]
    _print_rows(console, rows)
    if any(row["result"] != "ok" for row in rows):
        raise typer.Exit(1)


def _configured_models(console: Console, config: Path | None, sets: list[str], names: list[str],
                       api_base: str | None) -> tuple[EvolveConfig, list[ModelConfig]]:
    """The config and the models to check, every API key set; else exit 2 saying what to do."""
    try:
        cfg = load_config(config, sets)
    except ConfigError as exc:
        console.print(Text.assemble(("error:", "red"), f" {exc}"))
        raise typer.Exit(2) from exc
    models = _models_to_check(names, api_base, cfg.operators.models)
    if not models:
        # markup=False: rich would read [[operators.models]] as a style tag and print "[]";
        # soft_wrap: the hint is one long line that a pipe at 80 columns must not cut.
        console.print("no model configured: name one with --model (e.g. --model "
                      "openai/gpt-4.1-mini with OPENAI_API_KEY set, or --model openai/<name> "
                      "--api-base http://HOST:PORT/v1), or add [[operators.models]] to the config",
                      markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(2)
    missing = first_missing_key(models)
    if missing is not None:  # said at once: no call, no litellm import
        typer.echo(f"error: {missing}", err=True)
        raise typer.Exit(2)
    return cfg, models


def _ask_each(console: Console, cfg: EvolveConfig, models: list[ModelConfig],
              timeout: float) -> tuple[list[ModelConfig], list[LLMReply]]:
    """One short call per model, local models served for the time of the calls (exit 1 when
    one cannot start). Returns the models as called (served, timeout applied) and the replies."""
    with contextlib.ExitStack() as stack:
        try:
            models = start_local_models(
                models, stack, lambda name: console.print(f"starting a local server for {name}...",
                                          markup=False))
        except LocalModelError as exc:
            console.print(Text.assemble(("error:", "red"), f" {exc}"))
            raise typer.Exit(1) from exc
        llm = cfg.llm.model_copy(update={"retries": 0, "proposal_deadline_s": timeout})
        models = [m.model_copy(update={"timeout_s": min(m.timeout_s, timeout)}) for m in models]
        console.print(f"checking {len(models)} model(s)...")
        return models, asyncio.run(_check_all(models, llm))


def _print_rows(console: Console, rows: list[dict[str, str]]) -> None:
    """A table on a wide terminal; piped or narrow, plain lines, never a table squeezed to 80
    columns."""
    if console.is_terminal and console.width >= 100:
        table = Table("model", "result", "latency", "tokens in/out", "cost", "reply / error")
        for row in rows:
            detail = Text(row["detail"])     # the model's reply and errors are not markup
            if row["hint"]:
                detail.append("\nhint: ", "yellow").append(row["hint"])
            table.add_row(Text(row["model"]), Text(row["result"], style="green" if
                                                   row["result"] == "ok" else "red"),
                          row["latency"], row["tokens"], row["cost"], detail)
        console.print(table, soft_wrap=False)
        return
    for row in rows:
        console.print(f"{row['model']}: {row['result']}, {row['latency']}, tokens "
                      f"{row['tokens']}, cost {row['cost']}: {row['detail']}",
                      markup=False, highlight=False, soft_wrap=True)
        if row["hint"]:
            console.print(f"  hint: {row['hint']}", markup=False, highlight=False,
                          soft_wrap=True)


def _result_row(cfg_model: ModelConfig, reply: LLMReply) -> dict[str, str]:
    call = reply.calls[-1]
    ok = reply.ok
    return {"model": cfg_model.name, "result": "ok" if ok else "failed",
            "latency": f"{call.latency_s:.2f}s",
            "tokens": f"{call.tokens_in}/{call.tokens_out}" if call.tokens_in is not None
            else "-",
            "cost": _format_cost(reply) if ok else "-",
            "detail": reply.text.strip().replace("\n", " ")[:40] if ok
            else (call.error or "")[:160],
            "hint": "" if ok else hint_for(call.error or "", cfg_model)}

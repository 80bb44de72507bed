"""Budgets are hard: each LLM call reserves its worst case before it starts, so a wide window
of proposals in flight cannot carry the spend past `max_usd` (scripted HTTP server, real
litellm calls, prices from the config)."""

from __future__ import annotations

from tests.engine.engine_support import (
    MODEL,
    engine_config,
    open_archive,
    parent_value,
    run,
    set_value_diff,
)
from tests.support.llm_server import Reply, ScriptedLLMServer

MAX_TOKENS = 100
PRICE = {"input_per_mtok": 1.0, "output_per_mtok": 10_000.0}  # $0.01 per output token


def full_length_replies(request):
    """Every reply uses its whole output budget, the most a provider may bill."""
    old = parent_value(request)
    return Reply(set_value_diff(old, repr(old + 0.25)), prompt_tokens=400,
                 completion_tokens=int(request["max_tokens"]))


def test_a_window_of_68_stays_within_the_budget_plus_one_call(tmp_path):
    max_usd = 5.0
    with ScriptedLLMServer(full_length_replies) as server:
        config = engine_config(
            tmp_path, server, budget={"max_programs": 400, "max_usd": max_usd},
            concurrency={"proposals": 64, "evaluations": 4},
            operators={"models": [{"name": MODEL, "api_base": server.base_url,
                                   "max_tokens": MAX_TOKENS}]},
            llm={"prices": {MODEL: PRICE}, "retries": 0})
        outcome = run(config, tmp_path)
        asked = len(server.chat_requests)
    with open_archive(tmp_path) as archive:
        spent = archive.cost_so_far(outcome.run_id)
        calls = archive.llm_calls(outcome.run_id)
        stop = archive.events(outcome.run_id, kind="stop")[-1]
        window = archive.get_state(outcome.run_id, "window")
    one_call_worst = max(c.tokens_in for c in calls) * 1e-6 + MAX_TOKENS * 0.01
    assert window == 68
    assert outcome.status == "completed" and "budget reached" in stop.message
    assert spent <= max_usd + one_call_worst, (spent, one_call_worst)
    assert spent >= max_usd - 2 * one_call_worst  # and the budget was used, not left idle
    assert asked == len(calls)  # every call that went out is recorded


def test_a_model_without_a_price_is_held_to_max_calls_and_the_run_says_so(tmp_path):
    logs: list[str] = []
    import asyncio

    from evolve.engine.session import run_session

    with ScriptedLLMServer(full_length_replies) as server:
        config = engine_config(
            tmp_path, server, budget={"max_programs": 50, "max_usd": 1.0, "max_calls": 5},
            concurrency={"proposals": 8, "evaluations": 2}, llm={"retries": 0})
        asyncio.run(run_session(config, tmp_path, handle_signals=False, log=logs.append))
        asked = len(server.chat_requests)
    assert asked == 5
    warnings = [line for line in logs if "price of openai/scripted is unknown" in line]
    assert len(warnings) == 1 and "count against budget.max_calls (5)" in warnings[0]
    with open_archive(tmp_path) as archive:
        stop = archive.events(1, kind="stop")[-1]
    assert "the call budget of 5 LLM calls is used up" in stop.message


def test_a_small_budget_with_32_proposals_in_flight_is_used_not_left_idle(tmp_path):
    """`evolve run --usd 1` with 32 proposals in flight, each call reserving a worst case of
    $0.20 (2,000 max_tokens) while the scripted server bills $0.045 for it: a call that does
    not fit waits for the calls in flight to settle, so the run spends at least 80% of its
    budget (never more than all of it) instead of stopping once five reservations fill it."""
    from tests.engine.engine_support import FIXTURE, bump, evolve_process

    step = bump()

    def cheap_replies(request):
        reply = step(request)
        reply.completion_tokens = 450          # $0.045 of the $0.20 reserved
        return reply

    run_dir = tmp_path / "run"
    with ScriptedLLMServer(cheap_replies) as server:
        config = tmp_path / "budget.toml"
        config.write_text(f"""seed = 5
[[operators.models]]
name = "{MODEL}"
api_base = "{server.base_url}"
max_tokens = 2000

[llm]
retries = 0

[llm.prices."{MODEL}"]
input_per_mtok = 0.0
output_per_mtok = 100.0

[mutation]
max_resample = 0
repair_rate = 0.0

[mutation.mix]
diff = 1.0
full = 0.0
crossover = 0.0

[scratchpad]
enabled = false

[budget]
stall_after = 1000        # most replies repeat a program: the dollar budget must end the run

[concurrency]
proposals = 32
evaluations = 2
""")
        proc = evolve_process("run", str(FIXTURE), "--config", str(config), "--usd", "1",
                              "--programs", "500", "--no-live", "--run-dir", str(run_dir))
        output, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, output
    with open_archive(run_dir) as archive:
        spent = archive.cost_so_far(1)
        stop = archive.events(1, kind="stop")[-1]
    assert "budget reached" in stop.message, stop.message
    assert 0.8 <= spent <= 1.0, (spent, output[-2000:])

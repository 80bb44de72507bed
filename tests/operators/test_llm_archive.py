"""Every attempt the LLM client makes lands in a real SQLite archive, failed ones included."""

from __future__ import annotations

import json
import random

import pytest

from db.archive import Archive
from evolve.config import BanditConfig, LLMConfig, ModelConfig, PriceConfig
from evolve.operators.llm import LLMClient
from evolve.select.bandit import Arm, Bandit
from tests.support.llm_server import HTTPError, Malformed, RateLimited, Reply

MODEL = "openai/scripted-model"


async def test_attempts_and_costs_are_stored_in_the_archive(scripted_llm_server, tmp_path):
    server = scripted_llm_server([RateLimited(), Malformed(),
                                  Reply("def f(): return 2", prompt_tokens=300,
                                        completion_tokens=40)])
    client = LLMClient(
        [ModelConfig(name=MODEL, api_base=server.base_url, timeout_s=5.0)],
        LLMConfig(retries=3, backoff_base_s=0.01, backoff_max_s=0.05, proposal_deadline_s=20,
                  prices={MODEL: PriceConfig(input_per_mtok=1.0, output_per_mtok=4.0)}),
        rng=random.Random(0))
    reply = await client.complete(MODEL, [{"role": "user", "content": "improve f"}])
    await client.aclose()
    assert reply.ok and len(reply.calls) == 3

    archive = Archive.open(tmp_path / "archive.sqlite")
    run_id = archive.create_run(problem="fixture", config_toml="", seed=0, isolation="rlimits")
    ids = [archive.record_llm_call(run_id, purpose="proposal", **call.archive_fields())
           for call in reply.calls]
    stored = archive.llm_calls(run_id)
    assert [c.id for c in stored] == ids
    assert [bool(c.error) for c in stored] == [True, True, False]
    assert "RateLimit" in stored[0].error
    ok = stored[-1]
    assert (ok.tokens_in, ok.tokens_out, ok.finish_reason) == (300, 40, "stop")
    assert ok.cost_usd == pytest.approx((300 * 1.0 + 40 * 4.0) / 1e6)
    assert json.loads(ok.prompt) == [{"role": "user", "content": "improve f"}]
    assert stored[0].cost_usd == 0.0  # a 429 is not billed
    # A 200 whose body cannot be read was served, so it may be billed: unknown, never 0.
    assert stored[1].cost_usd is None and reply.cost_usd is None
    assert archive.cost_so_far(run_id) == pytest.approx(ok.cost_usd)


async def test_unknown_cost_stays_unknown_in_the_archive(scripted_llm_server, tmp_path):
    server = scripted_llm_server([HTTPError(503), Reply("x")])
    client = LLMClient([ModelConfig(name=MODEL, api_base=server.base_url)],
                       LLMConfig(retries=1, backoff_base_s=0.01, backoff_max_s=0.02))
    reply = await client.complete(MODEL, [{"role": "user", "content": "hi"}])
    await client.aclose()
    archive = Archive.open(tmp_path / "archive.sqlite")
    run_id = archive.create_run(problem="fixture", config_toml="", seed=0, isolation="rlimits")
    for call in reply.calls:
        archive.record_llm_call(run_id, purpose="proposal", **call.archive_fields())
    stored = archive.llm_calls(run_id)
    assert stored[0].cost_usd == 0.0  # the 503 was rejected, not billed
    assert stored[1].cost_usd is None  # no price known for the fake model: unknown, not 0


def test_bandit_state_round_trips_through_the_archive(tmp_path):
    arms = [Arm(MODEL, "diff"), Arm("tune", "tune")]
    bandit = Bandit(arms, BanditConfig())
    rng = random.Random(0)
    for step in range(50):
        arm = bandit.select(rng)
        bandit.on_submit(arm)
        bandit.update(arm, 0.1 if arm.operator == "tune" else 0.0, 0.001 * (step % 2))
    archive = Archive.open(tmp_path / "archive.sqlite")
    run_id = archive.create_run(problem="fixture", config_toml="", seed=0, isolation="rlimits")
    archive.set_state(run_id, "bandit", bandit.state_dict())

    reopened = Archive.open(tmp_path / "archive.sqlite")
    restored = Bandit.from_state(reopened.get_state(run_id, "bandit"), arms, BanditConfig())
    assert restored.summary() == bandit.summary()
    assert restored.select(random.Random(9)) == bandit.select(random.Random(9))

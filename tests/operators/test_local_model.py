"""End to end with a real model, fully offline: SmolLM2-135M served by llama.cpp on 127.0.0.1."""

from __future__ import annotations

import random
import re

import pytest

from db.archive import Archive
from evolve.config import LLMConfig
from evolve.operators.llm import LLMClient
from evolve.operators.local_model import LOCAL_MODEL_NAME, LocalModelServer, missing_local_extra

MISSING = missing_local_extra()
pytestmark = pytest.mark.skipif(
    MISSING is not None, reason=f"local model extra absent: {MISSING}")

PROPOSAL = [
    {"role": "system", "content": "You are a Python expert. Answer with code only."},
    {"role": "user", "content": "Rewrite this function to be faster:\n\n"
                                "def total(xs):\n    s = 0\n    for x in xs:\n        s += x\n"
                                "    return s\n"},
]


@pytest.fixture(scope="module")
def local_server():
    with LocalModelServer(n_ctx=1024) as server:
        yield server


async def test_real_model_proposals_record_real_token_counts(local_server, tmp_path):
    model = local_server.model_config(max_tokens=48, timeout_s=60)
    client = LLMClient([model], LLMConfig(retries=1, proposal_deadline_s=120),
                       rng=random.Random(0))
    archive = Archive.open(tmp_path / "archive.sqlite")
    run_id = archive.create_run(problem="local", config_toml="", seed=0, isolation="rlimits")
    for _ in range(3):
        reply = await client.complete(LOCAL_MODEL_NAME, PROPOSAL)
        assert reply.ok, reply.error
        assert reply.text.strip()
        for call in reply.calls:
            archive.record_llm_call(run_id, purpose="proposal", **call.archive_fields())
    await client.aclose()
    calls = archive.llm_calls(run_id)
    ok_calls = [c for c in calls if c.error is None]
    assert len(ok_calls) == 3
    for call in ok_calls:
        # Counted by the model's own tokenizer: the prompt is dozens of tokens, the reply
        # at most the 48 allowed.
        assert 30 < call.tokens_in < 400
        assert 0 < call.tokens_out <= 48
        assert call.model == LOCAL_MODEL_NAME and call.latency_s > 0
        assert call.cost_usd is None  # a local model has no price unless one is configured


def test_weights_stay_in_plain_cpu_buffers(local_server):
    # llama.cpp's AMX repacking, as GCC 12 compiles it, crashes on any prompt of two or more
    # tokens (and so on every call above) on CPUs with AMX: the server must not repack.
    log = local_server.log_text()
    assert re.search(r"CPU(_Mapped)? model buffer size", log), log[-2000:]
    assert not re.search(r"(AMX|REPACK) model buffer", log), log[-2000:]

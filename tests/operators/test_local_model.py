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


async def test_a_long_prompt_is_answered_with_weights_in_plain_cpu_buffers(local_server):
    # llama.cpp's AMX repacking, as GCC 12 compiles it, crashes on any batch of two or more
    # tokens on CPUs with AMX: the server must not repack, and must answer a prompt of
    # hundreds of tokens (processed in multi-token batches).
    model = local_server.model_config(max_tokens=8, timeout_s=60)
    client = LLMClient([model], LLMConfig(retries=0, proposal_deadline_s=120),
                       rng=random.Random(0))
    body = "\n".join(f"def f{i}(x):\n    return x + {i}" for i in range(40))
    reply = await client.complete(LOCAL_MODEL_NAME, [
        {"role": "user", "content": f"Which function adds 7?\n\n{body}"}])
    assert reply.ok, reply.error
    assert reply.calls[-1].tokens_in > 300
    assert local_server.process is not None and local_server.process.poll() is None
    assert not re.search(r"(AMX|REPACK) model buffer", local_server.log_text())


def test_the_server_exits_when_the_run_that_started_it_is_killed(tmp_path):
    # A run killed with -9 cannot stop its server: the server notices it was orphaned.
    import os
    import signal
    import subprocess
    import sys
    import time

    pid_file = tmp_path / "server.pid"
    starter = subprocess.Popen([sys.executable, "-c", (
        "import pathlib, sys, time\n"
        "from evolve.operators.local_model import LocalModelServer\n"
        "server = LocalModelServer(n_ctx=512).start()\n"
        f"pathlib.Path({str(pid_file)!r}).write_text(str(server.process.pid))\n"
        "time.sleep(600)\n")])
    try:
        deadline = time.monotonic() + 120
        while not pid_file.exists() and time.monotonic() < deadline:
            assert starter.poll() is None, "the starter died before its server answered"
            time.sleep(0.2)
        server_pid = int(pid_file.read_text())
    finally:
        starter.send_signal(signal.SIGKILL)
        starter.wait()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            os.kill(server_pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    os.kill(server_pid, signal.SIGKILL)
    raise AssertionError("the llama.cpp server outlived the run that started it")

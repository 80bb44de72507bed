"""A run with a real (tiny, local) LLM: SmolLM2-135M through llama.cpp's OpenAI-compatible
server on 127.0.0.1. Tiny models write poor code; what this shows is that real model output of
any quality goes through the engine into recorded, explained outcomes. About a minute: slow."""

from __future__ import annotations

import pytest

from evolve.operators.local_model import LocalModelServer, missing_local_extra
from tests.engine.engine_support import engine_config, open_archive, run


@pytest.mark.slow
def test_a_real_local_model_runs_end_to_end(tmp_path):
    missing = missing_local_extra()
    if missing:
        pytest.skip(missing)
    with LocalModelServer() as server:
        config = engine_config(tmp_path, None, budget={"max_programs": 3},
                               operators={"models": [server.model_config(max_tokens=300)
                                                     .model_dump()]},
                               concurrency={"proposals": 1, "evaluations": 1},
                               islands={"count": 1},
                               mutation={"mix": {"diff": 1.0, "full": 1.0}, "max_resample": 1})
        outcome = run(config, tmp_path)
    assert outcome.status == "completed" and outcome.programs == 3
    with open_archive(tmp_path) as archive:
        programs = [p for p in archive.programs(outcome.run_id) if p.proposal_key != "initial"]
        for p in programs:
            calls = archive.llm_calls(program_id=p.id)
            assert calls and all(c.model == "local/smollm2" and c.tokens_out for c in calls)
            assert p.valid or (p.error_kind and p.error_text), "every failure has a reason"

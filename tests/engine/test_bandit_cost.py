"""The bandit pays for what it wastes: a model that never yields a program falls to the
exploration floor, in a real run with two models on scripted servers (issue 26)."""

from __future__ import annotations

import hashlib
import re
from typing import Any

import pytest

from tests.engine.engine_support import engine_config, open_archive, run
from tests.support.llm_server import Reply, ScriptedLLMServer

GOOD, REFUSER = "openai/good-coder", "openai/polite-refuser"
REFUSAL = ("I'm sorry, but I can't help with rewriting this program. If you have another "
           "question, I'd be glad to help.")
_PARENT = re.compile(r"```python\n(.*?)```", re.S)
_VALUE = re.compile(r"^VALUE = (.+)$", re.M)


def good_coder(request: dict[str, Any]) -> Reply:
    """Answers every prompt as asked: SEARCH/REPLACE edits when the prompt asks for them, the
    whole program otherwise. The new VALUE is a function of the whole prompt, so replies from
    one parent with different context differ and the same prompt always gets the same reply."""
    user = "\n".join(m["content"] for m in request["messages"] if m["role"] == "user")
    parent = _PARENT.search(user).group(1)  # the first program of the prompt is the parent
    old = _VALUE.search(parent).group(1)
    step = int(hashlib.sha256(user.encode()).hexdigest()[:8], 16) % 2000 / 1000 - 0.4
    new = repr(round(float(old) + step, 3))
    if "<<<<<<< SEARCH" in user:
        return Reply(f"Move VALUE by {step:+.3f}.\n<<<<<<< SEARCH\nVALUE = {old}\n=======\n"
                     f"VALUE = {new}\n>>>>>>> REPLACE\n")
    program = _VALUE.sub(f"VALUE = {new}", parent, count=1)
    return Reply(f"Move VALUE by {step:+.3f}.\n```python\n{program}```\n")


@pytest.mark.slow  # 300 programs: about 20 s on a quiet machine (the fast check is in
# tests/operators/test_bandit.py, the same set-up without HTTP and sandboxes)
def test_a_model_that_refuses_every_request_falls_to_the_exploration_floor(tmp_path):
    # The set-up of issue 26: two models, one answering normally, one refusing every request
    # with a polite sentence (each refusal is resampled `max_resample` = 3 times), the default
    # bandit and mutation mix, 300 programs.
    with ScriptedLLMServer(good_coder) as good, ScriptedLLMServer(default=Reply(REFUSAL)) as refuser:
        config = engine_config(
            tmp_path, operators={"models": [{"name": GOOD, "api_base": good.base_url},
                                            {"name": REFUSER, "api_base": refuser.base_url}]},
            mutation={"mix": {"diff": 0.7, "full": 0.2, "crossover": 0.1}, "repair_rate": 0.1, "max_resample": 3},
            concurrency={"proposals": 4, "evaluations": 2}, islands={"count": 2},
            budget={"max_programs": 300, "stall_after": 50})
        run(config, tmp_path)
        good_calls, refuser_calls = len(good.chat_requests), len(refuser.chat_requests)
    with open_archive(tmp_path) as archive:
        programs = [p for p in archive.programs(1) if p.operator != "initial"]
    programs.sort(key=lambda p: int(p.proposal_key.rsplit(":", 1)[1]))
    assert sum(p.status == "evaluated" for p in programs) == 300
    refused = [p.operator == REFUSER for p in programs]
    assert all(p.status == "rejected" for p in programs if p.operator == REFUSER)
    later = refused[50:]
    share = sum(later) / len(later)
    calls = refuser_calls / (good_calls + refuser_calls)
    assert share < 0.10, f"the refusing model made {share:.1%} of the proposals after the first 50"
    assert calls < 0.15, f"the refusing model took {calls:.1%} of the calls"
    # And not by starving it: it is still explored (the floor), only rarely.
    assert sum(later) >= 1
    # Seed 7: 1.5% of the proposals after the first 50 and 9.4% of the calls (before proposals
    # paid per call: 11.4% and 36%).


@pytest.mark.slow  # 200 programs: about 15 s on a quiet machine
def test_a_mutation_kind_that_never_yields_falls_to_the_exploration_floor(tmp_path):
    # One model that edits well when asked for SEARCH/REPLACE edits and answers every request
    # for a whole program (full, crossover) with prose only.
    def diff_only(request: dict[str, Any]) -> Reply:
        user = "\n".join(m["content"] for m in request["messages"] if m["role"] == "user")
        return good_coder(request) if "<<<<<<< SEARCH" in user else Reply(REFUSAL)

    with ScriptedLLMServer(diff_only) as server:
        config = engine_config(
            tmp_path, operators={"models": [{"name": GOOD, "api_base": server.base_url}]},
            mutation={"mix": {"diff": 0.7, "full": 0.2, "crossover": 0.1}, "repair_rate": 0.1,
                      "max_resample": 3},
            concurrency={"proposals": 4, "evaluations": 2}, islands={"count": 2},
            budget={"max_programs": 200, "stall_after": 50})
        run(config, tmp_path)
    with open_archive(tmp_path) as archive:
        programs = [p for p in archive.programs(1) if p.operator != "initial"]
    programs.sort(key=lambda p: int(p.proposal_key.rsplit(":", 1)[1]))
    barren = [p.mutation_kind in ("full", "crossover") for p in programs]
    share = sum(barren[50:]) / len(barren[50:])
    # 3.0% with seed 7 (9.3% before proposals paid per call): the floor and a little more.
    assert share < 0.06, f"full and crossover made {share:.1%} of the proposals after the first 50"
